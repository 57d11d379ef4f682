"""Applying a program to a state: one :class:`Call` holds everything of one execution (the values,
the gate matrices computed so far, the per-sample phases), so a cached plan is never written to."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from qml_imaging.quantum.fast.costs import fuses, group_size
from qml_imaging.quantum.fast.gates import Gate, GateKind, group_matrices
from qml_imaging.quantum.fast.kernels import (
    Phases,
    apply_dense,
    apply_layer,
    apply_one_qubit,
    bit_selector,
    embed_diagonal,
    kron,
    permute,
)
from qml_imaging.quantum.fast.options import FastOptions
from qml_imaging.quantum.fast.program import (
    GateStep,
    Layer,
    MonomialRun,
    PhaseRun,
    Program,
    Segment,
    SegmentKind,
    Step,
    compose_monomials,
)


@dataclass
class Call:
    """One execution of a plan: ``inputs (B, n)``, the flattened weights, the options, and the gate
    matrices (``(d, d)`` or ``(B, d, d)``) and linear phases ``(B, 2**n)`` computed so far."""

    gates: list[Gate]
    n_qubits: int
    dtype: torch.dtype
    inputs: torch.Tensor
    flat_weights: torch.Tensor
    options: FastOptions
    matrices: dict[int, torch.Tensor] = field(default_factory=dict)
    phases: dict[int, torch.Tensor] = field(default_factory=dict)  # by id of the LinearPhases

    @property
    def device(self) -> torch.device:
        """The device of the inputs, where this call runs."""
        return self.inputs.device

    def matrix(self, index: int) -> torch.Tensor:
        """Gate ``index``'s matrix for this call; its whole group's matrices are computed on first use."""
        gate = self.gates[index]
        if gate.constant is not None:
            return gate.constant
        if index not in self.matrices:
            group = gate.group
            matrices = group_matrices(group, self.gates, self.inputs, self.flat_weights, self.dtype)
            self.matrices.update(zip(group.members, matrices, strict=True))
        return self.matrices[index]


def execute(program: Program, call: Call) -> torch.Tensor:
    """The final state ``(B or 1, 2**n)`` (1 row while no gate has depended on the sample)."""
    batch = call.inputs.shape[0]
    segments = program.segments
    state = None
    deferred = None  # per-sample phases of a shared state, folded into the next fused unitary
    for position, segment in enumerate(segments):
        if segment.kind is SegmentKind.PRODUCT:
            state = _product_state(call, segment.gates)
        elif segment.kind is SegmentKind.BATCHED:
            if _defers(call, segments, position, state.shape[0]):
                deferred = _run_phases(call, segment.steps[0])
                continue
            if state.shape[0] == 1 and batch > 1:
                state = state.expand(batch, -1)
            for step in segment.steps:
                state = _apply_batched_step(call, state, step)
        elif deferred is not None:
            # (psi0 * phases) @ U^T = phases @ (psi0[:, None] * U^T): no batch-sized multiplication
            state = deferred @ (state.reshape(-1, 1) * _fused_transpose(call, segment.steps))
            deferred = None
        else:
            state = _apply_static(call, state, segment.steps)
    return state


def _defers(call: Call, segments: list[Segment], position: int, rows: int) -> bool:
    """Whether a shared state's only per-sample step is a phase run that the next (fused) unitary absorbs."""
    batch, steps = call.inputs.shape[0], segments[position].steps
    return (rows == 1 and batch > 1 and len(steps) == 1 and isinstance(steps[0], PhaseRun)
            and position + 1 < len(segments)
            and fuses(call.gates, segments[position + 1].steps, batch, call.n_qubits, call.device, call.options))


def _product_state(call: Call, indices: list[int]) -> torch.Tensor:
    zero = torch.zeros(1, 2, dtype=call.dtype, device=call.device)
    zero[0, 0] = 1.0
    vectors = [zero] * call.n_qubits
    for i in indices:
        matrix = call.matrix(i)
        wire = call.gates[i].wires[0]
        vector = vectors[wire]
        if matrix.ndim == 2:
            vectors[wire] = vector @ matrix.transpose(0, 1)
        else:
            vectors[wire] = (matrix @ vector.unsqueeze(-1)).squeeze(-1)
    state = vectors[0]
    for vector in vectors[1:]:
        state = torch.matmul(state.unsqueeze(-1), vector.unsqueeze(-2)).flatten(-2)  # outer product: bmm backward
    return state


def _apply_gate(call: Call, state: torch.Tensor, index: int) -> torch.Tensor:
    gate = call.gates[index]
    if gate.kind is GateKind.ONE_QUBIT:
        return apply_one_qubit(state, call.matrix(index), gate.wires[0], call.n_qubits)
    return apply_dense(state, call.matrix(index), gate.wires, call.n_qubits)


