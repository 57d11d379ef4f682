"""Fast batched statevector execution of PennyLane quantum functions in plain torch.

The simulator does not re-implement any circuit: it records the template's PennyLane tape for the
current batch (``qml.tape.make_qscript``), decomposes templates down to gates with matrices, takes
each gate's matrix from PennyLane (``compute_matrix``, one vectorised call per gate type), and
executes the gates on a ``(B, 2**n)`` complex state, differentiable by backprop, on CPU or CUDA.
Wire 0 is the most significant bit, as in PennyLane.

It exploits the structure of data re-uploading circuits:

* **trainable blocks** (consecutive gates whose parameters carry no batch dimension) are fused into
  one ``2**n x 2**n`` unitary, built once per forward pass by applying the gates to the identity,
  then applied to the whole batch with one matrix product; a block before the first encoding acts
  on ``|0...0>`` only and is applied to that single state;
* **diagonal gates** (RZ encodings, CZ rings) become phase vectors multiplied element-wise, and
  consecutive diagonal encodings merge into one per-sample phase vector;
* other multi-qubit gates that permute basis states (CNOT, SWAP) become index gathers;
* **non-diagonal encodings** (RY of the inputs) apply as batched one-qubit gates, element-wise.

Fusion is used up to :data:`FUSE_MAX_QUBITS` qubits (a 2**11 x 2**11 complex64 unitary is 32 MiB)
and only when the batch has at least ``2**n`` samples; otherwise blocks apply gate by gate. The
state takes ``B * 2**n * 8`` bytes (complex64): 2 MiB for B = 1024 at 8 qubits, 8 GiB for B = 1024
at :data:`MAX_QUBITS` = 20 qubits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import pennylane as qml
import torch
from pennylane.measurements import ExpectationMP

FUSE_MAX_QUBITS = 11
MAX_QUBITS = 20


@dataclass
class _Gate:
    """A gate ready to apply: local matrix ``(d, d)`` or per-sample ``(B, d, d)``, its wires, its kind."""

    matrix: torch.Tensor
    wires: tuple[int, ...]
    batched: bool
    kind: str  # "diagonal" | "monomial" | "one_qubit" | "dense"
    diagonal: torch.Tensor | None = None  # (..., d) for diagonal and monomial gates
    source: torch.Tensor | None = None  # (d,) for monomial: row i takes column source[i]


def expectation_values(function, inputs: torch.Tensor, weights: torch.Tensor, n_qubits: int) -> torch.Tensor:
    """Run ``function(inputs, weights)`` for a batch ``inputs`` of shape ``(B, n_qubits)``.

    Returns the expectation values of its measurements as a real ``(B, n_measurements)`` tensor.
    """
    if n_qubits > MAX_QUBITS:
        raise ValueError(f"the fast simulator handles at most {MAX_QUBITS} qubits, got {n_qubits}")
    tape = qml.tape.make_qscript(function)(inputs, weights)
    dtype = torch.complex128 if inputs.dtype == torch.float64 else torch.complex64
    gates = prepare_gates(list(decompose(tape.operations)), dtype, inputs.device)
    state = run_gates(gates, inputs.shape[0], n_qubits, dtype, inputs.device)
    return _expectations(state, tape.measurements, n_qubits)


def decompose(operations: Sequence[qml.operation.Operator]) -> Iterator[qml.operation.Operator]:
    """Operations decomposed until each has a matrix (templates such as StronglyEntanglingLayers expand)."""
    for operation in operations:
        if operation.has_matrix:
            yield operation
        else:
            yield from decompose(operation.decomposition())


def prepare_gates(operations: list, dtype: torch.dtype, device: torch.device) -> list[_Gate]:
    """Matrices of all operations, computed and classified once per (gate type, batched) group."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for position, operation in enumerate(operations):
        key = (type(operation), operation.batch_size is not None, repr(sorted(operation.hyperparameters.items())))
        groups[key].append(position)
    gates: list[_Gate | None] = [None] * len(operations)
    for (gate_type, batched, _), positions in groups.items():
        first = operations[positions[0]]
        if first.num_params == 0:
            stacked = _as_tensor(first.matrix(), dtype, device).expand(len(positions), -1, -1)
        elif first.hyperparameters:  # e.g. controlled gates: PennyLane builds each matrix from its hyperparameters
            stacked = torch.stack([_as_tensor(operations[p].matrix(), dtype, device) for p in positions])
        else:
            columns = [torch.stack([torch.as_tensor(operations[p].data[i]) for p in positions])
                       for i in range(first.num_params)]
            matrices = gate_type.compute_matrix(*(c.reshape(-1) for c in columns))
            stacked = _as_tensor(matrices, dtype, device).reshape(*columns[0].shape, *matrices.shape[-2:])
        for position, gate in zip(positions, _classify_group(stacked, [operations[p] for p in positions], batched)):
            gates[position] = gate
    return gates


