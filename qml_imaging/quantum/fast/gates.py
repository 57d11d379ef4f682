"""The gates of a plan: their kind (judged once from matrices at random parameters), the groups
whose matrices come from one vectorised ``compute_matrix`` call, and the linear phases of per-sample
diagonal gates, which never build a matrix."""

from __future__ import annotations

import inspect
from collections import defaultdict
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache

import pennylane as qml
import torch
from pennylane.exceptions import MatrixUndefinedError

from qml_imaging.quantum.fast.options import FALLBACKS, Fallback
from qml_imaging.quantum.fast.recording import (
    Source,
    SourceKind,
    as_complex,
    is_constant,
    operation_matrix,
    source_of,
    wires_of,
)

MATRIX_ERRORS = (TypeError, ValueError, RuntimeError, MatrixUndefinedError)
# Gate kinds are judged at parameters drawn from a generator of their own: building a plan (lazily, on a
# circuit's first call in a process) must not draw from torch's global generator, or a resumed run, whose
# new process builds its plans after the checkpoint's RNG state is restored, would draw differently.
_KIND_SEED = 20_240_917
"""What PennyLane raises when a gate type's ``compute_matrix`` cannot take a batch of tensor parameters."""


class GateKind(Enum):
    """The structure of a gate's matrix, for every parameter value."""

    DIAGONAL = "diagonal"
    MONOMIAL = "monomial"  # a permutation with phases
    ONE_QUBIT = "one_qubit"  # dense, on one wire
    DENSE = "dense"


@dataclass(frozen=True)
class LinearPhase:
    """A per-sample diagonal gate of input column ``column`` whose entries are
    ``exp(1j * (offset + x * slope))``; ``slope`` and ``offset`` are float64 ``(2**k,)``."""

    column: int
    slope: torch.Tensor
    offset: torch.Tensor


@dataclass(frozen=True)
class SlotIndex:
    """How one parameter slot of a group is gathered: all from weights or all from input columns
    (``kind`` with the index tensor), or element by element (``kind`` None: mixed sources)."""

    kind: SourceKind | None
    index: torch.Tensor | None


@dataclass
class GateGroup:
    """Parametric gates of one type whose matrices come from one vectorised ``compute_matrix`` call;
    ``recorded``: their matrices are built gate by gate from the recorded operations instead."""

    gate_type: type
    batched: bool
    hyperparameters: dict
    members: list[int]
    sources: list[list[Source | None]]  # per parameter slot, per member
    recorded: bool = False
    slots: list[SlotIndex] = field(default_factory=list)


@dataclass
class Gate:
    """One gate of a plan: wires, kind, whether its matrix has a batch dimension, and where it comes from
    (a constant matrix, or its group's matrices of each call)."""

    operation: qml.operation.Operator
    wires: tuple[int, ...]
    kind: GateKind
    batched: bool
    constant: torch.Tensor | None = None
    group: GateGroup | None = None
    phase: LinearPhase | None = None


@dataclass
class Gates:
    """A plan's gates in circuit order and their parametric groups; ``reusable``: every parameter is traced."""

    gates: list[Gate]
    groups: list[GateGroup]
    reusable: bool


def build_gates(operations: list, inputs: torch.Tensor, weights: torch.Tensor, n_qubits: int,
                dtype: torch.dtype) -> Gates:
    """The gates of decomposed ``operations`` for ``inputs (B, n)`` and ``weights`` (any shape):
    constant gates get their matrix now, parametric ones are grouped by type and traced."""
    batch, device = inputs.shape[0], inputs.device
    gates: list[Gate] = []
    by_key: dict[tuple, list[int]] = defaultdict(list)
    for operation in operations:
        wires = wires_of(operation, n_qubits)
        batch_size = operation.batch_size
        if batch_size is not None and batch_size != batch:
            raise ValueError(f"{operation.name} on wires {list(wires)} is broadcast over {batch_size} values "
                             f"but the batch has {batch} samples")
        gate = Gate(operation, wires, GateKind.DENSE, batch_size is not None)
        gates.append(gate)
        if all(is_constant(value) for value in operation.data):
            gate.constant = as_complex(operation.matrix(), dtype, device)
            gate.kind = kind_of(gate.constant, len(wires))
            continue
        keywords = matrix_keywords(type(operation), operation.hyperparameters)
        by_key[type(operation), gate.batched, repr(sorted(keywords.items())), len(wires)].append(len(gates) - 1)
    groups = [_group(gates, members, inputs, weights) for members in by_key.values()]
    return Gates(gates, groups, all(not group.recorded for group in groups))


