"""Random generators that objects keep for themselves, and the hook that puts them in training checkpoints.

The global generators (torch CPU and CUDA, NumPy's legacy one, Python's ``random``) are in every
checkpoint already (:func:`qml_imaging.training.checkpoints.capture_rng_state`). A generator an object
owns is not: a sampled backend's shot generator, a stochastic gradient estimator's (SPSA directions),
a noise source's. An object holding one is a **random source** when it defines two methods::

    def random_state(self):            # tensors and plain data only (checkpoints load with weights_only);
        ...                            # None: nothing to save now
    def set_random_state(self, state):  # the inverse; called before the first epoch a resumed fit trains
        ...

The :class:`~qml_imaging.training.Trainer` saves the state of every random source it reaches in each
checkpoint and gives each its state back on resume (:func:`find_random_sources`):

* every sub-module of the model that is one, named by its module path
  (:class:`~qml_imaging.quantum.layer.QuantumLayer` is one: it forwards to its executor, so an
  :class:`~qml_imaging.quantum.executors.Executor` that samples from a generator of its own only
  overrides ``Executor.random_state`` / ``Executor.set_random_state``);
* the objective, when it is one;
* the objects handed to the Trainer as ``random_sources={name: source}`` (anything else a fit draws from).

Without this, a resumed fit would start such a generator from its seed again and draw other numbers than
an uninterrupted fit. State built lazily on a first call (caches, plans) must draw from no global generator
for the same reason: a resumed process builds it after the checkpoint's state is restored.
:func:`generator_state` and :func:`set_generator_state` turn a ``torch.Generator`` or a
``numpy.random.Generator`` into plain data and back.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def is_random_source(candidate: object) -> bool:
    """Whether ``candidate`` defines both ``random_state()`` and ``set_random_state(state)``."""
    return callable(getattr(candidate, "random_state", None)) and callable(getattr(candidate, "set_random_state", None))


def find_random_sources(model: Any, objective: object = None, given: dict[str, Any] | None = None) -> dict[str, Any]:
    """The random sources of a fit, by name: ``module:<path>`` for sub-modules of ``model`` (``module:`` for the
    model itself), ``objective``, and the ``given`` ones under their own names.

    Raises TypeError naming a given object that is not a random source.
    """
    found = {f"module:{path}": module for path, module in model.named_modules() if is_random_source(module)}
    if is_random_source(objective):
        found["objective"] = objective
    for name, source in (given or {}).items():
        if not is_random_source(source):
            raise TypeError(f"random_sources[{name!r}] is a {type(source).__name__}, which lacks random_state() "
                            "and set_random_state(state)")
        found[name] = source
    return found


def capture_sources(sources: dict[str, Any]) -> dict[str, Any]:
    """``{name: state}`` of every source whose ``random_state()`` is not None."""
    states = {name: source.random_state() for name, source in sources.items()}
    return {name: state for name, state in states.items() if state is not None}


def restore_sources(sources: dict[str, Any], states: dict[str, Any]) -> None:
    """Give each source in ``sources`` its state from ``states`` (sources without one keep theirs)."""
    for name, state in states.items():
        if name in sources:
            sources[name].set_random_state(state)


def generator_state(generator: torch.Generator | np.random.Generator) -> dict[str, Any]:
    """A torch or NumPy generator's state as a tensor or plain data (what ``weights_only`` loading reads).

    Raises TypeError for anything else.
    """
    if isinstance(generator, np.random.Generator):
        return {"numpy": generator.bit_generator.state}
    if isinstance(generator, torch.Generator):
        return {"torch": generator.get_state()}
    raise TypeError(f"expected a torch.Generator or numpy.random.Generator, got {type(generator).__name__}")


def set_generator_state(generator: torch.Generator | np.random.Generator, state: dict[str, Any]) -> None:
    """Inverse of :func:`generator_state`; ValueError when ``state`` is of the other kind of generator."""
    kind = "numpy" if isinstance(generator, np.random.Generator) else "torch"
    if kind not in state:
        raise ValueError(f"a {kind} generator cannot take the state of a {next(iter(state), 'unknown')} generator")
    if isinstance(generator, np.random.Generator):
        generator.bit_generator.state = state["numpy"]
    else:
        generator.set_state(state["torch"].cpu())