def _as_tensor(matrix, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(matrix).to(device=device, dtype=dtype)


def _classify_group(stacked: torch.Tensor, operations: list, batched: bool) -> list[_Gate]:
    """Gates of one group from their stacked matrices ``(k, [B,] d, d)``, classified in one pass."""
    magnitude = stacked.detach().abs()
    diagonal_magnitude = torch.diagonal(magnitude, dim1=-2, dim2=-1)
    off_diagonal = (magnitude - torch.diag_embed(diagonal_magnitude)).flatten(1).amax(dim=1)
    nonzero = (magnitude > 0).flatten(1, -3) if batched else magnitude > 0
    one_per_row = (nonzero.sum(dim=-1) == 1).flatten(1).all(dim=1) & (nonzero.sum(dim=-2) == 1).flatten(1).all(dim=1)
    is_diagonal, is_monomial = (off_diagonal == 0).tolist(), one_per_row.tolist()
    gates = []
    for index, operation in enumerate(operations):
        matrix = stacked[index]
        wires = tuple(int(w) for w in operation.wires)
        if is_diagonal[index]:
            gates.append(_Gate(matrix, wires, batched, "diagonal", diagonal=torch.diagonal(matrix, dim1=-2, dim2=-1)))
        elif len(wires) == 1:
            gates.append(_Gate(matrix, wires, batched, "one_qubit"))
        elif is_monomial[index] and not batched:
            source = (magnitude[index] > 0).to(torch.int64).argmax(dim=-1)
            phases = matrix.gather(-1, source.unsqueeze(-1)).squeeze(-1)
            gates.append(_Gate(matrix, wires, batched, "monomial", diagonal=phases, source=source))
        else:
            gates.append(_Gate(matrix, wires, batched, "dense"))
    return gates


def run_gates(gates: list[_Gate], batch: int, n_qubits: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Final ``(batch, 2**n)`` state of the gates applied to ``|0...0>``."""
    state = torch.zeros(1, 2**n_qubits, dtype=dtype, device=device)
    state[0, 0] = 1.0
    index = 0
    while index < len(gates):
        end = index
        batched = gates[index].batched
        while end < len(gates) and gates[end].batched == batched:
            end += 1
        block = gates[index:end]
        if batched:
            state = _apply_encoding_block(state.expand(batch, -1) if state.shape[0] == 1 else state, block, n_qubits)
        else:
            state = _apply_static_block(state, block, n_qubits)
        index = end
    return state.expand(batch, -1) if state.shape[0] == 1 else state


def _apply_static_block(state: torch.Tensor, gates: list[_Gate], n_qubits: int) -> torch.Tensor:
    """Data-independent gates: fused into one unitary for large batches, else applied gate by gate."""
    batch, dimension = state.shape
    if batch > 1 and n_qubits <= FUSE_MAX_QUBITS and batch >= dimension:
        identity = torch.eye(dimension, dtype=state.dtype, device=state.device)
        unitary_transposed = _apply_gates(identity, gates, n_qubits)  # row i holds U e_i
        return state @ unitary_transposed
    return _apply_gates(state, gates, n_qubits)


def _apply_encoding_block(state: torch.Tensor, gates: list[_Gate], n_qubits: int) -> torch.Tensor:
    """Per-sample gates; runs of diagonal ones are merged into one phase vector per sample."""
    pending: list[_Gate] = []
    for gate in gates:
        if gate.kind == "diagonal":
            pending.append(gate)
            continue
        if pending:
            state, pending = state * _merged_phases(pending, n_qubits), []
        state = _apply_gate(state, gate, n_qubits)
    return state * _merged_phases(pending, n_qubits) if pending else state


def _merged_phases(gates: list[_Gate], n_qubits: int) -> torch.Tensor:
    """Product of diagonal gates as one ``(..., 2**n)`` phase vector.

    One-qubit diagonals on distinct wires (the usual RZ encoding layer) combine by Kronecker
    products, which costs about one pass over the output instead of one per gate.
    """
    wires = [gate.wires for gate in gates]
    if all(len(w) == 1 for w in wires) and len(set(wires)) == len(wires):
        per_wire = {gate.wires[0]: gate.diagonal for gate in gates}
        reference = gates[0].diagonal
        identity = torch.ones(2, dtype=reference.dtype, device=reference.device)
        phases = per_wire.get(0, identity)
        for wire in range(1, n_qubits):
            factor = per_wire.get(wire, identity)
            phases = (phases.unsqueeze(-1) * factor.unsqueeze(-2)).flatten(-2)
        return phases
    phases = _embed_diagonal(gates[0].diagonal, gates[0].wires, n_qubits)
    for gate in gates[1:]:
        phases = phases * _embed_diagonal(gate.diagonal, gate.wires, n_qubits)
    return phases


def _apply_gates(state: torch.Tensor, gates: list[_Gate], n_qubits: int) -> torch.Tensor:
    for gate in gates:
        state = _apply_gate(state, gate, n_qubits)
    return state


def _apply_gate(state: torch.Tensor, gate: _Gate, n_qubits: int) -> torch.Tensor:
    if gate.kind == "diagonal":
        return state * _embed_diagonal(gate.diagonal, gate.wires, n_qubits)
    if gate.kind == "one_qubit":
        return _apply_one_qubit(state, gate.matrix, gate.wires[0], n_qubits)
    if gate.kind == "monomial":
        permutation, phases = _embed_monomial(gate, n_qubits, state.device)
        return state[:, permutation] * phases
    return _apply_dense(state, gate.matrix, gate.wires, n_qubits)


def _apply_one_qubit(state: torch.Tensor, matrix: torch.Tensor, wire: int, n_qubits: int) -> torch.Tensor:
    """Element-wise application of a ``(2, 2)`` or per-sample ``(B, 2, 2)`` matrix on ``wire``."""
    batch = state.shape[0] if matrix.ndim == 2 else max(state.shape[0], matrix.shape[0])
    view = state.reshape(state.shape[0], 2**wire, 2, 2 ** (n_qubits - wire - 1))
    zero, one = view[:, :, 0], view[:, :, 1]
    entries = matrix.reshape(-1, 2, 2, 1, 1) if matrix.ndim == 3 else matrix.reshape(1, 2, 2, 1, 1)
    new_zero = entries[:, 0, 0] * zero + entries[:, 0, 1] * one
    new_one = entries[:, 1, 0] * zero + entries[:, 1, 1] * one
    return torch.stack((new_zero, new_one), dim=2).reshape(batch, -1)


def _apply_dense(state: torch.Tensor, matrix: torch.Tensor, wires: tuple[int, ...], n_qubits: int) -> torch.Tensor:
    """General k-qubit matrix ``(d, d)`` or ``(B, d, d)`` on ``wires``."""
    batch = max(state.shape[0], matrix.shape[0] if matrix.ndim == 3 else 1)
    k = len(wires)
    axes = [1 + w for w in wires]
    last = list(range(n_qubits + 1 - k, n_qubits + 1))
    moved = state.reshape((state.shape[0],) + (2,) * n_qubits).movedim(axes, last)
    flat = moved.reshape(state.shape[0], -1, 2**k)
    flat = flat @ matrix.transpose(-2, -1)
    result = flat.reshape((batch,) + tuple(moved.shape[1:]))
    return result.movedim(last, axes).reshape(batch, -1)


@lru_cache(maxsize=64)
def _basis_bits(n_qubits: int, device: str) -> torch.Tensor:
    """``(2**n, n)`` table of computational-basis bits, wire 0 the most significant."""
    states = torch.arange(2**n_qubits, device=device)
    shifts = torch.arange(n_qubits - 1, -1, -1, device=device)
    return (states.unsqueeze(1) >> shifts) & 1


@lru_cache(maxsize=512)
def _local_index(wires: tuple[int, ...], n_qubits: int, device: str) -> torch.Tensor:
    """For every basis state, the index of its bits on ``wires`` (first wire most significant)."""
    bits = _basis_bits(n_qubits, device)[:, list(wires)]
    weights = 2 ** torch.arange(len(wires) - 1, -1, -1, device=device)
    return (bits * weights).sum(dim=1)


def _embed_diagonal(diagonal: torch.Tensor, wires: tuple[int, ...], n_qubits: int) -> torch.Tensor:
    """A k-qubit diagonal ``(..., 2**k)`` as the full ``(..., 2**n)`` diagonal."""
    return diagonal[..., _local_index(wires, n_qubits, str(diagonal.device))]


def _embed_monomial(gate: _Gate, n_qubits: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Full-space ``(permutation, phases)`` with ``(G psi)[s] = phases[s] * psi[permutation[s]]``."""
    local = _local_index(gate.wires, n_qubits, str(device))
    mask = sum(1 << (n_qubits - 1 - w) for w in gate.wires)
    states = torch.arange(2**n_qubits, device=device)
    source_local = gate.source.to(device)[local]
    source_bits = torch.zeros_like(states)
    for position, wire in enumerate(gate.wires):
        bit = (source_local >> (len(gate.wires) - 1 - position)) & 1
        source_bits |= bit << (n_qubits - 1 - wire)
    return (states & ~mask) | source_bits, gate.diagonal[local]


def _expectations(state: torch.Tensor, measurements: Sequence, n_qubits: int) -> torch.Tensor:
    """Expectation values ``(B, m)``; observables are rotated to the Z basis by their diagonalizing gates."""
    probabilities: dict[tuple, torch.Tensor] = {}
    columns = []
    for measurement in measurements:
        if not isinstance(measurement, ExpectationMP) or measurement.obs is None:
            raise NotImplementedError(
                f"the fast simulator evaluates expectation values only, not {type(measurement).__name__}"
            )
        observable = measurement.obs
        rotations = list(decompose(observable.diagonalizing_gates()))
        key = tuple(repr(g) for g in rotations)
        if key not in probabilities:
            rotated = _apply_gates(state, prepare_gates(rotations, state.dtype, state.device), n_qubits)
            probabilities[key] = rotated.real**2 + rotated.imag**2
        eigenvalues = torch.as_tensor(qml.eigvals(observable), device=state.device)
        eigenvalues = (eigenvalues.real if eigenvalues.is_complex() else eigenvalues).to(probabilities[key].dtype)
        wires = tuple(int(w) for w in observable.wires)
        columns.append(probabilities[key] @ _embed_diagonal(eigenvalues, wires, n_qubits))
    return torch.stack(columns, dim=-1)
