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
at :data:`~qml_imaging.quantum.backends.MAX_SIMULATED_QUBITS` = 20 qubits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
import weakref
from dataclasses import dataclass
from functools import lru_cache

import pennylane as qml
import torch
from pennylane.measurements import ExpectationMP

from qml_imaging.quantum.backends import MAX_SIMULATED_QUBITS

FUSE_MAX_QUBITS = 11


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
    state, plan = _final_state(function, inputs, weights, n_qubits)
    return _expectations(state, plan.measurements, n_qubits)


def basis_probabilities(function, inputs: torch.Tensor, weights: torch.Tensor, n_qubits: int) -> torch.Tensor:
    """Computational-basis probabilities ``(B, 2**n_qubits)`` of the state ``function`` prepares (its
    measurements are ignored); index ``k`` is the basis state whose bits, wire 0 first, spell ``k``."""
    state, _ = _final_state(function, inputs, weights, n_qubits)
    return state.real**2 + state.imag**2


def _final_state(function, inputs: torch.Tensor, weights: torch.Tensor, n_qubits: int) -> tuple[torch.Tensor, CircuitPlan]:
    if n_qubits > MAX_SIMULATED_QUBITS:
        raise ValueError(f"the fast simulator handles at most {MAX_SIMULATED_QUBITS} qubits, got {n_qubits}")
    inputs, weights = inputs.contiguous(), weights.contiguous()
    dtype = torch.complex128 if inputs.dtype == torch.float64 else torch.complex64
    key = (tuple(weights.shape), n_qubits, dtype, inputs.device)
    plan = _PLANS.get(function, {}).get(key)
    if plan is None:
        plan = CircuitPlan.record(function, inputs, weights, dtype)
        if plan.reusable:
            _PLANS.setdefault(function, {})[key] = plan
    copies = plan.n_operations + 2 if torch.is_grad_enabled() else 4
    check_memory(inputs.shape[0], n_qubits, dtype, inputs.device, copies)
    gates = plan.gates(inputs, weights)
    return run_gates(gates, inputs.shape[0], n_qubits, dtype, inputs.device), plan


def check_memory(batch: int, n_qubits: int, dtype: torch.dtype, device: torch.device, copies: int) -> None:
    """Raise MemoryError, naming batch, qubits and the estimate, when ``copies`` states of ``batch`` x
    ``2**n_qubits`` amplitudes (autograd keeps about one per gate) exceed the memory ``device`` has free."""
    needed = batch * 2**n_qubits * torch.empty((), dtype=dtype).element_size() * copies
    free = available_memory(device)
    if free is not None and needed > free:
        raise MemoryError(
            f"simulating {n_qubits} qubits for a batch of {batch} needs about {needed / 2**30:.1f} GiB "
            f"({copies} states of {batch} x 2^{n_qubits} {dtype} amplitudes kept for the backward pass), but "
            f"{device} has {free / 2**30:.1f} GiB free; use fewer qubits or a smaller batch (train.batch_size)"
        )


