"""The entry points: run a PennyLane quantum function ``function(inputs, weights)`` on a batch."""

from __future__ import annotations

import torch

from qml_imaging.quantum.backends import MAX_SIMULATED_QUBITS
from qml_imaging.quantum.fast.apply import Call, execute
from qml_imaging.quantum.fast.kernels import probabilities
from qml_imaging.quantum.fast.measure import measure
from qml_imaging.quantum.fast.memory import check_memory
from qml_imaging.quantum.fast.options import FastOptions
from qml_imaging.quantum.fast.plan import CircuitPlan, plan_for

DEFAULT_OPTIONS = FastOptions()


def expectation_values(function, inputs: torch.Tensor, weights: torch.Tensor, n_qubits: int,
                       options: FastOptions = DEFAULT_OPTIONS) -> torch.Tensor:
    """Run ``function(inputs, weights)`` for a batch ``inputs`` of shape ``(B, n_qubits)``.

    Returns its measurements as a real ``(B, n_values)`` tensor of the inputs' dtype: one column per
    ``expval`` / ``var``, ``2**k`` per ``probs`` over ``k`` wires, in the order returned. Computes in
    complex128 when inputs or weights are float64, else in complex64; autocast is off inside.
    Raises ValueError for more than ``MAX_SIMULATED_QUBITS`` qubits, a wire outside ``0..n_qubits-1``,
    a non-Hermitian observable or no measurement; NotImplementedError naming an operation or
    measurement a state vector cannot run; MemoryError when the states would not fit in free memory.
    """
    with torch.autocast(device_type=inputs.device.type, enabled=False):
        x, w = _compute_operands(inputs, weights)
        plan = _plan(function, x, w, n_qubits)
        if not plan.readout.outputs:
            raise ValueError("the circuit returns no measurement; return qml.expval, qml.var or qml.probs values")
        state = _run(plan, x, w, options, whole_state=False)
        values = measure(plan.readout, state, x.shape[0], plan.program.final_permutation)
    return values.to(inputs.dtype if inputs.is_floating_point() else values.dtype)


def final_state(function, inputs: torch.Tensor, weights: torch.Tensor, n_qubits: int,
                options: FastOptions = DEFAULT_OPTIONS) -> torch.Tensor:
    """The state ``(B, 2**n_qubits)`` (complex64, or complex128 for float64 inputs or weights) that
    ``function`` prepares (its measurements are ignored); amplitude ``k`` belongs to the basis state
    whose bits, wire 0 first, spell ``k``. Raises as :func:`expectation_values`."""
    with torch.autocast(device_type=inputs.device.type, enabled=False):
        x, w = _compute_operands(inputs, weights)
        state = _run(_plan(function, x, w, n_qubits), x, w, options, whole_state=True)
    return state.expand(x.shape[0], -1)


def basis_probabilities(function, inputs: torch.Tensor, weights: torch.Tensor, n_qubits: int,
                        options: FastOptions = DEFAULT_OPTIONS) -> torch.Tensor:
    """Computational-basis probabilities ``(B, 2**n_qubits)`` (real) of :func:`final_state`."""
    with torch.autocast(device_type=inputs.device.type, enabled=False):
        return probabilities(final_state(function, inputs, weights, n_qubits, options))


def _compute_operands(inputs: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    weights = torch.as_tensor(weights, device=inputs.device)
    real = torch.float64 if torch.float64 in (inputs.dtype, weights.dtype) else torch.float32
    return inputs.to(real).contiguous(), weights.to(real).contiguous()


def _plan(function, inputs: torch.Tensor, weights: torch.Tensor, n_qubits: int) -> CircuitPlan:
    if n_qubits > MAX_SIMULATED_QUBITS:
        raise ValueError(f"the fast simulator handles at most {MAX_SIMULATED_QUBITS} qubits, got {n_qubits}")
    dtype = torch.complex128 if inputs.dtype == torch.float64 else torch.complex64
    return plan_for(function, inputs, weights, n_qubits, dtype)


def _run(plan: CircuitPlan, inputs: torch.Tensor, weights: torch.Tensor, options: FastOptions,
         whole_state: bool) -> torch.Tensor:
    """The final state ``(B or 1, 2**n)``; ``whole_state``: without the steps the readout absorbs.
    Gate matrices are computed when a step first needs them (per-sample phase gates never)."""
    program = plan.whole_program if whole_state else plan.program
    copies = plan.program.n_steps + 3 if torch.is_grad_enabled() else 4
    check_memory(inputs.shape[0], plan.n_qubits, plan.dtype, inputs.device, copies)
    call = Call(plan.gates, plan.n_qubits, plan.dtype, inputs, weights.reshape(-1), options)
    return execute(program, call)
