"""A trained model as an artifact: the floor every pipeline's loader stands on; it imports no pipeline.

``load_model(run_dir, fit=None)`` opens the run folder, looks up the loader its registry entry names
(:attr:`qml_imaging.registry.PipelineEntry.load`, a ``module:function`` string resolved at call time) and
returns that loader's :class:`TrainedModel`: the network rebuilt from the arguments stored beside its
checkpoint, with the weights of its final checkpoint (the EMA weights when the run trained with
``train.ema_decay``, which is also what the run evaluated), in eval mode, with the run's config and the
preprocessing of its data.

What built a model is stored with its weights, as Lightning stores hyperparameters: each fit's checkpoint
folder holds ``model.json`` (:func:`save_model_arguments`, plain JSON, written before training starts) with
the arguments its pipeline computed at run time (hidden widths matched to a parameter budget, channel
counts, image sides, histogram lengths); everything else comes from the run's ``config.yaml``. A loader
never infers a shape from a tensor. Run folders written before ``model.json`` existed are refused with a
one-line :class:`~qml_imaging.runs.RunFolderError` saying to run the config again.

Checkpoints are read only through :func:`qml_imaging.training.checkpoints.load_checkpoint`
(``weights_only``: nothing is unpickled).

Errors: FileNotFoundError (not a run folder), :class:`~qml_imaging.runs.RunFolderError` (a kind of run
that has no model, a fit without ``model.json``), ValueError (an unknown or unfinished fit), and the
checkpoint errors of :mod:`qml_imaging.training.checkpoints`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from qml_imaging.config import ExperimentConfig
from qml_imaging.quantum.backends import BackendSpec
from qml_imaging.quantum.executors import Executor
from qml_imaging.quantum.layer import QuantumLayer
from qml_imaging.registry import PIPELINES, resolve
from qml_imaging.runs import RunDir, RunFolderError, write_text_atomic
from qml_imaging.training.checkpoints import CheckpointError, load_checkpoint
from qml_imaging.training.weights_files import read_weights

EXPORT_FILE = "export.json"
"""The file that marks an export (:mod:`qml_imaging.training.export`) and names its fit."""
MODEL_FILE = "model.json"
"""The file beside a fit's checkpoints that holds the arguments that built its model."""
_FORMAT = 1


@dataclass
class TrainedModel:
    """A trained network with what it needs to be used.

    ``model``: the ``nn.Module`` in eval mode (EMA weights when ``ema``); ``config``: the run's config;
    ``fit``: which fit of the run; ``preprocessing``: how its data was prepared (plain data, for
    reports); ``metrics``: the last evaluation stored in the checkpoint; ``inputs`` / ``targets``:
    the training grid and values of an INR (``(N, d)``, ``(N, C)``), None otherwise (``targets`` is
    also None when the training image or signal file has moved); ``extras``: what the pipeline's
    :meth:`render` or :meth:`sample` needs. Pipelines subclass it to provide those two methods.
    """

    model: nn.Module
    config: ExperimentConfig
    fit: str
    run_dir: Path
    ema: bool
    preprocessing: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    inputs: torch.Tensor | None = None
    targets: torch.Tensor | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def quantum_layers(self) -> list[QuantumLayer]:
        """The model's quantum layers, in module order."""
        return [module for module in self.model.modules() if isinstance(module, QuantumLayer)]

    def use_executor(self, executor: Executor | BackendSpec) -> None:
        """Run every quantum layer on ``executor`` (an executor, or a validated backend spec made into
        one executor shared by all layers); weights unchanged."""
        from qml_imaging.quantum.factory import as_executor

        shared = as_executor(executor)
        for layer in self.quantum_layers():
            layer.use_executor(shared)

    def render(self, size: int | tuple[int, int]) -> np.ndarray:
        """A fitted INR evaluated on another grid (see the INR pipelines' loaders); ValueError for other runs."""
        raise ValueError(f"{self.run_dir} is a {self.config.experiment!r} run; render needs a fitted INR "
                         "(an inr_image or inr_signal run)")

    def sample(self, n: int, *, steps: int | None = None, eta: float | None = None, seed: int = 0,
               batch_size: int | None = None) -> np.ndarray:
        """``n`` new images of a generative run (see the diffusion and generation loaders); ValueError for others."""
        raise ValueError(f"{self.run_dir} is a {self.config.experiment!r} run; sample needs a diffusion_fewshot "
                         "or qiren_generation run")

    def sample_settings(self, steps: int | None, eta: float | None) -> dict[str, Any]:
        """The sampler settings :meth:`sample` uses for ``steps`` and ``eta`` (for ``sample_info.json``); none here."""
        return {}