def available_memory(device: torch.device) -> int | None:
    """Free bytes on ``device``: CUDA's free memory, or the host's MemAvailable (None where unknown)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def decompose(operations: Sequence[qml.operation.Operator]) -> Iterator[qml.operation.Operator]:
    """Operations decomposed until each has a matrix (templates such as StronglyEntanglingLayers expand)."""
    for operation in operations:
        if operation.has_matrix:
            yield operation
        else:
            yield from decompose(operation.decomposition())


_PLANS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass
class _Group:
    """Gates of one type that get their matrices from one vectorised PennyLane call."""

    gate_type: type
    batched: bool
    operations: list
    kinds: list[str]
    sources: list  # per parameter: ("weights", flat indices (k,)) | ("inputs", columns (k,)) | ("recorded", None)
    positions: list[int]  # where the group's gates stand in the circuit
    constant: torch.Tensor | None = None  # (d, d) for parameterless gates


class CircuitPlan:
    """The gates of one recorded tape, grouped by type, with where each gate parameter comes from.

    A plan whose every gate parameter is an element of ``weights``, a column ``inputs[..., j]`` or
    a constant is *reusable*: later calls with new values of the same shapes gather the parameters
    in one indexing operation instead of recording the tape again. This assumes the template
    queues the same gates for every input (no control flow on values), true of every template
    in :mod:`qml_imaging.quantum.circuits`. Other plans are rebuilt from a fresh tape on each call.
    """

    def __init__(self, n_operations: int, measurements: list, groups: list[_Group], reusable: bool, dtype: torch.dtype):
        self.n_operations = n_operations
        self.dtype = dtype
        self.measurements = measurements
        self.groups = groups
        self.reusable = reusable

    @classmethod
    def record(cls, function, inputs: torch.Tensor, weights: torch.Tensor, dtype: torch.dtype) -> CircuitPlan:
        """Record ``function``'s tape for these arguments and plan its execution."""
        tape = qml.tape.make_qscript(function)(inputs, weights)
        return cls.from_operations(list(decompose(tape.operations)), tape.measurements, inputs, weights, dtype)

    @classmethod
    def from_operations(cls, operations: list, measurements: list, inputs: torch.Tensor, weights: torch.Tensor,
                        dtype: torch.dtype) -> CircuitPlan:
        by_key: dict[tuple, list[int]] = defaultdict(list)
        for position, operation in enumerate(operations):
            constant = operation.num_params == 0  # one local matrix for every gate of the type
            hyper = "" if constant else repr(sorted(operation.hyperparameters.items()))
            by_key[type(operation), operation.batch_size is not None, hyper].append(position)
        groups, reusable = [], True
        for (gate_type, batched, _), positions in by_key.items():
            members = [operations[p] for p in positions]
            sources = [_parameter_source([m.data[i] for m in members], inputs, weights)
                       for i in range(members[0].num_params)]
            reusable = reusable and all(kind != "recorded" for kind, _ in sources)
            reusable = reusable and not (members[0].num_params and members[0].hyperparameters)
            constant = _as_tensor(members[0].matrix(), dtype, inputs.device) if members[0].num_params == 0 else None
            group = _Group(gate_type, batched, members, [], sources, positions, constant)
            group.kinds = _kinds(group, dtype, inputs.device)
            groups.append(group)
        return cls(len(operations), measurements, groups, reusable, dtype)

    def gates(self, inputs: torch.Tensor, weights: torch.Tensor) -> list[_Gate]:
        """The gates with matrices for these ``inputs`` and ``weights``, in circuit order."""
        flat_weights = weights.reshape(-1)
        ordered: list[_Gate | None] = [None] * self.n_operations
        for group in self.groups:
            stacked = self._matrices(group, inputs, flat_weights)
            for index, position in enumerate(group.positions):
                ordered[position] = _gate(stacked[index], group.operations[index], group.batched, group.kinds[index])
        return ordered

    def _matrices(self, group: _Group, inputs: torch.Tensor, flat_weights: torch.Tensor) -> torch.Tensor:
        if group.constant is not None:
            return group.constant.expand(len(group.operations), -1, -1)
        if group.operations[0].hyperparameters or any(kind == "recorded" for kind, _ in group.sources):
            return _recorded_matrices(group.operations, self.dtype, inputs.device)
        columns = [_gather(source, inputs, flat_weights) for source in group.sources]
        matrices = group.gate_type.compute_matrix(*(c.reshape(-1) for c in columns))
        return _as_tensor(matrices, self.dtype, inputs.device).reshape(*columns[0].shape, *matrices.shape[-2:])


def _parameter_source(values: list, inputs: torch.Tensor, weights: torch.Tensor) -> tuple[str, torch.Tensor | None]:
    """Where a group's parameter values live: elements of ``weights``, columns of ``inputs``, or constants."""
    if all(isinstance(v, (int, float)) for v in values):
        return "constant", torch.tensor(values, dtype=inputs.dtype, device=inputs.device)
    if not all(isinstance(v, torch.Tensor) for v in values):
        return "recorded", None
    weight_indices = [_element_index(v, weights) for v in values]
    if all(i is not None for i in weight_indices):
        return "weights", torch.tensor(weight_indices, device=inputs.device)
    columns = [_column_index(v, inputs) for v in values]
    if all(c is not None for c in columns):
        return "inputs", torch.tensor(columns, device=inputs.device)
    return "recorded", None


def _element_index(value: torch.Tensor, weights: torch.Tensor) -> int | None:
    """``i`` if ``value`` is the 0-d view ``weights.reshape(-1)[i]``, else None."""
    if value.ndim != 0 or weights.numel() == 0 or value.untyped_storage().data_ptr() != weights.untyped_storage().data_ptr():
        return None
    offset = value.storage_offset() - weights.storage_offset()
    return offset if 0 <= offset < weights.numel() else None


def _column_index(value: torch.Tensor, inputs: torch.Tensor) -> int | None:
    """``j`` if ``value`` is the view ``inputs[..., j]`` of a contiguous ``(B, n)`` batch, else None."""
    if value.shape != inputs.shape[:1] or value.untyped_storage().data_ptr() != inputs.untyped_storage().data_ptr():
        return None
    offset = value.storage_offset() - inputs.storage_offset()
    if value.shape[0] > 1 and value.stride(0) != inputs.shape[1]:
        return None
    return offset if 0 <= offset < inputs.shape[1] else None


def _gather(source: tuple, inputs: torch.Tensor, flat_weights: torch.Tensor) -> torch.Tensor:
    kind, index = source
    if kind == "weights":
        return flat_weights[index]
    if kind == "inputs":
        return inputs[:, index].transpose(0, 1)  # (k, B)
    return index


