"""Fast batched statevector execution of PennyLane quantum functions in plain torch.

The simulator does not re-implement any circuit: it records the function's PennyLane tape
(``qml.tape.make_qscript``), decomposes templates down to gates with matrices, takes each gate's
matrix from PennyLane (``compute_matrix``, one vectorised call per gate type), and executes the
gates on a ``(B, 2**n)`` complex state, differentiable by backprop, on CPU or CUDA. Wire 0 is the
most significant bit, as in PennyLane. Any state-vector circuit PennyLane can express runs:
gates with matrices (parameters from weights, inputs, constants or expressions of them) and
``expval`` / ``var`` / ``probs`` of any observable; anything else is refused naming the operation.

Execution never builds a ``2**n x 2**n`` unitary where that does not pay (see
``docs/architecture.md``, "The fast quantum backend"):

* leading one-qubit gates act on a **product state** (one 2-vector per wire and sample);
* one-qubit gates of a data-independent run are combined per wire and applied a **group** of up
  to ``g`` wires at a time: one ``2**g x 2**g`` Kronecker factor, one matrix product on one axis;
* runs of diagonal and permutation gates (CZ and CNOT rings) become **one** phase vector and one
  index gather (with a gather as its backward); constant ones are precomputed once per plan;
* per-sample diagonal encodings become one per-sample phase vector (Kronecker product of wires);
* a data-independent run is fused into one dense unitary when the cost model says that is
  cheaper (few qubits, large batch);
* permutations and phases right before a computational-basis readout act on the probabilities.

The group size and the dense/structured choice come from one cost model (:func:`plan_costs`) of
the circuit, batch and device; the plan (gates, parameter sources, program) is cached per function,
weight shape, qubit count, dtype and device.
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pennylane as qml
import torch
from pennylane.measurements import ExpectationMP, MidMeasureMP, ProbabilityMP, VarianceMP

from qml_imaging.quantum.backends import MAX_SIMULATED_QUBITS

FUSE_MAX_QUBITS = 11
"""Largest qubit count for which a data-independent run may be fused into one dense unitary."""

STRATEGY: str | None = None
"""Force ``"dense"`` or ``"structured"`` execution of data-independent runs (tests); None: cost model."""

GROUP_SIZE: int | None = None
"""Force the number of wires per Kronecker group (tests); None: cost model."""

# Cost model, per amplitude of the state: one elementwise pass costs PASS, a matrix product with a
# d x d factor costs PASS + MAC * d, a gather GATHER; every element of a Kronecker factor built costs
# KRON (forward and backward); every torch call costs OVERHEAD amplitude-passes.
# Measured with benchmarks/quantum_layer.py (2 CPU cores; one H200).
COSTS = {
    "cpu": {"pass": 1.0, "mac": 0.015, "gather": 1.5, "kron": 4.0, "overhead": 5000.0},
    "cuda": {"pass": 1.0, "mac": 0.004, "gather": 1.5, "kron": 4.0, "overhead": 300000.0},
}


def expectation_values(function, inputs: torch.Tensor, weights: torch.Tensor, n_qubits: int) -> torch.Tensor:
    """Run ``function(inputs, weights)`` for a batch ``inputs`` of shape ``(B, n_qubits)``.

    Returns its measurements as a real ``(B, n_values)`` tensor of the inputs' dtype: one column per
    ``expval`` / ``var``, ``2**k`` per ``probs`` over ``k`` wires, in the order returned. Computes in
    complex128 when inputs or weights are float64, else in complex64; autocast is off inside.
    """
    with torch.autocast(device_type=inputs.device.type, enabled=False):
        x, w = _compute_operands(inputs, weights)
        state, plan = _final_state(function, x, w, n_qubits)
        if not plan.readout_plan.outputs:
            raise ValueError("the circuit returns no measurement; return qml.expval, qml.var or qml.probs values")
        values = plan.readout(state, x.shape[0])
    return values.to(inputs.dtype if inputs.is_floating_point() else values.dtype)


def basis_probabilities(function, inputs: torch.Tensor, weights: torch.Tensor, n_qubits: int) -> torch.Tensor:
    """Computational-basis probabilities ``(B, 2**n_qubits)`` of the state ``function`` prepares (its
    measurements are ignored); index ``k`` is the basis state whose bits, wire 0 first, spell ``k``."""
    with torch.autocast(device_type=inputs.device.type, enabled=False):
        x, w = _compute_operands(inputs, weights)
        state, plan = _final_state(function, x, w, n_qubits, whole_state=True)
        state = state.expand(x.shape[0], -1)
    return _probabilities(state)


def _compute_operands(inputs: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    weights = torch.as_tensor(weights, device=inputs.device)
    real = torch.float64 if torch.float64 in (inputs.dtype, weights.dtype) else torch.float32
    return inputs.to(real).contiguous(), weights.to(real).contiguous()


_PLANS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _final_state(function, inputs, weights, n_qubits, whole_state=False):
    if n_qubits > MAX_SIMULATED_QUBITS:
        raise ValueError(f"the fast simulator handles at most {MAX_SIMULATED_QUBITS} qubits, got {n_qubits}")
    dtype = torch.complex128 if inputs.dtype == torch.float64 else torch.complex64
    key = (tuple(weights.shape), n_qubits, dtype, inputs.device)
    try:
        plan = _PLANS.get(function, {}).get(key)
    except TypeError:  # not weak-referenceable
        plan = None
    if plan is None:
        plan = CircuitPlan.record(function, inputs, weights, n_qubits, dtype)
        if plan.reusable:
            try:
                _PLANS.setdefault(function, {})[key] = plan
            except TypeError:
                pass
    copies = plan.n_steps + 3 if torch.is_grad_enabled() else 4
    check_memory(inputs.shape[0], n_qubits, dtype, inputs.device, copies)
    return plan.run(inputs, weights, whole_state=whole_state), plan


def check_memory(batch: int, n_qubits: int, dtype: torch.dtype, device: torch.device, copies: int) -> None:
    """Raise MemoryError, naming batch, qubits and the estimate, when ``copies`` states of ``batch`` x
    ``2**n_qubits`` amplitudes (autograd keeps about one per step) exceed the memory ``device`` has free."""
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
    """Operations decomposed until each has a matrix PennyLane can build for its parameters (templates
    such as StronglyEntanglingLayers expand; so do gates such as IsingXY, whose matrix goes through
    NumPy and fails on a batch of angles that needs a gradient); an operation with neither (a
    mid-circuit measurement, a channel) is refused by name."""
    for operation in operations:
        if operation.has_matrix and _matrix_builds(operation):
            yield operation
            continue
        if isinstance(operation, MidMeasureMP):
            raise NotImplementedError(f"the fast simulator runs state-vector circuits without mid-circuit measurements; "
                                      f"this one measures wire {list(operation.wires)} mid-circuit (qml.measure); "
                                      f"use default.qubit")
        try:
            parts = operation.decomposition()
        except Exception as error:  # PennyLane raises DecompositionUndefinedError and others
            raise NotImplementedError(
                f"the fast simulator cannot run {operation.name} on wires {list(operation.wires)}: it has no "
                f"matrix and no decomposition into gates with matrices ({type(error).__name__}); use default.qubit"
            ) from None
        yield from decompose(parts)


def _matrix_builds(operation) -> bool:
    """Whether PennyLane builds ``operation``'s matrix for its own parameters (always tried when one
    of them needs a gradient, the case where NumPy-based matrices fail)."""
    if not any(isinstance(value, torch.Tensor) and value.requires_grad for value in operation.data):
        return True
    try:
        qml.matrix(operation)
    except Exception:  # PennyLane raises RuntimeError (numpy of a tensor needing grad) and others
        return False
    return True


# ----------------------------------------------------------------------------------------- gates


@dataclass
class _Op:
    """One gate of the plan: its wires, kind, whether its matrix has a batch dimension, and how to get it."""

    operation: object
    wires: tuple[int, ...]
    kind: str  # "diagonal" | "monomial" | "one_qubit" | "dense"
    batched: bool
    constant: torch.Tensor | None = None  # (d, d) matrix known at plan time
    matrix: torch.Tensor | None = None  # filled per call when first needed: (d, d) or (B, d, d)
    group: _Group | None = None  # the parametric group whose compute_matrix call fills ``matrix``
    phase: tuple | None = None  # (input column, slope, offset): diagonal angles offset + x[:, column] * slope


@dataclass
class _Group:
    """Parametric gates of one type whose matrices come from one vectorised ``compute_matrix`` call."""

    gate_type: type
    batched: bool
    hyperparameters: dict
    members: list[int]  # op indices
    sources: list  # per parameter slot: list of (kind, index) per member, kind "w" | "x" | "c"
    recorded: bool  # matrices from each operation's own .matrix() (parameters not traced)
    indices: list = field(default_factory=list)  # per slot: ("w" | "x", index tensor) or ("mixed", None)


def _source(value, inputs: torch.Tensor, weights: torch.Tensor):
    """Where one gate parameter lives: ("w", flat index), ("x", column), ("c", number) or None (untraced)."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return "c", float(value)
    if isinstance(value, np.ndarray) and value.ndim == 0 and np.isrealobj(value):
        return "c", float(value)
    if not isinstance(value, torch.Tensor) or value.is_complex():
        return None
    storage = value.untyped_storage().data_ptr()
    if value.ndim == 0 and weights.numel() and storage == weights.untyped_storage().data_ptr():
        offset = value.storage_offset() - weights.storage_offset()
        if 0 <= offset < weights.numel():
            return "w", offset
    if value.ndim == 1 and value.shape[0] == inputs.shape[0] and storage == inputs.untyped_storage().data_ptr():
        offset = value.storage_offset() - inputs.storage_offset()
        if (value.shape[0] == 1 or value.stride(0) == inputs.shape[1]) and 0 <= offset < inputs.shape[1]:
            return "x", offset
    return None


