"""A PennyLane tape as the fast simulator's ``function(inputs, weights)``.

The simulator (:mod:`qml_imaging.quantum.fast`) plans a circuit once per function and reuses the
plan for new values of the same shapes. A device receives a new tape on every call, so
:func:`run_tape` splits a tape's gate parameters into *weights* (every real scalar, as one flat
vector), *inputs* (every distinct broadcast angle, one column each, shape ``(B, columns)``; the same
tensor read twice, as a re-uploading circuit does, is one column) and constants
(matrices, state vectors), and replays the tape from them through a :class:`Replay` shared by every
tape of the same structure (gate types, wires, hyperparameters, which parameter is which, the
measurements). Tapes that differ only in their angles therefore run on one cached plan.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pennylane as qml
import torch
from pennylane.measurements import ExpectationMP, ProbabilityMP, VarianceMP

from qml_imaging.quantum.fast import expectation_values, final_state

REPLAYS_KEPT = 256
"""Tape structures whose replay (and so the simulator's plan) is kept, least recently used dropped first."""


@dataclass
class Operands:
    """A tape's gate parameters as simulator operands: ``inputs`` ``(B, columns)`` and ``weights`` ``(k,)``."""

    inputs: torch.Tensor
    weights: torch.Tensor
    slots: tuple  # per operation, per parameter: "w", an input column (int) or a constant's key (tuple)


class Replay:
    """``function(inputs, weights)`` queuing the operations of :attr:`tape` (set before each run)
    with weight and input parameters taken from the arguments, then ``measurements`` if ``measure``."""

    def __init__(self, slots: tuple, measure: bool):
        self.slots, self.measure = slots, measure
        self.tape: qml.tape.QuantumScript | None = None

    def __call__(self, inputs: torch.Tensor, weights: torch.Tensor) -> None:
        weight = iter(range(weights.shape[0]))
        for operation, slots in zip(self.tape.operations, self.slots):
            if all(isinstance(slot, tuple) for slot in slots):
                qml.apply(operation)
                continue
            values = [weights[next(weight)] if slot == "w" else inputs[:, slot] if isinstance(slot, int) else value
                      for slot, value in zip(slots, operation.data)]
            with qml.QueuingManager.stop_recording():  # a new operator queues itself otherwise
                bound = qml.ops.functions.bind_new_parameters(operation, values)
            qml.apply(bound)
        if self.measure:
            for measurement in self.tape.measurements:
                qml.apply(measurement)


_REPLAYS: OrderedDict = OrderedDict()


def _replay(tape: qml.tape.QuantumScript, slots: tuple, measure: bool) -> Replay:
    """The replay of ``tape``'s structure, shared by every tape of that structure."""
    operations = tuple((type(op).__name__, tuple(op.wires), repr(op.hyperparameters)) for op in tape.operations)
    measurements = tuple(_measurement_key(m) for m in tape.measurements) if measure else ()
    key = (operations, slots, measurements, measure)
    replay = _REPLAYS.pop(key, None) or Replay(slots, measure)
    _REPLAYS[key] = replay
    while len(_REPLAYS) > REPLAYS_KEPT:
        _REPLAYS.popitem(last=False)
    replay.tape = tape
    return replay


def _measurement_key(measurement) -> tuple:
    """A measurement's identity; a torch-valued observable is keyed by structure only (the simulator
    records such circuits on every call, so the values come from the current tape)."""
    observable = measurement.obs
    if observable is not None and any(isinstance(d, torch.Tensor) for d in observable.data):
        return type(measurement).__name__, repr(observable.pauli_rep or observable.name), tuple(measurement.wires)
    return (measurement.hash,)


def _slot(value, ndim: int, batch: int | None):
    """Where one gate parameter goes: "w" (a real scalar), "x" (a broadcast angle) or a constant's key."""
    if isinstance(value, torch.Tensor):
        complex_, shape = value.is_complex(), tuple(value.shape)
    else:
        complex_, shape = isinstance(value, bool) or np.iscomplexobj(value), tuple(np.shape(value))
    if complex_:
        return _constant_key(value)
    if shape == ():
        return "w"
    if batch is not None and ndim == 0 and shape == (batch,):
        return "x"
    return _constant_key(value)


def _constant_key(value) -> tuple:
    if isinstance(value, torch.Tensor):
        return "tensor", tuple(value.shape), str(value.dtype)
    array = np.asarray(value)
    return "array", array.shape, hashlib.sha1(np.ascontiguousarray(array).tobytes()).hexdigest()


def operands(tape: qml.tape.QuantumScript, real: torch.dtype, device: torch.device) -> Operands:
    """Split ``tape``'s gate parameters into simulator operands of dtype ``real`` on ``device``."""
    batch = tape.batch_size
    scalars, columns, slots = [], {}, []
    for operation in tape.operations:
        if isinstance(operation, (qml.ops.SymbolicOp, qml.ops.CompositeOp)):  # parameters not rebindable one by one
            own = [_constant_key(value) for value in operation.data]
        else:
            own = [_slot(value, ndim, batch) for value, ndim in zip(operation.data, _ndim_params(operation))]
        for i, value in enumerate(operation.data):
            if own[i] == "w":
                scalars.append(torch.as_tensor(value, dtype=real, device=device))
            elif own[i] == "x":
                own[i] = columns.setdefault(_identity(value), (len(columns), value))[0]
        slots.append(tuple(own))
    rows = batch if batch is not None else 1
    weights = torch.stack(scalars) if scalars else torch.zeros(0, dtype=real, device=device)
    inputs = (torch.stack([torch.as_tensor(v, dtype=real, device=device) for _, v in columns.values()], dim=1)
              if columns else torch.zeros(rows, 0, dtype=real, device=device))
    return Operands(inputs, weights, tuple(slots))


def _identity(value) -> tuple:
    """What makes two broadcast parameters the same column: the memory they view (or the object)."""
    if isinstance(value, torch.Tensor):
        return value.untyped_storage().data_ptr(), value.storage_offset(), value.stride(), value.shape, value.dtype
    return ("object", id(value))


def _ndim_params(operation) -> tuple:
    try:
        return tuple(operation.ndim_params)
    except Exception:  # PennyLane raises for operators whose parameter ranks are undefined
        return tuple(None for _ in operation.data)


def reads_out(tape: qml.tape.QuantumScript) -> bool:
    """Whether the simulator's own readout computes every measurement of ``tape`` (exact
    expectation values, variances and probabilities; not measurement values of mid-circuit measurements)."""
    return not tape.shots and bool(tape.measurements) and all(
        isinstance(m, (ExpectationMP, VarianceMP, ProbabilityMP)) and m.mv is None for m in tape.measurements)


def run_readout(tape: qml.tape.QuantumScript, real: torch.dtype, device: torch.device) -> torch.Tensor:
    """The simulator's readout of ``tape`` (wires ``0..n-1``): ``(B or 1, n_values)`` of dtype ``real``,
    the measurements' values side by side (one column per expval or var, ``2**k`` per probs over k wires)."""
    return _run(expectation_values, tape, real, device, measure=True)


def run_state(tape: qml.tape.QuantumScript, real: torch.dtype, device: torch.device) -> torch.Tensor:
    """The final state vectors ``(B or 1, 2**n)`` of ``tape`` (wires ``0..n-1``), complex of ``real``'s precision."""
    return _run(final_state, tape, real, device, measure=False)


def _run(entry, tape, real: torch.dtype, device: torch.device, measure: bool) -> torch.Tensor:
    parts = operands(tape, real, device)
    replay = _replay(tape, parts.slots, measure)
    try:
        return entry(replay, parts.inputs, parts.weights, max(len(tape.wires), 1))
    finally:
        replay.tape = None  # the cached replay keeps no batch alive