def _kinds(group: _Group, dtype: torch.dtype, device: torch.device) -> list[str]:
    """Each gate's kind, judged from its matrix at random parameters so it holds for all values."""
    operations = group.operations
    if group.constant is not None:
        sample = group.constant.expand(len(operations), -1, -1)
    elif operations[0].hyperparameters:
        sample = _recorded_matrices(operations, dtype, device)
    else:
        generic = [torch.rand(len(operations), dtype=torch.float64) * 6.0 + 0.1 for _ in range(operations[0].num_params)]
        sample = _as_tensor(group.gate_type.compute_matrix(*generic), dtype, device)
    magnitude = sample.detach().abs()
    if magnitude.ndim == 4:
        magnitude = magnitude.amax(dim=1)
    off_diagonal = (magnitude - torch.diag_embed(torch.diagonal(magnitude, dim1=-2, dim2=-1))).flatten(1).amax(dim=1)
    nonzero = magnitude > 0
    one_per_row = (nonzero.sum(dim=-1) == 1).all(dim=-1) & (nonzero.sum(dim=-2) == 1).all(dim=-1)
    kinds = []
    for index, operation in enumerate(operations):
        if off_diagonal[index] == 0:
            kinds.append("diagonal")
        elif len(operation.wires) == 1:
            kinds.append("one_qubit")
        elif one_per_row[index] and not group.batched:
            kinds.append("monomial")
        else:
            kinds.append("dense")
    return kinds


def _as_tensor(matrix, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(matrix).to(device=device, dtype=dtype)


def _recorded_matrices(operations: list, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Each operation's own matrix, stacked (for gates built from hyperparameters or unmapped parameters)."""
    return torch.stack([_as_tensor(op.matrix(), dtype, device) for op in operations])


def _gate(matrix: torch.Tensor, operation, batched: bool, kind: str) -> _Gate:
    wires = tuple(int(w) for w in operation.wires)
    if kind == "diagonal":
        return _Gate(matrix, wires, batched, kind, diagonal=torch.diagonal(matrix, dim1=-2, dim2=-1))
    if kind == "monomial":
        source = (matrix.detach().abs() > 0).to(torch.int64).argmax(dim=-1)
        phases = matrix.gather(-1, source.unsqueeze(-1)).squeeze(-1)
        return _Gate(matrix, wires, batched, kind, diagonal=phases, source=source)
    return _Gate(matrix, wires, batched, kind)


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
        return state @ _fused_transpose(gates, n_qubits, state.dtype, state.device)
    return _apply_gates(state, gates, n_qubits)


def _fused_transpose(gates: list[_Gate], n_qubits: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``U^T`` of the product ``U`` of static gates, so that a batch of row states maps as ``state @ U^T``.

    Runs of one-qubit gates on distinct wires become one Kronecker product, runs of diagonal gates
    one phase vector; other gates apply to the rows of ``U^T`` (each row is ``U e_i``).
    """
    transposed = None
    index = 0
    while index < len(gates):
        end = index + 1
        if gates[index].kind == "one_qubit":
            wires = {gates[index].wires[0]}
            while end < len(gates) and gates[end].kind == "one_qubit" and gates[end].wires[0] not in wires:
                wires.add(gates[end].wires[0])
                end += 1
            layer = _kron_layer(gates[index:end], n_qubits, dtype, device).transpose(0, 1)
            transposed = layer if transposed is None else transposed @ layer
        elif gates[index].kind == "diagonal":
            while end < len(gates) and gates[end].kind == "diagonal":
                end += 1
            phases = _merged_phases(gates[index:end], n_qubits)
            transposed = torch.diag(phases) if transposed is None else transposed * phases
        else:
            if transposed is None:
                transposed = torch.eye(2**n_qubits, dtype=dtype, device=device)
            transposed = _apply_gate(transposed, gates[index], n_qubits)
        index = end
    return transposed


def _kron_layer(gates: list[_Gate], n_qubits: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """One-qubit gates on distinct wires as one ``2**n x 2**n`` matrix (identity on the other wires)."""
    per_wire = {gate.wires[0]: gate.matrix for gate in gates}
    identity = torch.eye(2, dtype=dtype, device=device)
    matrix = per_wire.get(0, identity)
    for wire in range(1, n_qubits):
        matrix = torch.kron(matrix, per_wire.get(wire, identity))
    return matrix


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
            probe = state.real.new_zeros(1, 1)
            gates = CircuitPlan.from_operations(rotations, [], probe, probe, state.dtype).gates(probe, probe)
            rotated = _apply_gates(state, gates, n_qubits)
            probabilities[key] = rotated.real**2 + rotated.imag**2
        eigenvalues = torch.as_tensor(qml.eigvals(observable), device=state.device)
        eigenvalues = (eigenvalues.real if eigenvalues.is_complex() else eigenvalues).to(probabilities[key].dtype)
        wires = tuple(int(w) for w in observable.wires)
        columns.append(probabilities[key] @ _embed_diagonal(eigenvalues, wires, n_qubits))
    return torch.stack(columns, dim=-1)