def _group(gates: list[Gate], members: list[int], inputs: torch.Tensor, weights: torch.Tensor) -> GateGroup:
    first = gates[members[0]]
    operations = [gates[i].operation for i in members]
    sources = [[source_of(op.data[slot], inputs, weights) for op in operations]
               for slot in range(first.operation.num_params)]
    group = GateGroup(type(first.operation), first.batched,
                      matrix_keywords(type(first.operation), first.operation.hyperparameters), members, sources)
    traced = all(s is not None for slot in sources for s in slot)
    group.recorded = not traced or not _vectorises(group, first.operation)
    if not group.recorded:
        group.slots = [_slot_index(slot, inputs.device) for slot in sources]
    kind = _group_kind(group, first.operation)
    for i in members:
        gates[i].kind, gates[i].group = kind, group
    linear = linear_phase(group) if kind is GateKind.DIAGONAL else None
    if linear is not None:
        for i, source in zip(members, sources[0], strict=True):
            gates[i].phase = LinearPhase(int(source.index), *linear)
    return group


def _slot_index(slot: list[Source], device: torch.device) -> SlotIndex:
    kinds = {source.kind for source in slot}
    if len(kinds) == 1 and kinds <= {SourceKind.WEIGHT, SourceKind.INPUT}:
        return SlotIndex(kinds.pop(), torch.tensor([int(source.index) for source in slot], device=device))
    return SlotIndex(None, None)


@lru_cache(maxsize=256)
def _keyword_names(gate_type: type) -> frozenset[str] | None:
    """The keyword parameters of ``gate_type.compute_matrix`` (None: it takes any keyword)."""
    parameters = inspect.signature(gate_type.compute_matrix).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return frozenset(p.name for p in parameters)


def matrix_keywords(gate_type: type, hyperparameters: dict) -> dict:
    """The hyperparameters ``gate_type.compute_matrix`` takes (a controlled rotation's ``compute_matrix``
    takes none of its ``control_wires``, ``base``...; ``MultiRZ`` takes ``num_wires``)."""
    names = _keyword_names(gate_type)
    return dict(hyperparameters) if names is None else {k: v for k, v in hyperparameters.items() if k in names}


def _vectorises(group: GateGroup, first: qml.operation.Operator) -> bool:
    """Whether ``compute_matrix`` of gathered parameters reproduces the first gate's own matrix (counted
    as ``Fallback.NOT_VECTORISED`` when not: its group's matrices are then built gate by gate)."""
    try:
        # as at run time: a vector of values that needs a gradient (some compute_matrix go through numpy)
        values = [torch.as_tensor(v, dtype=torch.float64).detach().reshape(-1)[:1].repeat(2).requires_grad_()
                  for v in first.data]
        ours = torch.as_tensor(group.gate_type.compute_matrix(*values, **group.hyperparameters))[0]
        bound = qml.ops.functions.bind_new_parameters(first, [v[0].detach() for v in values])
        theirs = torch.as_tensor(qml.matrix(bound)).to(torch.complex128)
        agrees = torch.allclose(ours.detach().reshape(theirs.shape).to(torch.complex128), theirs, atol=1e-10)
    except MATRIX_ERRORS:
        agrees = False
    if not agrees:
        FALLBACKS.add(Fallback.NOT_VECTORISED)
    return agrees