def _is_constant(value) -> bool:
    return not isinstance(value, torch.Tensor) and not hasattr(value, "requires_grad")


def _kind_of(sample: torch.Tensor, n_wires: int) -> str:
    """Kind of a gate from sample matrices ``(..., d, d)`` (random parameters: holds for all values)."""
    magnitude = sample.detach().abs().reshape(-1, *sample.shape[-2:]).amax(dim=0)
    if (magnitude - torch.diag_embed(torch.diagonal(magnitude))).amax() == 0:
        return "diagonal"
    if n_wires == 1:
        return "one_qubit"
    nonzero = magnitude > 0
    if (nonzero.sum(dim=-1) == 1).all() and (nonzero.sum(dim=-2) == 1).all():
        return "monomial"
    return "dense"


def _as_complex(matrix, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``matrix`` as a contiguous tensor of ``dtype`` (PennyLane's adjoints are conjugated transposed views)."""
    return torch.as_tensor(matrix).to(device=device, dtype=dtype).resolve_conj().contiguous()


def _operation_matrix(operation, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """An operation's own matrix, with numbers among its parameters made tensors first (PennyLane's
    matrices of some gates fail on a mix of Python numbers and torch tensors)."""
    real = torch.float64 if dtype == torch.complex128 else torch.float32
    try:
        parameters = [p if isinstance(p, torch.Tensor) else torch.as_tensor(
            p, dtype=real if np.isrealobj(p) else dtype, device=device) for p in operation.data]
        matrix = qml.matrix(qml.ops.functions.bind_new_parameters(operation, parameters))
    except Exception:
        matrix = qml.matrix(operation)
    return _as_complex(matrix, dtype, device)


# ----------------------------------------------------------------------------------------- plan


class CircuitPlan:
    """A recorded circuit: its gates, where each gate parameter comes from, its program and readout.

    A plan whose every gate parameter is an element of ``weights``, a column ``inputs[..., j]`` or a
    constant is *reusable*: later calls with new values of the same shapes gather the parameters in
    one indexing operation instead of recording the tape again. This assumes the function queues
    the same gates for every value (no control flow on values). Other plans (parameters that are
    expressions, trainable observables) are recorded again on each call (same execution, slower).
    """

    def __init__(self, operations, measurements, inputs, weights, n_qubits, dtype):
        self.n_qubits, self.dtype, self.device = n_qubits, dtype, inputs.device
        self.batch = inputs.shape[0]
        self.ops: list[_Op] = []
        self.groups: list[_Group] = []
        self.reusable = True
        self.values: tuple[torch.Tensor, torch.Tensor] | None = None  # (inputs, flat weights) during run
        self.linear_phases: dict[tuple, _LinearPhases] = {}  # one per distinct per-sample phase step
        self._build_ops(operations, inputs, weights)
        self.readout_plan = _Readout(measurements, self)
        self.reusable = self.reusable and self.readout_plan.reusable
        self.program = _compile(self)
        self.n_steps = sum(len(step[1]) if step[0] != "product" else 1 for step in self.program) + 1

    @classmethod
    def record(cls, function, inputs, weights, n_qubits, dtype) -> CircuitPlan:
        """Record ``function``'s tape for these arguments and plan its execution."""
        tape = qml.tape.make_qscript(function)(inputs, weights)
        return cls(list(decompose(tape.operations)), list(tape.measurements), inputs, weights, n_qubits, dtype)

    def wires_of(self, operator) -> tuple[int, ...]:
        wires = []
        for wire in operator.wires:
            if not isinstance(wire, (int, np.integer)) or not 0 <= int(wire) < self.n_qubits:
                raise ValueError(f"{operator.name} acts on wire {wire!r}; the fast simulator numbers wires "
                                 f"0..{self.n_qubits - 1} for a {self.n_qubits}-qubit template")
            wires.append(int(wire))
        return tuple(wires)

    def _build_ops(self, operations, inputs, weights) -> None:
        by_key: dict[tuple, list[int]] = defaultdict(list)
        for operation in operations:
            wires = self.wires_of(operation)
            batch_size = operation.batch_size
            if batch_size is not None and batch_size != self.batch:
                raise ValueError(f"{operation.name} on wires {list(wires)} is broadcast over {batch_size} values "
                                 f"but the batch has {self.batch} samples")
            op = _Op(operation, wires, "dense", batch_size is not None)
            index = len(self.ops)
            self.ops.append(op)
            if all(_is_constant(value) for value in operation.data):
                op.constant = _as_complex(operation.matrix(), self.dtype, self.device)
                op.kind = _kind_of(op.constant, len(wires))
                continue
            by_key[type(operation), op.batched, repr(sorted(operation.hyperparameters.items())), len(wires)].append(index)
        for (gate_type, batched, _, _), members in by_key.items():
            operations_ = [self.ops[i].operation for i in members]
            sources = [[_source(op.data[slot], inputs, weights) for op in operations_]
                       for slot in range(operations_[0].num_params)]
            group = _Group(gate_type, batched, dict(operations_[0].hyperparameters), members, sources, False)
            group.recorded = any(s is None for slot in sources for s in slot) or not self._vectorises(group)
            self.reusable = self.reusable and not group.recorded
            if not group.recorded:
                for slot in sources:
                    modes = {kind for kind, _ in slot}
                    mode = modes.pop() if len(modes) == 1 and modes <= {"w", "x"} else "mixed"
                    index = torch.tensor([i for _, i in slot], device=self.device) if mode != "mixed" else None
                    group.indices.append((mode, index))
            kind = self._group_kind(group)
            for i in members:
                self.ops[i].kind, self.ops[i].group = kind, group
            linear = _linear_phase(group) if kind == "diagonal" else None
            if linear is not None:
                for i, (_, column) in zip(members, group.sources[0]):
                    self.ops[i].phase = (column, *linear)
            self.groups.append(group)

    def _vectorises(self, group: _Group) -> bool:
        """Whether ``compute_matrix`` of the gathered parameters reproduces each gate's own matrix."""
        try:
            first = self.ops[group.members[0]].operation
            # as at run time: a vector of values that needs a gradient (some compute_matrix go through numpy)
            values = [torch.as_tensor(v, dtype=torch.float64).detach().reshape(-1)[:1].repeat(2).requires_grad_()
                      for v in first.data]
            ours = torch.as_tensor(group.gate_type.compute_matrix(*values, **group.hyperparameters))[0]
            theirs = qml.matrix(type(first)(*[v[0].detach() for v in values], wires=first.wires,
                                            **group.hyperparameters))
            return torch.allclose(ours.detach().reshape(torch.as_tensor(theirs).shape).to(torch.complex128),
                                  torch.as_tensor(theirs).to(torch.complex128), atol=1e-10)
        except Exception:
            return False

    def _group_kind(self, group: _Group) -> str:
        first = self.ops[group.members[0]].operation
        n_wires = len(first.wires)
        try:
            if any(torch.as_tensor(v).ndim > (1 if group.batched else 0) for v in first.data):
                raise TypeError("non-scalar parameters")
            generic = [torch.rand(3, dtype=torch.float64) * 6.0 + 0.1 for _ in first.data]
            sample = torch.as_tensor(group.gate_type.compute_matrix(*generic, **group.hyperparameters))
            if sample.shape[-1] != 2**n_wires:
                raise TypeError("unexpected shape")
            return _kind_of(sample, n_wires)
        except Exception:
            return "one_qubit" if n_wires == 1 else "dense"

    def _fill(self, group: _Group) -> None:
        """Fill the ``matrix`` of every gate of ``group`` for this call's values (one vectorised call)."""
        inputs, flat_weights = self.values
        if group.recorded:
            for i in group.members:
                self.ops[i].matrix = _operation_matrix(self.ops[i].operation, self.dtype, self.device)
            return
        batch = inputs.shape[0]
        columns = []
        for slot, (mode, index) in zip(group.sources, group.indices):
            if mode == "w":
                column = flat_weights[index]
            elif mode == "x":
                column = inputs[:, index].transpose(0, 1)
            else:
                values = [_value(kind, i, inputs, flat_weights) for kind, i in slot]
                if group.batched:
                    values = [v.expand(batch) if v.ndim == 0 else v for v in values]
                column = torch.stack(values)
            if group.batched and column.ndim == 1:
                column = column.unsqueeze(1).expand(-1, batch)
            columns.append(column)
        shape = columns[0].shape
        matrices = group.gate_type.compute_matrix(*(c.reshape(-1) for c in columns), **group.hyperparameters)
        matrices = _as_complex(matrices, self.dtype, self.device)
        matrices = matrices.reshape(*shape, *matrices.shape[-2:])
        for i, matrix in zip(group.members, matrices.unbind(0)):  # one stack in the backward pass
            self.ops[i].matrix = matrix

    def matrix(self, op: _Op) -> torch.Tensor:
        """The gate's matrix for this call: ``(d, d)``, or ``(B, d, d)`` for a per-sample gate."""
        if op.constant is not None:
            return op.constant
        if op.matrix is None:
            self._fill(op.group)
        return op.matrix

    def run(self, inputs: torch.Tensor, weights: torch.Tensor, whole_state: bool = False) -> torch.Tensor:
        """Final state ``(B or 1, 2**n)`` (``whole_state``: without the steps the readout absorbs).
        Gate matrices are computed when a step first needs them (per-sample phase gates never)."""
        self.values = (inputs, weights.reshape(-1))
        program = self.program if not whole_state else _compile(self, absorb=False)
        try:
            return _execute(self, program, inputs.shape[0])
        finally:
            self.values = None
            for op in self.ops:
                op.matrix = None

    def readout(self, state: torch.Tensor, batch: int) -> torch.Tensor:
        return self.readout_plan.evaluate(state, batch)


def _linear_phase(group: _Group) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(slope, offset)``, float64 ``(d,)``, when the group's gates are per-sample diagonal gates of one
    input column whose entries are ``exp(1j * (offset + theta * slope))`` for every angle ``theta``
    (RZ, PhaseShift, CRZ, IsingZZ, MultiRZ, ...; checked on probe angles); otherwise None."""
    if not group.batched or group.recorded or len(group.sources) != 1 or group.indices[0][0] != "x":
        return None
    probes = torch.tensor([0.0, 1e-3, -2.7, 0.9, 5.1], dtype=torch.float64)
    try:
        matrices = torch.as_tensor(group.gate_type.compute_matrix(probes, **group.hyperparameters))
        entries = torch.diagonal(matrices, dim1=-2, dim2=-1).to(torch.complex128)
    except Exception:  # a gate that does not vectorise over angles keeps the matrix path
        return None
    if entries.shape[0] != len(probes) or not torch.allclose(entries.abs(), torch.ones(()).double()):
        return None
    offset = torch.angle(entries[0])
    slope = torch.angle(entries[1] / entries[0]) / probes[1]
    predicted = torch.polar(torch.ones_like(entries.real), offset + probes[:, None] * slope)
    return (slope, offset) if torch.allclose(predicted, entries, atol=1e-10) else None


def _value(kind: str, index, inputs: torch.Tensor, flat_weights: torch.Tensor) -> torch.Tensor:
    if kind == "w":
        return flat_weights[index]
    if kind == "x":
        return inputs[:, index]
    return torch.tensor(index, dtype=inputs.dtype, device=inputs.device)


# ----------------------------------------------------------------------------------------- program
#
# A program is a list of steps:
#   ("product", [op indices])            one-qubit gates on |0...0>, kept as one 2-vector per wire
#   ("static", [substeps])               data-independent gates: dense-fused or structured, by cost
#   ("batched", [substeps])              per-sample gates
# substeps: ("layer", {wire: [op indices]}) one-qubit gates combined per wire;
#           ("mono", [op indices], constant (permutation, phases) or None) diagonal/permutation run;
#           ("phase", [op indices], _LinearPhases or None) per-sample diagonal run (batched only);
#           ("gate", op index)             any other gate.


def _compile(plan: CircuitPlan, absorb: bool = True) -> list:
    ops = plan.ops
    program: list = []
    index = 0
    product: list[int] = []
    while index < len(ops) and len(ops[index].wires) == 1:
        product.append(index)
        index += 1
    program.append(("product", product))
    while index < len(ops):
        batched = ops[index].batched
        end = index
        while end < len(ops) and ops[end].batched == batched:
            end += 1
        run = list(range(index, end))
        program.append(("batched" if batched else "static", _substeps(plan, run, batched)))
        index = end
    if absorb and plan.readout_plan.computational_basis:
        _absorb_tail(plan, program)
    return program


def _substeps(plan: CircuitPlan, run: list[int], batched: bool) -> list:
    ops = plan.ops
    steps: list = []
    pending: dict[int, list[int]] = {}
    for i in run:
        op = ops[i]
        if batched:
            if op.kind == "diagonal" and steps and steps[-1][0] == "phase":
                steps[-1][1].append(i)
            elif op.kind == "diagonal":
                steps.append(("phase", [i]))
            else:
                steps.append(("gate", i))
            continue
        if len(op.wires) == 1:
            pending.setdefault(op.wires[0], []).append(i)
            continue
        if pending and set(op.wires) & set(pending):
            steps.append(("layer", pending))
            pending = {}
        if op.kind in ("diagonal", "monomial"):
            if steps and steps[-1][0] == "mono":
                steps[-1][1].append(i)
            else:
                steps.append(("mono", [i], None))
        else:
            steps.append(("gate", i))
    if pending:
        steps.append(("layer", pending))
    for position, step in enumerate(steps):
        if step[0] == "mono" and all(ops[i].constant is not None for i in step[1]):
            steps[position] = ("mono", step[1], _compose_monomials(plan, step[1]))
        elif step[0] == "phase":
            steps[position] = ("phase", step[1], _linear_phases(plan, step[1]))
    return steps


@dataclass
class _LinearPhases:
    """Per-sample diagonal gates whose phase angles are linear in input columns: the angle of every
    basis state is ``offset + inputs[:, columns] @ slopes`` (one small real matrix product)."""

    columns: torch.Tensor  # (m,) input columns
    slopes: torch.Tensor  # (m, 2**n) real
    offset: torch.Tensor | None  # (2**n,) real, None when zero

    def angles(self, inputs: torch.Tensor) -> torch.Tensor:
        selected = inputs.index_select(1, self.columns)
        return selected @ self.slopes if self.offset is None else torch.addmm(self.offset, selected, self.slopes)


def _linear_phases(plan: CircuitPlan, indices: list[int]) -> _LinearPhases | None:
    """The run's phases as a :class:`_LinearPhases` when every gate has a linear phase (None
    otherwise); runs of the same gates share one object, so a call computes their phases once."""
    ops = [plan.ops[i] for i in indices]
    if not all(op.phase is not None for op in ops):
        return None
    key = tuple(sorted((op.phase[0], op.wires, tuple(op.phase[1].tolist()), tuple(op.phase[2].tolist()))
                       for op in ops))
    if key not in plan.linear_phases:
        n, real = plan.n_qubits, _real(plan.dtype)
        slopes, offset = defaultdict(float), 0.0
        for op in ops:
            local = _local_index(op.wires, n, "cpu")
            column, slope, gate_offset = op.phase
            slopes[column] = slopes[column] + slope[local]
            offset = offset + gate_offset[local]
        columns = sorted(slopes)
        plan.linear_phases[key] = _LinearPhases(
            torch.tensor(columns, device=plan.device),
            torch.stack([slopes[c] for c in columns]).to(device=plan.device, dtype=real),
            None if not torch.any(offset != 0) else offset.to(device=plan.device, dtype=real))
    return plan.linear_phases[key]


def _absorb_tail(plan: CircuitPlan, program: list) -> None:
    """Trailing diagonal and constant permutation steps before a computational-basis readout: phases
    change no probability (dropped), a permutation is applied to the probabilities instead."""
    permutation = None
    while len(program) > 1 and program[-1][1]:
        kind, steps = program[-1]
        last = steps[-1]
        if kind == "batched" and last[0] == "phase":
            steps.pop()
        elif kind == "static" and last[0] == "mono" and last[2] is not None:
            if last[2][0] is not None:
                permutation = last[2][0] if permutation is None else last[2][0][permutation]
            steps.pop()
        elif kind == "static" and last[0] == "mono" and all(plan.ops[i].kind == "diagonal" for i in last[1]):
            steps.pop()
        else:
            break
        if not steps:
            program.pop()
    plan.readout_plan.final_permutation = permutation


def _execute(plan: CircuitPlan, program: list, batch: int) -> torch.Tensor:
    n = plan.n_qubits
    state = None
    deferred = None  # per-sample phases of a shared state, folded into the next fused unitary
    phases: dict[int, torch.Tensor] = {}  # this call's phases of each _LinearPhases
    for position, (kind, steps) in enumerate(program):
        if kind == "product":
            state = _product_state(plan, steps)
        elif kind == "batched":
            if state.shape[0] == 1 and batch > 1 and len(steps) == 1 and steps[0][0] == "phase" \
                    and position + 1 < len(program) and _fuses(plan, program[position + 1][1], batch, n):
                deferred = _step_phases(plan, steps[0], phases)
                continue
            if state.shape[0] == 1 and batch > 1:
                state = state.expand(batch, -1)
            for step in steps:
                state = _apply_batched_step(plan, state, step, phases)
        elif deferred is not None:
            # (psi0 * phases) @ U^T = phases @ (psi0[:, None] * U^T): no batch-sized multiplication
            transposed = _fused_transpose(plan, program[position][1], n)
            state = deferred @ (state.reshape(-1, 1) * transposed)
            deferred = None
        else:
            state = _apply_static(plan, state, steps, n)
    return state


def _fuses(plan: CircuitPlan, steps: list, rows: int, n: int) -> bool:
    """Whether a data-independent run on ``rows`` states is fused into one dense unitary."""
    if n > FUSE_MAX_QUBITS or STRATEGY == "structured":
        return False
    if STRATEGY == "dense":
        return True
    return rows > 1 and _dense_pays(plan, steps, rows, n, GROUP_SIZE or _group_size(rows, n, plan.device))


def _fused_transpose(plan: CircuitPlan, steps: list, n: int) -> torch.Tensor:
    """``U^T`` of a data-independent run: its steps applied to the rows of the identity, where a
    leading one-qubit layer is the (transposed) Kronecker product of its wire matrices itself."""
    like = torch.empty(0, dtype=plan.dtype, device=plan.device)
    if steps[0][0] == "layer":
        factors = {wire: _wire_matrix(plan, indices) for wire, indices in steps[0][1].items()}
        start, steps = _kron([factors.get(wire) for wire in range(n)], like=like).transpose(0, 1), steps[1:]
    else:
        start = torch.eye(2**n, dtype=plan.dtype, device=plan.device)
    return _apply_structured(plan, start, steps, n, GROUP_SIZE or _group_size(2**n, n, plan.device))


def _product_state(plan: CircuitPlan, indices: list[int]) -> torch.Tensor:
    zero = torch.zeros(1, 2, dtype=plan.dtype, device=plan.device)
    zero[0, 0] = 1.0
    vectors = [zero] * plan.n_qubits
    for i in indices:
        op = plan.ops[i]
        matrix = plan.matrix(op)
        wire = op.wires[0]
        vector = vectors[wire]
        if matrix.ndim == 2:
            vectors[wire] = vector @ matrix.transpose(0, 1)
        else:
            vectors[wire] = (matrix @ vector.unsqueeze(-1)).squeeze(-1)
    state = vectors[0]
    for vector in vectors[1:]:
        state = torch.matmul(state.unsqueeze(-1), vector.unsqueeze(-2)).flatten(-2)  # outer product: bmm backward
    return state


def _apply_batched_step(plan: CircuitPlan, state: torch.Tensor, step, phases: dict) -> torch.Tensor:
    n = plan.n_qubits
    if step[0] == "phase":
        return state * _step_phases(plan, step, phases)
    op = plan.ops[step[1]]
    matrix = plan.matrix(op)
    if op.kind == "one_qubit":
        return _apply_one_qubit(state, matrix, op.wires[0], n)
    return _apply_dense(state, matrix, op.wires, n)


def _step_phases(plan: CircuitPlan, step, phases: dict) -> torch.Tensor:
    """Complex phases ``(B, 2**n)`` of a per-sample diagonal run; a :class:`_LinearPhases` run's
    are computed once per call (``phases`` keeps them) and never build a gate matrix."""
    _, indices, linear = step
    if linear is not None:
        if id(linear) not in phases:
            phases[id(linear)] = _Phases.apply(linear.angles(plan.values[0]))
        return phases[id(linear)]
    ops = [plan.ops[i] for i in indices]
    angles = _phase_angles(ops, plan, plan.n_qubits)
    return _Phases.apply(angles) if angles is not None else _merged_phases(ops, plan, plan.n_qubits)


def _phase_angles(ops: list[_Op], plan: CircuitPlan, n: int) -> torch.Tensor | None:
    """Per-sample one-qubit diagonal gates on distinct wires (unitary: |entry| = 1) as the angle of
    every basis state's phase ``(B, 2**n)``: the sum over wires of the angle of the entry its bit
    selects, one small real matrix product; None for other diagonal runs."""
    wires = [op.wires for op in ops]
    if not (all(len(w) == 1 for w in wires) and len(set(wires)) == len(wires)):
        return None
    diagonals = [torch.diagonal(plan.matrix(op), dim1=-2, dim2=-1) for op in ops]
    if diagonals[0].ndim != 2:
        return None
    angles = torch.angle(torch.cat(diagonals, dim=-1))
    return angles @ _bit_selector(tuple(w[0] for w in wires), n, angles.dtype, str(plan.device))


class _Phases(torch.autograd.Function):
    """``exp(1j * angles)`` for real ``angles``, keeping its output for the backward
    (d angles = Im(grad * conj(out))): no sines and cosines recomputed, no real/imaginary split."""

    @staticmethod
    def forward(ctx, angles):
        phases = torch.complex(torch.cos(angles), torch.sin(angles))
        ctx.save_for_backward(phases)
        return phases

    @staticmethod
    def backward(ctx, grad):
        (phases,) = ctx.saved_tensors
        return (grad * phases.conj()).imag.contiguous()


def _merged_phases(ops: list[_Op], plan: CircuitPlan, n: int) -> torch.Tensor:
    """Product of diagonal gates as one ``(..., 2**n)`` phase vector (per-wire Kronecker products
    when they are one-qubit gates on distinct wires)."""
    wires = [op.wires for op in ops]
    diagonals = [torch.diagonal(plan.matrix(op), dim1=-2, dim2=-1) for op in ops]
    if all(len(w) == 1 for w in wires) and len(set(wires)) == len(wires):
        per_wire = {w[0]: d for w, d in zip(wires, diagonals)}
        ones = torch.ones(2, dtype=plan.dtype, device=plan.device)
        phases = per_wire.get(0, ones)
        for wire in range(1, n):
            factor = per_wire.get(wire, ones)
            phases = (phases.unsqueeze(-1) * factor.unsqueeze(-2)).flatten(-2)
        return phases
    phases = _embed_diagonal(diagonals[0], wires[0], n)
    for w, d in zip(wires[1:], diagonals[1:]):
        phases = phases * _embed_diagonal(d, w, n)
    return phases


def _apply_static(plan: CircuitPlan, state: torch.Tensor, steps: list, n: int) -> torch.Tensor:
    rows = state.shape[0]
    if _fuses(plan, steps, rows, n):
        return state @ _fused_transpose(plan, steps, n)
    return _apply_structured(plan, state, steps, n, GROUP_SIZE or _group_size(rows, n, plan.device))


def _apply_structured(plan: CircuitPlan, state: torch.Tensor, steps: list, n: int, group: int) -> torch.Tensor:
    for step in steps:
        if step[0] == "layer":
            factors = {wire: _wire_matrix(plan, indices) for wire, indices in step[1].items()}
            state = _apply_layer(state, factors, n, group)
        elif step[0] == "mono":
            permutation, phases = step[2] if step[2] is not None else _compose_monomials(plan, step[1])
            if permutation is not None:
                state = _Gather.apply(state, permutation, _inverse(permutation))
            if phases is not None:
                state = state * phases
        else:
            op = plan.ops[step[1]]
            if op.kind == "one_qubit":
                state = _apply_one_qubit(state, plan.matrix(op), op.wires[0], n)
            else:
                state = _apply_dense(state, plan.matrix(op), op.wires, n)
    return state


def _wire_matrix(plan: CircuitPlan, indices: list[int]) -> torch.Tensor:
    matrix = plan.matrix(plan.ops[indices[0]])
    for i in indices[1:]:
        matrix = plan.matrix(plan.ops[i]) @ matrix
    return matrix


# ----------------------------------------------------------------------------------------- cost model


def _costs(device: torch.device) -> dict:
    return COSTS["cuda" if device.type == "cuda" else "cpu"]


@lru_cache(maxsize=256)
def _group_size_cached(rows: int, n: int, device_type: str) -> int:
    costs = COSTS[device_type]
    amplitudes = rows * 2**n

    return min(range(1, min(n, 10) + 1), key=lambda g: _chunk_cost(costs, amplitudes, g) / g)


def _group_size(rows: int, n: int, device: torch.device) -> int:
    """Wires per Kronecker group: the size with the least cost per wire (:func:`_chunk_cost`)."""
    return _group_size_cached(rows, n, "cuda" if device.type == "cuda" else "cpu")


def _chunk_cost(costs: dict, amplitudes: int, size: int) -> float:
    """One group of ``size`` wires of a one-qubit layer: build its ``2**size`` Kronecker factor
    (``size - 1`` products of ``4**size`` elements at most), then one matrix product on one axis."""
    return (costs["overhead"] * (2 + size) + costs["kron"] * 4**size
            + amplitudes * (costs["pass"] + costs["mac"] * 2**size))


def _structured_cost(plan: CircuitPlan, steps: list, rows: int, n: int, group: int) -> float:
    costs = _costs(plan.device)
    amplitudes = rows * 2**n
    total = 0.0
    for step in steps:
        if step[0] == "layer":
            chunks = _chunks(sorted(step[1]), n, group)
            for first, size, touched in chunks:
                total += _chunk_cost(costs, amplitudes, size) if touched else costs["overhead"] + amplitudes * costs["pass"]
        elif step[0] == "mono":
            total += 2 * costs["overhead"] + amplitudes * (costs["gather"] + costs["pass"])
        else:
            k = len(plan.ops[step[1]].wires)
            total += 3 * costs["overhead"] + amplitudes * (2 * costs["pass"] + costs["mac"] * 2**k)
    return total


def _dense_pays(plan: CircuitPlan, steps: list, rows: int, n: int, group: int) -> bool:
    if rows <= 1 or n > FUSE_MAX_QUBITS:
        return False
    costs = _costs(plan.device)
    dimension = 2**n
    build = _structured_cost(plan, steps, dimension, n, _group_size(dimension, n, plan.device))
    apply = costs["overhead"] + rows * dimension * (costs["pass"] + costs["mac"] * dimension)
    return build + apply < _structured_cost(plan, steps, rows, n, group)


def plan_costs(function, inputs: torch.Tensor, weights: torch.Tensor, n_qubits: int) -> list[dict]:
    """The cost model's choice for each data-independent run of ``function`` at this batch and device:
    ``{"rows", "group", "dense", "structured_cost", "dense_cost"}`` (for the benchmark and the docs)."""
    x, w = _compute_operands(inputs, weights)
    dtype = torch.complex128 if x.dtype == torch.float64 else torch.complex64
    plan = CircuitPlan.record(function, x, w, n_qubits, dtype)
    rows, report = 1, []
    for kind, steps in plan.program:
        if kind == "batched" or (kind == "product" and any(plan.ops[i].batched for i in steps)):
            rows = x.shape[0]
        if kind != "static":
            continue
        group = _group_size(rows, n_qubits, x.device)
        report.append({"rows": rows, "group": group, "dense": _dense_pays(plan, steps, rows, n_qubits, group),
                       "structured_cost": _structured_cost(plan, steps, rows, n_qubits, group)})
    return report


# ----------------------------------------------------------------------------------------- kernels


def _chunks(wires: list[int], n: int, group: int) -> list[tuple[int, int, bool]]:
    """Partition of wires 0..n-1 into (first wire, size, touched): touched runs split into groups of
    at most ``group`` wires, untouched runs kept whole (they only rotate the axes)."""
    touched = set(wires)
    chunks, wire = [], 0
    while wire < n:
        if wire in touched:
            run = 1
            while wire + run < n and wire + run in touched:
                run += 1
            pieces = -(-run // group)  # as few groups as the size allows, of even sizes
            for piece in range(pieces):
                size = run // pieces + (1 if piece < run % pieces else 0)
                chunks.append((wire, size, True))
                wire += size
            continue
        else:
            size = 1
            while wire + size < n and wire + size not in touched:
                size += 1
            chunks.append((wire, size, False))
        wire += size
    return chunks


def _apply_layer(state: torch.Tensor, factors: dict[int, torch.Tensor], n: int, group: int) -> torch.Tensor:
    """One-qubit matrices on distinct wires, a group of wires at a time.

    The state's wire axes are cycled: each group's Kronecker factor multiplies the leading group of
    axes and moves it to the end (one batched matrix product), so after all groups the order is
    back. A single group of wires is applied in place on its axis instead.
    """
    rows = state.shape[0]
    chunks = _chunks(sorted(factors), n, group)
    touched = [c for c in chunks if c[2]]
    if len(touched) == 1 and len(chunks) > 1:
        first, size, _ = touched[0]
        factor = _kron([factors[w] for w in range(first, first + size)])
        view = state.reshape(rows * 2**first, 2**size, -1)
        return (factor @ view).reshape(rows, -1)
    for first, size, is_touched in chunks:
        view = state.reshape(rows, 2**size, -1).transpose(1, 2)
        if is_touched:
            factor = _kron([factors.get(w) for w in range(first, first + size)], like=state)
            state = (view @ factor.transpose(0, 1)).reshape(rows, -1)
        else:
            state = view.reshape(rows, -1)
    return state


def _kron(matrices: list, like: torch.Tensor | None = None) -> torch.Tensor:
    """Kronecker product of ``matrices`` in order (None: the 2x2 identity, of ``like``'s dtype and
    device), multiplied as a balanced tree: the large products have balanced factors, whose
    backward is much cheaper than that of a chain ending in ``(2**(k-1) x 2**(k-1)) (x) (2 x 2)``."""
    identity = None
    factors = []
    for matrix in matrices:
        if matrix is None:
            if identity is None:
                identity = torch.eye(2, dtype=like.dtype, device=like.device)
            matrix = identity
        factors.append(matrix)
    while len(factors) > 1:
        factors = [torch.kron(*factors[i:i + 2]) if i + 1 < len(factors) else factors[i]
                   for i in range(0, len(factors), 2)]
    return factors[0]


class _Gather(torch.autograd.Function):
    """``state[:, permutation]`` whose backward is the inverse gather (no scatter-add)."""

    @staticmethod
    def forward(ctx, state, permutation, inverse):
        ctx.save_for_backward(inverse)
        return state.index_select(-1, permutation)

    @staticmethod
    def backward(ctx, grad):
        (inverse,) = ctx.saved_tensors
        return grad.index_select(-1, inverse), None, None


def _inverse(permutation: torch.Tensor) -> torch.Tensor:
    inverse = torch.empty_like(permutation)
    inverse[permutation] = torch.arange(len(permutation), device=permutation.device)
    return inverse


def _compose_monomials(plan: CircuitPlan, indices: list[int]):
    """``(permutation, phases)`` with ``(G psi)[s] = phases[s] * psi[permutation[s]]`` for the gates
    in order; ``None`` for an identity permutation or all-one phases (constant runs only)."""
    n = plan.n_qubits
    states = torch.arange(2**n, device=plan.device)
    permutation, phases = None, None
    for i in indices:
        op = plan.ops[i]
        matrix = plan.matrix(op)
        local = _local_index(op.wires, n, str(plan.device))
        if op.kind == "diagonal":
            gate_permutation, gate_phases = None, torch.diagonal(matrix)[local]
        else:
            source = (matrix.detach().abs() > 0).to(torch.int64).argmax(dim=-1)
            gate_phases = matrix.gather(-1, source.unsqueeze(-1)).squeeze(-1)[local]
            mask = sum(1 << (n - 1 - w) for w in op.wires)
            source_local = source[local]
            bits = torch.zeros_like(states)
            for position, wire in enumerate(op.wires):
                bits |= ((source_local >> (len(op.wires) - 1 - position)) & 1) << (n - 1 - wire)
            gate_permutation = (states & ~mask) | bits
        # G2 after G1: perm = perm1[perm2], phases = phases2 * phases1[perm2]
        if gate_permutation is not None:
            permutation = gate_permutation if permutation is None else permutation[gate_permutation]
            phases = None if phases is None else phases[gate_permutation]
        phases = gate_phases if phases is None else phases * gate_phases
    if op.constant is not None and all(plan.ops[i].constant is not None for i in indices):
        if phases is not None and torch.equal(phases, torch.ones_like(phases)):
            phases = None
        if permutation is not None and torch.equal(permutation, states):
            permutation = None
    return permutation, phases


def _apply_one_qubit(state: torch.Tensor, matrix: torch.Tensor, wire: int, n: int) -> torch.Tensor:
    """Element-wise application of a ``(2, 2)`` or per-sample ``(B, 2, 2)`` matrix on ``wire``."""
    batch = state.shape[0] if matrix.ndim == 2 else max(state.shape[0], matrix.shape[0])
    view = state.reshape(state.shape[0], 2**wire, 2, 2 ** (n - wire - 1))
    zero, one = view[:, :, 0], view[:, :, 1]
    entries = matrix.reshape(-1, 2, 2, 1, 1) if matrix.ndim == 3 else matrix.reshape(1, 2, 2, 1, 1)
    new_zero = entries[:, 0, 0] * zero + entries[:, 0, 1] * one
    new_one = entries[:, 1, 0] * zero + entries[:, 1, 1] * one
    return torch.stack((new_zero, new_one), dim=2).reshape(batch, -1)


def _apply_dense(state: torch.Tensor, matrix: torch.Tensor, wires: tuple[int, ...], n: int) -> torch.Tensor:
    """General k-qubit matrix ``(d, d)`` or per-sample ``(B, d, d)`` on ``wires``."""
    batch = max(state.shape[0], matrix.shape[0] if matrix.ndim == 3 else 1)
    k = len(wires)
    axes = [1 + w for w in wires]
    last = list(range(n + 1 - k, n + 1))
    moved = state.reshape((state.shape[0],) + (2,) * n).movedim(axes, last)
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


@lru_cache(maxsize=256)
def _bit_selector(wires: tuple[int, ...], n_qubits: int, dtype: torch.dtype, device: str) -> torch.Tensor:
    """``(2k, 2**n)`` 0/1 matrix: row ``2i + b`` selects the basis states whose bit on ``wires[i]`` is ``b``."""
    bits = _basis_bits(n_qubits, device)[:, list(wires)]  # (2**n, k)
    rows = torch.stack([1 - bits, bits], dim=-1).reshape(2**n_qubits, -1)  # (2**n, 2k)
    return rows.transpose(0, 1).to(dtype).contiguous()


def _embed_diagonal(diagonal: torch.Tensor, wires: tuple[int, ...], n_qubits: int) -> torch.Tensor:
    """A k-qubit diagonal ``(..., 2**k)`` as the full ``(..., 2**n)`` diagonal."""
    return diagonal[..., _local_index(wires, n_qubits, str(diagonal.device))]


# ----------------------------------------------------------------------------------------- readout


@dataclass
class _Basis:
    """One measurement basis: the rotation applied before squaring, and the real functionals of the
    resulting probabilities (columns of ``table``) that the measurements read."""

    rotation: list  # _Op list (constant matrices) or []
    columns: list = field(default_factory=list)  # (2**n,) real vectors
    probs: list = field(default_factory=list)  # wires tuples for marginal probabilities


class _Readout:
    """Measurements as linear functionals of basis probabilities, plus dense observables."""

    def __init__(self, measurements: list, plan: CircuitPlan):
        self.plan, self.n = plan, plan.n_qubits
        self.reusable = True
        self.final_permutation = None
        self.bases: dict[tuple, _Basis] = {}
        self.moments: list[list] = []  # per moment (a mean or a second moment): its terms
        self.outputs: list = []  # per measurement: ("expval", moment) | ("var", moment, moment of squares)
        #                          | ("probs", basis, wires) | ("dense", wires, matrix, variance)
        for measurement in measurements:
            output = self._measurement(measurement)
            if output[0] in ("expval", "var"):
                output = (output[0], *(self._moment(terms) for terms in output[1:] if terms is not None))
            self.outputs.append(output)
        self.computational_basis = list(self.bases) in ([], [()]) and all(o[0] != "dense" for o in self.outputs)
        self.only_means = all(output[0] == "expval" for output in self.outputs)  # moments are the outputs
        self._functionals: tuple[dict, torch.Tensor] | None = None

    def _measurement(self, measurement):
        name = type(measurement).__name__
        if not isinstance(measurement, (ExpectationMP, VarianceMP, ProbabilityMP)) or measurement.mv is not None:
            raise NotImplementedError(f"the fast simulator computes expval, var and probs of a state vector, not "
                                      f"{name} ({measurement!r}); use default.qubit")
        observable = measurement.obs
        if isinstance(measurement, ProbabilityMP):
            if observable is None:
                wires = measurement.wires if len(measurement.wires) else range(self.n)
                wires = tuple(self._wire(w, measurement) for w in wires)
                return ("probs", self._basis((), []), wires)
            key, rotation = self._rotation(observable)
            return ("probs", self._basis(key, rotation), self.plan.wires_of(observable))
        variance = isinstance(measurement, VarianceMP)
        if any(isinstance(d, torch.Tensor) for d in observable.data):
            self.reusable = False  # a trainable observable: its values are read from each recording
        sentence = observable.pauli_rep
        if sentence is not None:
            terms = self._pauli_terms(sentence)
            return ("var" if variance else "expval", terms, self._pauli_terms(sentence @ sentence) if variance else None)
        matrix = _hermitian_matrix(observable)
        try:
            rotation_ops = list(decompose(observable.diagonalizing_gates()))
            eigenvalues = torch.as_tensor(qml.eigvals(observable))
            key, rotation = self._rotation(observable, rotation_ops)
        except Exception:
            if matrix is None:  # neither diagonalizing gates nor a matrix: PennyLane's own error
                matrix = qml.matrix(observable, wire_order=list(observable.wires))
            return ("dense", self.plan.wires_of(observable), _as_complex(matrix, self.plan.dtype, self.plan.device),
                    variance)
        eigenvalues = (eigenvalues.real if eigenvalues.is_complex() else eigenvalues).to(
            device=self.plan.device, dtype=_real(self.plan.dtype))
        local = _local_index(self.plan.wires_of(observable), self.n, str(self.plan.device))
        column = eigenvalues[local]
        basis = self._basis(key, rotation)
        terms = [(1.0, self._column(basis, key, column))]
        squares = [(1.0, self._column(basis, key, column**2))] if variance else None
        return ("var" if variance else "expval", terms, squares)

    def _wire(self, wire, measurement) -> int:
        if not isinstance(wire, (int, np.integer)) or not 0 <= int(wire) < self.n:
            raise ValueError(f"{measurement!r} measures wire {wire!r}; wires are 0..{self.n - 1}")
        return int(wire)

    def _rotation(self, observable, rotation_ops=None):
        if rotation_ops is None:
            rotation_ops = list(decompose(observable.diagonalizing_gates()))
        rotation = []
        for operation in rotation_ops:
            matrix = _as_complex(qml.matrix(operation), self.plan.dtype, self.plan.device)
            wires = self.plan.wires_of(operation)
            rotation.append(_Op(operation, wires, _kind_of(matrix, len(wires)), False, constant=matrix))
        key = tuple((r.wires, tuple(np.round(r.constant.detach().cpu().numpy().ravel(), 12).tolist())) for r in rotation)
        return key, rotation

    def _basis(self, key, rotation) -> _Basis:
        if key not in self.bases:
            self.bases[key] = _Basis(rotation)
        return self.bases[key]

    def _column(self, basis: _Basis, key, column: torch.Tensor) -> tuple:
        basis.columns.append(column)
        return key, len(basis.columns) - 1

    def _pauli_terms(self, sentence) -> list:
        """Terms ``(coefficient, (basis key, column) | None)`` of a Pauli sentence (None: identity)."""
        terms = []
        bits = _basis_bits(self.n, str(self.plan.device))
        for word, coefficient in sentence.items():
            if isinstance(coefficient, torch.Tensor):
                self.reusable = False
                coefficient = coefficient.real if coefficient.is_complex() else coefficient
            else:
                if abs(np.imag(coefficient)) > 1e-12:
                    raise ValueError(f"the observable {sentence} has the complex coefficient {coefficient} on {word}, "
                                     f"so it is not Hermitian; measure a Hermitian operator (real coefficients)")
                coefficient = float(np.real(coefficient))
            letters = {self._wire(w, word): letter for w, letter in dict(word).items() if letter != "I"}
            if not letters:
                terms.append((coefficient, None))
                continue
            rotation_ops = []
            for wire, letter in sorted(letters.items()):
                if letter != "Z":
                    rotation_ops += {"X": qml.PauliX, "Y": qml.PauliY}[letter](wire).diagonalizing_gates()
            key, rotation = self._rotation(None, rotation_ops)
            parity = bits[:, sorted(letters)].sum(dim=1) % 2
            column = (1 - 2 * parity).to(_real(self.plan.dtype))
            terms.append((coefficient, self._column(self._basis(key, rotation), key, column)))
        return terms

    def _moment(self, terms: list) -> int:
        self.moments.append(terms)
        return len(self.moments) - 1

    def functionals(self) -> tuple[dict, torch.Tensor]:
        """Every moment as linear functionals of basis probabilities: per basis key a real
        ``(2**n, n_moments)`` matrix, and a ``(n_moments,)`` constant (identity terms), so that
        ``moments = constant + sum over bases of probabilities @ matrix``. Trainable coefficients stay
        in the autograd graph (their plans are recorded on each call, so this is built per call)."""
        if self._functionals is None:
            real, device = _real(self.plan.dtype), self.plan.device
            entries: dict = defaultdict(list)  # basis key -> (column, moment, coefficient)
            constant = [torch.zeros((), dtype=real, device=device) for _ in self.moments]
            for moment, terms in enumerate(self.moments):
                for coefficient, where in terms:
                    coefficient = torch.as_tensor(coefficient, dtype=real, device=device)
                    if where is None:
                        constant[moment] = constant[moment] + coefficient
                    else:
                        entries[where[0]].append((where[1], moment, coefficient))
            matrices = {}
            for key, items in entries.items():
                columns = torch.stack(self.bases[key].columns, dim=1)
                weights = torch.zeros(columns.shape[1], len(self.moments), dtype=real, device=device).index_put(
                    (torch.tensor([c for c, _, _ in items], device=device),
                     torch.tensor([m for _, m, _ in items], device=device)),
                    torch.stack([value for _, _, value in items]), accumulate=True)
                matrices[key] = columns @ weights
            self._functionals = matrices, (torch.stack(constant) if constant else torch.zeros(0, dtype=real, device=device))
        return self._functionals

    def evaluate(self, state: torch.Tensor, batch: int) -> torch.Tensor:
        """The measurements ``(B, n_values)`` of final states ``(B or 1, 2**n)``."""
        matrices, constant = self.functionals()
        probabilities = {}
        moments = constant.expand(state.shape[0], -1)
        n = self.n
        for key, basis in self.bases.items():
            rotated = state
            for op in basis.rotation:
                if op.kind == "diagonal":
                    rotated = rotated * _embed_diagonal(torch.diagonal(op.constant), op.wires, n)
                elif op.kind == "one_qubit":
                    rotated = _apply_one_qubit(rotated, op.constant, op.wires[0], n)
                else:
                    rotated = _apply_dense(rotated, op.constant, op.wires, n)
            p = _probabilities(rotated)
            if key == () and self.final_permutation is not None:
                p = _Gather.apply(p, self.final_permutation, _inverse(self.final_permutation))
            probabilities[key] = p
            if key in matrices:
                moments = moments + p @ matrices[key]
        if self.only_means:
            result = moments
        else:
            columns = [self._output_value(output, moments, probabilities, state) for output in self.outputs]
            result = torch.cat(columns, dim=-1) if columns else state.real.new_zeros(state.shape[0], 0)
        return result.expand(batch, -1) if result.shape[0] == 1 and batch > 1 else result

    def _output_value(self, output: tuple, moments: torch.Tensor, probabilities: dict,
                      state: torch.Tensor) -> torch.Tensor:
        """One measurement's columns ``(rows, k)``."""
        kind = output[0]
        if kind == "expval":
            return moments[:, output[1]:output[1] + 1]
        if kind == "var":
            return (moments[:, output[2]] - moments[:, output[1]] ** 2).unsqueeze(-1)
        if kind == "probs":
            _, basis, wires = output
            key = next(k for k, b in self.bases.items() if b is basis)
            return _marginal(probabilities[key], wires, self.n)
        _, wires, matrix, variance = output
        applied = _apply_dense(state, matrix, wires, self.n)
        mean = (state.conj() * applied).real.sum(dim=-1)
        if variance:
            mean = (applied.conj() * applied).real.sum(dim=-1) - mean**2
        return mean.unsqueeze(-1)


def _hermitian_matrix(observable):
    """``observable``'s matrix on its own wires (trainable entries kept in the graph), None where
    PennyLane has none; raises ValueError naming it when the matrix is not Hermitian (its
    expectation value would not be real)."""
    try:
        matrix = qml.matrix(observable, wire_order=list(observable.wires))
    except Exception:  # no matrix: its diagonalizing gates and eigenvalues decide
        return None
    check = torch.as_tensor(matrix).detach().to(torch.complex128)
    if not torch.allclose(check, check.conj().transpose(-2, -1), atol=1e-10):
        raise ValueError(f"the observable {observable!r} is not Hermitian, so its expectation value is not a real "
                         f"measurement; measure a Hermitian operator (qml.Hermitian, Pauli words, their sums)")
    return matrix


def _marginal(probabilities: torch.Tensor, wires: tuple[int, ...], n: int) -> torch.Tensor:
    rows = probabilities.shape[0]
    view = probabilities.reshape((rows,) + (2,) * n)
    others = [1 + w for w in range(n) if w not in wires]
    if others:
        view = view.sum(dim=others)
    kept = sorted(wires)
    order = [1 + kept.index(w) for w in wires]
    return view.permute(0, *order).reshape(rows, -1)


def _real(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.complex128 else torch.float32


def _probabilities(state: torch.Tensor) -> torch.Tensor:
    """``|state|**2`` (its backward is one multiplication: ``2 * grad * state``)."""
    return _SquaredMagnitude.apply(state)


class _SquaredMagnitude(torch.autograd.Function):
    """``Re^2 + Im^2`` as a contiguous real tensor; the backward scales the real and imaginary parts by
    ``2 * grad`` in real arithmetic (a complex-by-real product would first promote ``grad`` to complex)."""

    @staticmethod
    def forward(ctx, state):
        ctx.save_for_backward(state)
        return torch.addcmul(state.real.square(), state.imag, state.imag)

    @staticmethod
    def backward(ctx, grad):
        (state,) = ctx.saved_tensors
        return torch.view_as_complex(torch.view_as_real(state) * (2 * grad).unsqueeze(-1))
