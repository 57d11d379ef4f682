"""The program: a plan's gates cut into typed steps that the executor applies in order.

A program is a list of :class:`Segment`\\ s: the leading one-qubit gates on ``|0...0>`` (kept as one
2-vector per wire), then alternating runs of data-independent (``STATIC``) and per-sample
(``BATCHED``) gates. A run's steps are a :class:`Layer` (one-qubit gates combined per wire), a
:class:`MonomialRun` (diagonal and permutation gates as one phase vector and one gather), a
:class:`PhaseRun` (per-sample diagonal gates as one phase vector) or a :class:`GateStep` (any other
gate). Before a computational-basis readout, trailing phases are dropped and a trailing permutation
moves to the probabilities (:attr:`Program.final_permutation`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

import torch

from qml_imaging.quantum.fast.gates import Gate, GateKind
from qml_imaging.quantum.fast.kernels import local_index
from qml_imaging.quantum.fast.recording import real_dtype


class SegmentKind(Enum):
    """How a segment of a circuit's operations is executed: product state, static unitary or per-sample gates."""
    PRODUCT = "product"  # leading one-qubit gates on |0...0>, one 2-vector per wire and sample
    STATIC = "static"  # data-independent gates: fused into one unitary or structured, by cost
    BATCHED = "batched"  # per-sample gates


@dataclass
class Layer:
    """One-qubit gates combined per wire: ``{wire: gate indices in order}``."""

    wires: dict[int, list[int]]


@dataclass(frozen=True)
class Monomial:
    """``(G psi)[s] = phases[s] * psi[permutation[s]]``; None for an identity permutation or unit phases."""

    permutation: torch.Tensor | None
    phases: torch.Tensor | None


@dataclass
class MonomialRun:
    """Diagonal and permutation gates in order; ``constant``: their product, precomputed when all are constant."""

    gates: list[int]
    constant: Monomial | None = None


@dataclass
class LinearPhases:
    """Per-sample diagonal gates whose phase angles are linear in input columns: the angle of every
    basis state is ``offset + inputs[:, columns] @ slopes`` (one small real matrix product)."""

    columns: torch.Tensor  # (m,) input columns
    slopes: torch.Tensor  # (m, 2**n) real
    offset: torch.Tensor | None  # (2**n,) real, None when zero

    def angles(self, inputs: torch.Tensor) -> torch.Tensor:
        """Phase angles ``(B, 2**n)`` of every basis state for ``inputs (B, n)``."""
        selected = inputs.index_select(1, self.columns)
        return selected @ self.slopes if self.offset is None else torch.addmm(self.offset, selected, self.slopes)


@dataclass
class PhaseRun:
    """Per-sample diagonal gates; ``linear``: their phases when all are linear phases of input columns."""

    gates: list[int]
    linear: LinearPhases | None = None


@dataclass
class GateStep:
    """Any other gate, applied on its wires."""

    gate: int


Step = Layer | MonomialRun | PhaseRun | GateStep


@dataclass
class Segment:
    """A run of steps of one kind (``PRODUCT``: ``gates`` are the leading one-qubit gates, no steps)."""

    kind: SegmentKind
    steps: list[Step] = field(default_factory=list)
    gates: list[int] = field(default_factory=list)


@dataclass
class Program:
    """The segments in order, and the permutation the readout applies to the probabilities (or None)."""

    segments: list[Segment]
    final_permutation: torch.Tensor | None = None

    @property
    def n_steps(self) -> int:
        """Steps that may each keep a state for the backward pass, plus the initial state."""
        return sum(1 if s.kind is SegmentKind.PRODUCT else len(s.steps) for s in self.segments) + 1


@dataclass
class Context:
    """What compiling needs of a plan: gates, qubits, dtype, device, and the shared linear phases."""

    gates: list[Gate]
    n_qubits: int
    dtype: torch.dtype
    device: torch.device
    linear_phases: dict = field(default_factory=dict)  # one LinearPhases per distinct per-sample phase run


def compile_program(context: Context, absorb_tail: bool) -> Program:
    """Cut the gates into segments and steps; ``absorb_tail``: the readout is in the computational basis."""
    gates = context.gates
    index = 0
    while index < len(gates) and len(gates[index].wires) == 1:
        index += 1
    segments = [Segment(SegmentKind.PRODUCT, gates=list(range(index)))]
    while index < len(gates):
        batched = gates[index].batched
        end = index
        while end < len(gates) and gates[end].batched == batched:
            end += 1
        run = list(range(index, end))
        steps = _batched_steps(context, run) if batched else _static_steps(context, run)
        segments.append(Segment(SegmentKind.BATCHED if batched else SegmentKind.STATIC, steps))
        index = end
    program = Program(segments)
    if absorb_tail:
        _absorb_tail(context, program)
    return program


def _batched_steps(context: Context, run: list[int]) -> list[Step]:
    steps: list[Step] = []
    for i in run:
        if context.gates[i].kind is not GateKind.DIAGONAL:
            steps.append(GateStep(i))
        elif steps and isinstance(steps[-1], PhaseRun):
            steps[-1].gates.append(i)
        else:
            steps.append(PhaseRun([i]))
    for step in steps:
        if isinstance(step, PhaseRun):
            step.linear = _linear_phases(context, step.gates)
    return steps