def _apply_batched_step(call: Call, state: torch.Tensor, step: Step) -> torch.Tensor:
    if isinstance(step, PhaseRun):
        return state * _run_phases(call, step)
    return _apply_gate(call, state, step.gate)


def _run_phases(call: Call, step: PhaseRun) -> torch.Tensor:
    """Complex phases ``(B, 2**n)`` of a per-sample diagonal run; linear phases are computed once per
    call (runs of the same gates share them) and never build a gate matrix."""
    if step.linear is not None:
        key = id(step.linear)
        if key not in call.phases:
            call.phases[key] = Phases.apply(step.linear.angles(call.inputs))
        return call.phases[key]
    angles = _phase_angles(call, step.gates)
    return Phases.apply(angles) if angles is not None else _merged_phases(call, step.gates)


def _phase_angles(call: Call, indices: list[int]) -> torch.Tensor | None:
    """Per-sample one-qubit diagonal gates on distinct wires (unitary: |entry| = 1) as the angle of
    every basis state's phase ``(B, 2**n)``: the sum over wires of the angle of the entry its bit
    selects, one small real matrix product; None for other diagonal runs."""
    wires = [call.gates[i].wires for i in indices]
    if not (all(len(w) == 1 for w in wires) and len(set(wires)) == len(wires)):
        return None
    diagonals = [torch.diagonal(call.matrix(i), dim1=-2, dim2=-1) for i in indices]
    if diagonals[0].ndim != 2:
        return None
    angles = torch.angle(torch.cat(diagonals, dim=-1))
    return angles @ bit_selector(tuple(w[0] for w in wires), call.n_qubits, angles.dtype, str(call.device))


def _merged_phases(call: Call, indices: list[int]) -> torch.Tensor:
    """Product of diagonal gates as one ``(..., 2**n)`` phase vector (per-wire Kronecker products
    when they are one-qubit gates on distinct wires)."""
    n = call.n_qubits
    wires = [call.gates[i].wires for i in indices]
    diagonals = [torch.diagonal(call.matrix(i), dim1=-2, dim2=-1) for i in indices]
    if all(len(w) == 1 for w in wires) and len(set(wires)) == len(wires):
        per_wire = {w[0]: d for w, d in zip(wires, diagonals, strict=True)}
        ones = torch.ones(2, dtype=call.dtype, device=call.device)
        phases = per_wire.get(0, ones)
        for wire in range(1, n):
            factor = per_wire.get(wire, ones)
            phases = (phases.unsqueeze(-1) * factor.unsqueeze(-2)).flatten(-2)
        return phases
    phases = embed_diagonal(diagonals[0], wires[0], n)
    for w, d in zip(wires[1:], diagonals[1:], strict=True):
        phases = phases * embed_diagonal(d, w, n)
    return phases


def _apply_static(call: Call, state: torch.Tensor, steps: list[Step]) -> torch.Tensor:
    rows, n = state.shape[0], call.n_qubits
    if fuses(call.gates, steps, rows, n, call.device, call.options):
        return state @ _fused_transpose(call, steps)
    return _apply_structured(call, state, steps, group_size(rows, n, call.device, call.options))


def _fused_transpose(call: Call, steps: list[Step]) -> torch.Tensor:
    """``U^T`` of a data-independent run: its steps applied to the rows of the identity, where a
    leading one-qubit layer is the (transposed) Kronecker product of its wire matrices itself."""
    n = call.n_qubits
    like = torch.empty(0, dtype=call.dtype, device=call.device)
    if isinstance(steps[0], Layer):
        factors = {wire: _wire_matrix(call, indices) for wire, indices in steps[0].wires.items()}
        start, steps = kron([factors.get(wire) for wire in range(n)], like=like).transpose(0, 1), steps[1:]
    else:
        start = torch.eye(2**n, dtype=call.dtype, device=call.device)
    return _apply_structured(call, start, steps, group_size(2**n, n, call.device, call.options))


def _apply_structured(call: Call, state: torch.Tensor, steps: list[Step], group: int) -> torch.Tensor:
    n = call.n_qubits
    for step in steps:
        if isinstance(step, Layer):
            factors = {wire: _wire_matrix(call, indices) for wire, indices in step.wires.items()}
            state = apply_layer(state, factors, n, group)
        elif isinstance(step, MonomialRun):
            monomial = (step.constant if step.constant is not None
                        else compose_monomials(call.gates, step.gates, call.matrix, n, call.device))
            if monomial.permutation is not None:
                state = permute(state, monomial.permutation)
            if monomial.phases is not None:
                state = state * monomial.phases
        elif isinstance(step, GateStep):
            state = _apply_gate(call, state, step.gate)
    return state


def _wire_matrix(call: Call, indices: list[int]) -> torch.Tensor:
    matrix = call.matrix(indices[0])
    for i in indices[1:]:
        matrix = call.matrix(i) @ matrix
    return matrix