def loadable_kinds() -> list[str]:
    """The experiments whose registry entry names a loader."""
    return [name for name, entry in PIPELINES.items() if entry.load is not None]


def load_model(run_dir: str | Path, fit: str | None = None, *,
               executor: Executor | BackendSpec | None = None) -> TrainedModel:
    """The trained model of ``fit`` in ``run_dir`` (see the module docstring; ``fit=None`` takes the run's first);
    ``executor`` (an executor or a validated backend spec) switches its quantum layers from the backend they
    were fitted with."""
    run = RunDir.open(run_dir, check_files=False)
    fit = exported_fit(run.path, fit)
    kind = run.config.experiment
    entry = PIPELINES.get(kind)
    if entry is None or entry.load is None:
        raise RunFolderError(f"{str(run.path)!r} is a {kind!r} run; load_model reads {', '.join(loadable_kinds())} "
                             "runs")
    trained = resolve(entry.load)(run, fit)
    trained.model.eval()
    if executor is not None:
        trained.use_executor(executor)
    return trained


def exported_fit(folder: Path, fit: str | None) -> str | None:
    """The fit to load from ``folder``: ``fit`` itself for a run folder; for an export (its ``export.json``), the
    exported fit, which ``fit`` may name but not differ from (ValueError naming both)."""
    marker = folder / EXPORT_FILE
    if not marker.is_file():
        return fit
    try:
        exported = json.loads(marker.read_text())["fit"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise RunFolderError(f"{marker} is damaged ({type(error).__name__}); export the run again") from None
    if fit is not None and fit != exported:
        raise ValueError(f"{folder} is an export of the fit {exported!r}, not {fit!r}")
    return exported


def save_model_arguments(checkpoint_dir: str | Path, arguments: dict[str, Any]) -> Path:
    """Write ``checkpoint_dir/model.json`` atomically: the arguments (plain JSON data) that built a fit's model.

    Called by a pipeline before it trains the fit, so every checkpoint has it beside it. Raises TypeError
    for arguments that are not plain JSON data."""
    path = Path(checkpoint_dir) / MODEL_FILE
    write_text_atomic(path, json.dumps({"format": _FORMAT, "arguments": arguments}, indent=1, sort_keys=True) + "\n")
    return path


def model_arguments(run: RunDir, fit: str, checkpoint: str | None = None) -> dict[str, Any]:
    """The arguments stored by :func:`save_model_arguments` in ``checkpoints/<checkpoint or fit>/``.

    Raises :class:`~qml_imaging.runs.RunFolderError` (one line) when the file is missing (a run folder written
    before models stored them, or a fit that never started) or damaged."""
    path = run.checkpoint_dir(checkpoint or fit) / MODEL_FILE
    if not path.is_file():
        started = any(path.parent.glob("**/*.pt"))
        raise RunFolderError(
            f"fit {fit!r} of {run.path} has no {MODEL_FILE} (the arguments that built its model): "
            + ("the run folder was written before models stored them; run its config.yaml again to load it"
               if started else f"it has not started; train it with `qml-imaging run --resume {run.path}`"))
    try:
        stored = json.loads(path.read_text())
        if stored.get("format") != _FORMAT or not isinstance(stored.get("arguments"), dict):
            raise ValueError(f"format {stored.get('format')!r}, expected {_FORMAT} with an 'arguments' mapping")
    except (OSError, ValueError, AttributeError) as error:
        raise RunFolderError(f"{path} is damaged ({error}); run the fit's config again to rewrite it") from None
    return stored["arguments"]


def final_weights(run: RunDir, fit: str, checkpoint: str, epochs: int) -> tuple[dict[str, torch.Tensor], bool, dict]:
    """``(state_dict, ema, metrics)`` of the finished fit whose checkpoints are in ``checkpoint``: the
    EMA weights when the fit kept an EMA, else the model's. In an export the weights come from its safetensors
    file instead (:mod:`qml_imaging.training.weights_files`). Raises ValueError for a missing or unfinished fit."""
    exported = read_weights(run.checkpoint_dir(checkpoint))
    if exported is not None:
        weights, info = exported
        return weights, bool(info["ema"]), dict(info["metrics"])
    state = load_checkpoint(run.checkpoint_dir(checkpoint))
    if state is None:
        raise ValueError(f"fit {fit!r} of {run.path} has no checkpoint; finish it with "
                         f"`qml-imaging run --resume {run.path}`")
    if state["epoch"] < epochs:
        raise ValueError(f"fit {fit!r} of {run.path} has not finished (epoch {state['epoch']} of {epochs}); "
                         f"finish it with `qml-imaging run --resume {run.path}`")
    ema, metrics = state.get("ema"), state.get("metrics")
    weights = {k.removeprefix("module."): v for k, v in ema.items() if k.startswith("module.")} \
        if isinstance(ema, dict) else state["model"]
    if not isinstance(weights, dict):
        raise foreign_checkpoint(run, fit, f"a {type(weights).__name__} where a mapping of tensors belongs")
    return weights, isinstance(ema, dict), dict(metrics) if isinstance(metrics, dict) else {}


def load_weights(model: nn.Module, weights: dict[str, torch.Tensor], run: RunDir, fit: str) -> None:
    """``model.load_state_dict(weights)`` after checking that the names and shapes match, so that the
    weights of another network (a checkpoint copied from another run) are one clear
    :class:`~qml_imaging.training.checkpoints.CheckpointError`, not torch's multi-line message."""
    expected = model.state_dict()
    missing = [name for name in expected if name not in weights]
    unexpected = [name for name in weights if name not in expected]
    reshaped = [name for name in expected
                if name in weights and getattr(weights[name], "shape", None) != expected[name].shape]
    if missing or unexpected or reshaped:
        details = [f"{label} {names[:3]}{' ...' if len(names) > 3 else ''}" for label, names in
                   (("missing", missing), ("unexpected", unexpected), ("of another shape", reshaped)) if names]
        raise foreign_checkpoint(run, fit, "; ".join(details))
    model.load_state_dict(weights)


def foreign_checkpoint(run: RunDir, fit: str, details: str) -> CheckpointError:
    """The error for a checkpoint of fit ``fit`` that holds weights of a network this run does not build."""
    return CheckpointError(f"the checkpoint of fit {fit!r} in {run.path} holds the weights of another network "
                           f"({details}), not the {run.config.experiment} model this run's config.yaml builds; "
                           f"it was copied from another run: put the fit's own checkpoints back or train it again "
                           f"(delete {run.checkpoint_dir(fit)} and `qml-imaging run --resume {run.path}`)")


def choose_fit(run: RunDir, fit: str | None, fits: list[str]) -> str:
    """``fit``, or the first of ``fits`` when None; ValueError naming the run's fits when ``fit`` is not one."""
    chosen = fit or fits[0]
    if chosen not in fits:
        raise ValueError(f"fit {chosen!r} is not a model of {run.path}; its models: {fits}")
    return chosen


def recorded_data(run: RunDir, key: str, missing: str) -> Any:
    """``details[key]`` of the run's ``report.json``: how the run prepared data that is no longer at
    ``missing``. Raises FileNotFoundError when the run has no report (it did not finish)."""
    report = run.path / "report.json"
    try:
        return json.loads(report.read_text())["details"][key]
    except (OSError, ValueError, KeyError) as error:
        raise FileNotFoundError(f"{missing!r}, the data of {run.path}, no longer exists and the run's report.json, "
                                f"which records its size, cannot be read ({type(error).__name__}); put the file "
                                f"back at that path, or restore report.json, to load the model") from None