def _static_steps(context: Context, run: list[int]) -> list[Step]:
    """One-qubit gates wait per wire until a multi-qubit gate touches their wire."""
    steps: list[Step] = []
    pending: dict[int, list[int]] = {}
    for i in run:
        gate = context.gates[i]
        if len(gate.wires) == 1:
            pending.setdefault(gate.wires[0], []).append(i)
            continue
        if pending and set(gate.wires) & set(pending):
            steps.append(Layer(pending))
            pending = {}
        if gate.kind not in (GateKind.DIAGONAL, GateKind.MONOMIAL):
            steps.append(GateStep(i))
        elif steps and isinstance(steps[-1], MonomialRun):
            steps[-1].gates.append(i)
        else:
            steps.append(MonomialRun([i]))
    if pending:
        steps.append(Layer(pending))
    for step in steps:
        if isinstance(step, MonomialRun) and all(context.gates[i].constant is not None for i in step.gates):
            step.constant = compose_monomials(context.gates, step.gates, lambda i: context.gates[i].constant,
                                              context.n_qubits, context.device)
    return steps


def _linear_phases(context: Context, indices: list[int]) -> LinearPhases | None:
    """The run's phases as :class:`LinearPhases` when every gate has a linear phase (None
    otherwise); runs of the same gates share one object, so a call computes their phases once."""
    gates = [context.gates[i] for i in indices]
    if not all(gate.phase is not None for gate in gates):
        return None
    key = tuple(sorted((g.phase.column, g.wires, tuple(g.phase.slope.tolist()), tuple(g.phase.offset.tolist()))
                       for g in gates))
    if key not in context.linear_phases:
        n, real, device = context.n_qubits, real_dtype(context.dtype), context.device
        slopes, offset = defaultdict(float), 0.0
        for gate in gates:
            local = local_index(gate.wires, n, "cpu")
            slopes[gate.phase.column] = slopes[gate.phase.column] + gate.phase.slope[local]
            offset = offset + gate.phase.offset[local]
        columns = sorted(slopes)
        context.linear_phases[key] = LinearPhases(
            torch.tensor(columns, device=device),
            torch.stack([slopes[c] for c in columns]).to(device=device, dtype=real),
            None if not torch.any(offset != 0) else offset.to(device=device, dtype=real))
    return context.linear_phases[key]


def _absorb_tail(context: Context, program: Program) -> None:
    """Trailing diagonal and constant permutation steps before a computational-basis readout: phases
    change no probability (dropped), a permutation is applied to the probabilities instead."""
    permutation = None
    segments = program.segments
    while len(segments) > 1 and segments[-1].steps:
        steps = segments[-1].steps
        last = steps[-1]
        if isinstance(last, PhaseRun):
            steps.pop()
        elif isinstance(last, MonomialRun) and last.constant is not None:
            if last.constant.permutation is not None:
                moved = last.constant.permutation
                permutation = moved if permutation is None else moved[permutation]
            steps.pop()
        elif isinstance(last, MonomialRun) and all(context.gates[i].kind is GateKind.DIAGONAL for i in last.gates):
            steps.pop()
        else:
            break
        if not steps:
            segments.pop()
    program.final_permutation = permutation


def compose_monomials(gates: list[Gate], indices: list[int], matrix: Callable[[int], torch.Tensor], n: int,
                      device: torch.device) -> Monomial:
    """The product of diagonal and permutation gates in order, with ``matrix(i)`` gate ``i``'s matrix;
    for constant runs an identity permutation or all-one phases become None."""
    states = torch.arange(2**n, device=device)
    permutation, phases = None, None
    for i in indices:
        gate = gates[i]
        gate_matrix = matrix(i)
        local = local_index(gate.wires, n, str(device))
        if gate.kind is GateKind.DIAGONAL:
            gate_permutation, gate_phases = None, torch.diagonal(gate_matrix)[local]
        else:
            gate_permutation, gate_phases = _gate_monomial(gate, gate_matrix, local, states, n)
        # G2 after G1: perm = perm1[perm2], phases = phases2 * phases1[perm2]
        if gate_permutation is not None:
            permutation = gate_permutation if permutation is None else permutation[gate_permutation]
            phases = None if phases is None else phases[gate_permutation]
        phases = gate_phases if phases is None else phases * gate_phases
    if all(gates[i].constant is not None for i in indices):
        if phases is not None and torch.equal(phases, torch.ones_like(phases)):
            phases = None
        if permutation is not None and torch.equal(permutation, states):
            permutation = None
    return Monomial(permutation, phases)


def _gate_monomial(gate: Gate, matrix: torch.Tensor, local: torch.Tensor, states: torch.Tensor,
                   n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One permutation gate's full-register permutation and phases."""
    source = (matrix.detach().abs() > 0).to(torch.int64).argmax(dim=-1)
    phases = matrix.gather(-1, source.unsqueeze(-1)).squeeze(-1)[local]
    mask = sum(1 << (n - 1 - w) for w in gate.wires)
    source_local = source[local]
    bits = torch.zeros_like(states)
    for position, wire in enumerate(gate.wires):
        bits |= ((source_local >> (len(gate.wires) - 1 - position)) & 1) << (n - 1 - wire)
    return (states & ~mask) | bits, phases
