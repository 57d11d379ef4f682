"""One knob per setting: which key wins where a config can set the same thing at two levels, and the
refusal of a command-line override that would have no effect.

The precedence (README, "Running experiments"):

- a value set for one part of an experiment wins over the experiment-wide one, and its ``null`` means
  "use the experiment-wide one": ``models.NAME.lr`` over ``train.lr`` (``inr_image``, ``inr_signal``),
  ``gan.generator_lr`` / ``gan.discriminator_lr`` over ``train.lr`` (``qiren_generation``),
  ``variants.NAME.schedule`` over ``diffusion.schedule`` (``diffusion_fewshot``);
- ``seeds`` lists (or counts) the training seeds; the top-level ``seed`` of ``inr_image``, ``inr_signal``
  and ``qiren_generation`` seeds nothing;
- ``evaluation.classifier.device`` follows ``train.device`` unless it is set itself (a validator of those
  configs, :func:`qml_imaging.config.follow_train_device`).

An override (``key=value`` on the command line) of the experiment-wide key while every part sets its own
value is refused (:func:`qml_imaging.config.config_from_dict` raises :func:`ineffective_override`'s line as a
``ConfigError``). The same pair inside a YAML file is not refused: a run's stored ``config.yaml`` writes every
key out.

This module imports no torch (nor :mod:`qml_imaging.config`, which uses it).
"""

from __future__ import annotations

from typing import Any, NamedTuple, TypeVar

import yaml

T = TypeVar("T")


class Shadowed(NamedTuple):
    """``general`` has no effect where every key matching ``winners`` (dotted, ``*`` = every entry of a mapping)
    holds a value (not null); ``experiments``: the pipelines where the pair exists (empty: any that has the keys)."""

    general: str
    winners: tuple[str, ...]
    fix: str
    experiments: frozenset[str] = frozenset()


SHADOWED = (
    Shadowed("train.lr", ("models.*.lr",), "set models.NAME.lr for one model, or models.NAME.lr=null to let it "
                                           "use train.lr"),
    Shadowed("train.lr", ("gan.generator_lr", "gan.discriminator_lr"),
             "set gan.generator_lr / gan.discriminator_lr, or one of them to null to let it use train.lr"),
    Shadowed("diffusion.schedule", ("variants.*.schedule",),
             "set variants.NAME.schedule, or variants.NAME.schedule=null to let it use diffusion.schedule"),
    Shadowed("seed", ("seeds",), "the fits' seeds are seeds (a count in inr_*: seeds 0..seeds-1, a list in "
                                 "qiren_generation)", frozenset({"inr_image", "inr_signal", "qiren_generation"})),
)
"""Every pair of keys that set one thing, the experiment-wide key first."""


def ineffective_override(experiment: str, values: dict, overrides: list[str] | tuple[str, ...]) -> str | None:
    """The one-line refusal of the first override that a more specific key shadows everywhere, or None.

    ``values``: the validated config of pipeline ``experiment`` (overrides applied) as plain data
    (``model_dump(mode="json")``). The line names the override, the keys that win with their values, and
    what to set instead.
    """
    for override in overrides:
        for key in overridden_keys(override):
            for pair in SHADOWED:
                winning = _winning(pair, key, experiment, values)
                if winning:
                    shown = ", ".join(f"{name}={value}" for name, value in winning[:4])
                    more = f" and {len(winning) - 4} more" if len(winning) > 4 else ""
                    verb = "wins" if len(winning) == 1 else "win"
                    return f"override {override!r} has no effect: {shown}{more} {verb} over {pair.general}; {pair.fix}"
    return None


def overridden_keys(override: str) -> list[str]:
    """The dotted keys a (valid) ``key=value`` override sets: the key, or every key inside a mapping value
    (``train={lr: 0.1}`` sets ``train.lr``)."""
    key, _, text = override.partition("=")
    return [key + suffix for suffix in _suffixes(yaml.safe_load(text))]


def _suffixes(value: Any) -> list[str]:
    if not isinstance(value, dict) or not value:
        return [""]
    return [f".{name}{suffix}" for name, child in value.items() for suffix in _suffixes(child)]


def _winning(pair: Shadowed, key: str, experiment: str, values: dict) -> list[tuple[str, Any]]:
    """The ``(key, value)`` pairs that win over ``key`` when every one of them holds a value; else []."""
    if key != pair.general or (pair.experiments and experiment not in pair.experiments):
        return []
    found = [entry for pattern in pair.winners for entry in _matches(pattern.split("."), values, "")]
    return found if found and all(value is not None for _, value in found) else []


def _matches(parts: list[str], node: Any, prefix: str) -> list[tuple[str, Any]]:
    """``(dotted key, value)`` of every key in the nested mapping ``node`` that the pattern ``parts`` names."""
    if not parts:
        return [(prefix.lstrip("."), node)]
    if not isinstance(node, dict):
        return []
    head, rest = parts[0], parts[1:]
    names = list(node) if head == "*" else [head] if head in node else []
    return [entry for name in names for entry in _matches(rest, node[name], f"{prefix}.{name}")]


def own_or_shared(own: T | None, shared: T) -> T:
    """The value one part of an experiment sets itself (``models.NAME.lr``, ``variants.NAME.schedule``, ...), or
    the experiment-wide one (``train.lr``, ``diffusion.schedule``) where it sets none (null): the precedence
    every pair of :data:`SHADOWED` follows."""
    return shared if own is None else own
