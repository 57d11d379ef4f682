"""Recording a circuit: its PennyLane tape decomposed to gates with matrices, its wires checked, and
each gate parameter traced to where it lives (an element of ``weights``, a column of ``inputs``, a
constant) so that a cached plan can gather new values without recording the tape again."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np
import pennylane as qml
import torch
from pennylane.exceptions import DecompositionUndefinedError, MatrixUndefinedError
from pennylane.measurements import MidMeasureMP

from qml_imaging.quantum.fast.options import FALLBACKS, Fallback


def record_tape(function, inputs: torch.Tensor, weights: torch.Tensor) -> qml.tape.QuantumScript:
    """The tape ``function(inputs, weights)`` queues (PennyLane's ``qml.tape.make_qscript``)."""
    return qml.tape.make_qscript(function)(inputs, weights)


def decompose(operations: Sequence[qml.operation.Operator]) -> Iterator[qml.operation.Operator]:
    """Operations decomposed until each has a matrix PennyLane can build for its parameters (templates
    such as StronglyEntanglingLayers expand; so do gates such as IsingXY, whose matrix goes through
    NumPy and fails on a batch of angles that needs a gradient: counted as ``Fallback.DECOMPOSED``);
    an operation with neither (a mid-circuit measurement, a channel) is refused by name
    (NotImplementedError)."""
    for operation in operations:
        if operation.has_matrix and _matrix_builds(operation):
            yield operation
            continue
        if isinstance(operation, MidMeasureMP):
            raise NotImplementedError(
                f"the fast simulator runs state-vector circuits without mid-circuit measurements; this one "
                f"measures wire {list(operation.wires)} mid-circuit (qml.measure); use default.qubit")
        try:
            parts = operation.decomposition()
        except DecompositionUndefinedError:
            raise NotImplementedError(
                f"the fast simulator cannot run {operation.name} on wires {list(operation.wires)}: it has no "
                f"matrix and no decomposition into gates with matrices; use default.qubit"
            ) from None
        yield from decompose(parts)


def _matrix_builds(operation: qml.operation.Operator) -> bool:
    """Whether PennyLane builds ``operation``'s matrix for its own parameters (always tried when one
    of them needs a gradient, the case where NumPy-based matrices fail with RuntimeError)."""
    if not any(isinstance(value, torch.Tensor) and value.requires_grad for value in operation.data):
        return True
    try:
        qml.matrix(operation)
    except (RuntimeError, MatrixUndefinedError):  # numpy() of a tensor that needs a gradient
        FALLBACKS.add(Fallback.DECOMPOSED)
        return False
    return True


def wires_of(operator: qml.operation.Operator, n_qubits: int) -> tuple[int, ...]:
    """``operator``'s wires as integers; ValueError naming the wire unless it is in ``0..n_qubits-1``."""
    wires = []
    for wire in operator.wires:
        if not isinstance(wire, (int, np.integer)) or not 0 <= int(wire) < n_qubits:
            raise ValueError(f"{operator.name} acts on wire {wire!r}; the fast simulator numbers wires "
                             f"0..{n_qubits - 1} for a {n_qubits}-qubit template")
        wires.append(int(wire))
    return tuple(wires)


class SourceKind(Enum):
    """Where a gate parameter lives."""

    WEIGHT = "weight"  # an element of the flattened weights
    INPUT = "input"  # a column inputs[..., j]
    CONSTANT = "constant"  # a number


@dataclass(frozen=True)
class Source:
    """One traced gate parameter: ``index`` is the flat weight index, the input column, or the constant's value."""

    kind: SourceKind
    index: int | float

    def value(self, inputs: torch.Tensor, flat_weights: torch.Tensor) -> torch.Tensor:
        """This parameter for one call: a 0-d tensor, or ``(B,)`` for an input column."""
        if self.kind is SourceKind.WEIGHT:
            return flat_weights[self.index]
        if self.kind is SourceKind.INPUT:
            return inputs[:, self.index]
        return torch.tensor(self.index, dtype=inputs.dtype, device=inputs.device)


def source_of(value, inputs: torch.Tensor, weights: torch.Tensor) -> Source | None:
    """Where one gate parameter lives (a 0-d view of ``weights`` found by its storage offset, a column
    of ``inputs``, a real number), or None when it cannot be traced (an expression, a complex value)."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return Source(SourceKind.CONSTANT, float(value))
    if isinstance(value, np.ndarray) and value.ndim == 0 and np.isrealobj(value):
        return Source(SourceKind.CONSTANT, float(value))
    if not isinstance(value, torch.Tensor) or value.is_complex():
        return None
    storage = value.untyped_storage().data_ptr()
    if value.ndim == 0 and weights.numel() and storage == weights.untyped_storage().data_ptr():
        offset = value.storage_offset() - weights.storage_offset()
        if 0 <= offset < weights.numel():
            return Source(SourceKind.WEIGHT, offset)
    if value.ndim == 1 and value.shape[0] == inputs.shape[0] and storage == inputs.untyped_storage().data_ptr():
        offset = value.storage_offset() - inputs.storage_offset()
        if (value.shape[0] == 1 or value.stride(0) == inputs.shape[1]) and 0 <= offset < inputs.shape[1]:
            return Source(SourceKind.INPUT, offset)
    return None


def is_constant(value) -> bool:
    """Whether a gate parameter is a plain number (no tensor of any framework)."""
    return not isinstance(value, torch.Tensor) and not hasattr(value, "requires_grad")


def real_dtype(dtype: torch.dtype) -> torch.dtype:
    """The real dtype of a complex one (float64 for complex128, else float32)."""
    return torch.float64 if dtype == torch.complex128 else torch.float32


def as_complex(matrix, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``matrix`` as a contiguous tensor of ``dtype`` (PennyLane's adjoints are conjugated transposed views)."""
    return torch.as_tensor(matrix).to(device=device, dtype=dtype).resolve_conj().contiguous()


def operation_matrix(operation: qml.operation.Operator, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """An operation's own matrix, with numbers among its parameters made tensors first (PennyLane's
    matrices of some gates fail on a mix of Python numbers and torch tensors); where the parameters
    cannot be rebound, the matrix of the operation as recorded (``Fallback.UNBOUND_MATRIX``)."""
    real = real_dtype(dtype)
    try:
        parameters = [p if isinstance(p, torch.Tensor) else torch.as_tensor(
            p, dtype=real if np.isrealobj(p) else dtype, device=device) for p in operation.data]
        matrix = qml.matrix(qml.ops.functions.bind_new_parameters(operation, parameters))
    except (TypeError, ValueError, RuntimeError):
        FALLBACKS.add(Fallback.UNBOUND_MATRIX)
        matrix = qml.matrix(operation)
    return as_complex(matrix, dtype, device)