def _group_kind(group: GateGroup, first: qml.operation.Operator) -> GateKind:
    """The kind of the group's gates from matrices at random parameters; a gate type whose matrices
    cannot be sampled so (non-scalar parameters, no ``compute_matrix``) is one-qubit or dense
    (``Fallback.KIND_UNKNOWN``)."""
    n_wires = len(first.wires)
    sample = None
    if all(torch.as_tensor(v).ndim <= (1 if group.batched else 0) for v in first.data):
        probe = torch.Generator().manual_seed(_KIND_SEED)
        generic = [torch.rand(3, dtype=torch.float64, generator=probe) * 6.0 + 0.1 for _ in first.data]
        try:
            sample = torch.as_tensor(group.gate_type.compute_matrix(*generic, **group.hyperparameters))
        except MATRIX_ERRORS:
            sample = None
    if sample is None or sample.shape[-1] != 2**n_wires:
        FALLBACKS.add(Fallback.KIND_UNKNOWN)
        return GateKind.ONE_QUBIT if n_wires == 1 else GateKind.DENSE
    return kind_of(sample, n_wires)


def kind_of(sample: torch.Tensor, n_wires: int) -> GateKind:
    """Kind of a gate from sample matrices ``(..., d, d)`` (random parameters: holds for all values)."""
    magnitude = sample.detach().abs().reshape(-1, *sample.shape[-2:]).amax(dim=0)
    if (magnitude - torch.diag_embed(torch.diagonal(magnitude))).amax() == 0:
        return GateKind.DIAGONAL
    if n_wires == 1:
        return GateKind.ONE_QUBIT
    nonzero = magnitude > 0
    if (nonzero.sum(dim=-1) == 1).all() and (nonzero.sum(dim=-2) == 1).all():
        return GateKind.MONOMIAL
    return GateKind.DENSE


def linear_phase(group: GateGroup) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(slope, offset)``, float64 ``(d,)``, when the group's gates are per-sample diagonal gates of one
    input column whose entries are ``exp(1j * (offset + theta * slope))`` for every angle ``theta``
    (RZ, PhaseShift, CRZ, IsingZZ, MultiRZ, ...; checked on probe angles); otherwise None."""
    if not group.batched or group.recorded or len(group.sources) != 1 or group.slots[0].kind is not SourceKind.INPUT:
        return None
    probes = torch.tensor([0.0, 1e-3, -2.7, 0.9, 5.1], dtype=torch.float64)
    try:
        matrices = torch.as_tensor(group.gate_type.compute_matrix(probes, **group.hyperparameters))
        entries = torch.diagonal(matrices, dim1=-2, dim2=-1).to(torch.complex128)
    except MATRIX_ERRORS:  # a gate type that does not vectorise over angles keeps the matrix path
        FALLBACKS.add(Fallback.NO_LINEAR_PHASE)
        return None
    if entries.shape[0] != len(probes) or not torch.allclose(entries.abs(), torch.ones(()).double()):
        return None
    offset = torch.angle(entries[0])
    slope = torch.angle(entries[1] / entries[0]) / probes[1]
    predicted = torch.polar(torch.ones_like(entries.real), offset + probes[:, None] * slope)
    return (slope, offset) if torch.allclose(predicted, entries, atol=1e-10) else None


def group_matrices(group: GateGroup, gates: list[Gate], inputs: torch.Tensor, flat_weights: torch.Tensor,
                   dtype: torch.dtype) -> list[torch.Tensor]:
    """The matrices of ``group``'s members for one call's values, in member order: ``(d, d)`` each, or
    ``(B, d, d)`` for per-sample gates (one vectorised ``compute_matrix`` call; one stack in the backward)."""
    if group.recorded:
        return [operation_matrix(gates[i].operation, dtype, inputs.device) for i in group.members]
    batch = inputs.shape[0]
    columns = []
    for sources, slot in zip(group.sources, group.slots, strict=True):
        if slot.kind is SourceKind.WEIGHT:
            column = flat_weights[slot.index]
        elif slot.kind is SourceKind.INPUT:
            column = inputs[:, slot.index].transpose(0, 1)
        else:
            values = [source.value(inputs, flat_weights) for source in sources]
            if group.batched:
                values = [v.expand(batch) if v.ndim == 0 else v for v in values]
            column = torch.stack(values)
        if group.batched and column.ndim == 1:
            column = column.unsqueeze(1).expand(-1, batch)
        columns.append(column)
    shape = columns[0].shape
    matrices = group.gate_type.compute_matrix(*(c.reshape(-1) for c in columns), **group.hyperparameters)
    matrices = as_complex(matrices, dtype, inputs.device)
    return list(matrices.reshape(*shape, *matrices.shape[-2:]).unbind(0))
