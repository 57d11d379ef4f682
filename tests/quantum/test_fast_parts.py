"""The fast simulator's parts: options, typed programs, per-call state, fallback counts."""

import dataclasses
import threading

import numpy as np
import pennylane as qml
import pytest
import torch

from qml_imaging.quantum import fast
from qml_imaging.quantum.circuits import (
    bottleneck_ansatz,
    noise_circuit,
    qiren_block,
    qiren_generator_block,
)
from qml_imaging.quantum.fast import FALLBACKS, Fallback, FastOptions, Strategy
from qml_imaging.quantum.fast.apply import Call, execute
from qml_imaging.quantum.fast.costs import fuses
from qml_imaging.quantum.fast.plan import plan_for
from qml_imaging.quantum.fast.program import (
    GateStep,
    Layer,
    MonomialRun,
    PhaseRun,
    SegmentKind,
)
from tests.quantum.conftest import random_batch, reference_expvals


@pytest.mark.parametrize("bad", [{"group_size": 0}, {"group_size": 11}, {"group_size": True}, {"group_size": 2.0}])
def test_bad_options_are_refused_naming_the_value(bad):
    with pytest.raises(ValueError, match=f"group_size must be an integer in 1..10 or None, got {bad['group_size']}"):
        FastOptions(**bad)
    with pytest.raises(TypeError, match="strategy must be one of .*'dense'.* got 'dense'"):
        FastOptions(strategy="dense")


def test_options_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        FastOptions().group_size = 3


def _plan(template, batch=8, dtype=torch.float64):
    inputs, weights = random_batch(template, batch, dtype=dtype)
    complex_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
    return plan_for(template.function, inputs, weights, template.n_qubits, complex_dtype), inputs, weights


def test_the_qiren_program_is_typed_steps_with_shared_linear_phases():
    plan, _, _ = _plan(qiren_block(4, reuploads=2, sublayers=2))
    kinds = [segment.kind for segment in plan.program.segments]
    assert kinds[0] is SegmentKind.PRODUCT and set(kinds[1:]) == {SegmentKind.STATIC, SegmentKind.BATCHED}
    steps = [step for segment in plan.program.segments for step in segment.steps]
    assert all(isinstance(step, (Layer, MonomialRun, PhaseRun, GateStep)) for step in steps)
    phase_runs = [step for step in steps if isinstance(step, PhaseRun)]
    assert len(phase_runs) == 2 and phase_runs[0].linear is not None
    assert phase_runs[0].linear is phase_runs[1].linear  # the re-uploads share one phase vector per call
    assert plan.reusable and plan.program.final_permutation is None


def test_a_trailing_permutation_moves_to_the_probabilities():
    plan, _, _ = _plan(bottleneck_ansatz(4, layers=2, entangler="ring"))
    assert plan.program.final_permutation is not None  # the last CNOT ring
    assert plan.whole_program.n_steps > plan.program.n_steps


def test_options_choose_the_execution_and_never_change_the_values():
    template = qiren_block(4, reuploads=2, sublayers=2)
    plan, inputs, weights = _plan(template, batch=64)
    static = next(s for s in plan.program.segments if s.kind is SegmentKind.STATIC)
    decide = [fuses(plan.gates, static.steps, 64, 4, inputs.device, FastOptions(strategy))
              for strategy in (Strategy.DENSE, Strategy.STRUCTURED)]
    assert decide == [True, False]
    reference = reference_expvals(template, inputs, weights)
    for options in (FastOptions(), FastOptions(Strategy.DENSE), FastOptions(Strategy.STRUCTURED, 1),
                    FastOptions(Strategy.STRUCTURED, 3)):
        ours = fast.expectation_values(template.function, inputs, weights, 4, options)
        assert torch.allclose(ours, reference, atol=1e-10), options


def test_a_call_leaves_its_cached_plan_unchanged_and_calls_can_run_at_once():
    template = bottleneck_ansatz(5, layers=2)
    plan, inputs, weights = _plan(template, batch=16)
    before = repr(plan.program)
    batches = [random_batch(template, 16, seed=seed) for seed in range(6)]
    expected = [fast.expectation_values(template.function, x, w, 5) for x, w in batches]
    results: dict[int, torch.Tensor] = {}

    def run(index):
        x, w = batches[index]
        results[index] = fast.expectation_values(template.function, x, w, 5, FastOptions(Strategy.STRUCTURED, 2))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(torch.allclose(results[i], expected[i], atol=1e-12) for i in range(len(batches)))
    assert repr(plan.program) == before
    call = Call(plan.gates, 5, plan.dtype, inputs, weights.reshape(-1), FastOptions())
    execute(plan.program, call)
    assert call.matrices  # the call, not the plan, holds this call's gate matrices


def _counted(function, *args):
    before = FALLBACKS.snapshot()
    function(*args)
    after = FALLBACKS.snapshot()
    return {kind: count - before.get(kind, 0) for kind, count in after.items() if count != before.get(kind, 0)}


TEMPLATES = [qiren_block(3, 2, 2), bottleneck_ansatz(4, 2), qiren_generator_block(), noise_circuit(3)]


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t.name)
def test_the_templates_take_no_fallback(template):
    inputs, weights = random_batch(template, 5, seed=11)
    function = template.function
    weights.requires_grad_()
    assert _counted(lambda: fast.expectation_values(function, inputs, weights, template.n_qubits)) == {}


def test_controlled_rotations_and_multi_rz_vectorise_without_fallback():
    def circuit(inputs, weights):
        qml.Hadamard(0)
        qml.CRX(inputs[..., 0], wires=[0, 1])
        qml.MultiRZ(inputs[..., 1], wires=[0, 1])
        qml.CRY(weights[0], wires=[1, 0])
        qml.ControlledPhaseShift(weights[1], wires=[0, 1])
        return [qml.expval(qml.PauliX(0)), qml.expval(qml.PauliY(1))]

    inputs, weights = torch.rand(4, 2, dtype=torch.float64), torch.rand(2, dtype=torch.float64)
    assert _counted(lambda: fast.expectation_values(circuit, inputs, weights, 2)) == {}
    qnode = qml.QNode(circuit, qml.device("default.qubit", wires=2), interface="torch")
    assert torch.allclose(fast.expectation_values(circuit, inputs, weights, 2), torch.stack(qnode(inputs, weights), -1))


def test_each_fallback_is_counted():
    def expression(inputs, weights):
        qml.RX(2 * inputs[..., 0], wires=0)
        return qml.expval(qml.PauliZ(0))

    def ising_xy(inputs, weights):
        qml.Hadamard(0)
        qml.IsingXY(inputs[..., 0], wires=[0, 1])  # its batched matrix goes through NumPy
        return qml.expval(qml.PauliZ(1))

    def dense_observable(inputs, weights):
        qml.RY(inputs[..., 0], 0)
        return qml.expval(qml.QubitUnitary(np.array([[0, 1], [1, 0]]), wires=0))

    x = torch.rand(3, 1, dtype=torch.float64)
    for _ in range(2):
        counts = _counted(lambda: fast.expectation_values(expression, x, torch.zeros(0), 1))
        assert counts == {Fallback.RERECORDED: 1}
    angles = torch.rand(4, 2, dtype=torch.float64, requires_grad=True)
    assert _counted(lambda: fast.expectation_values(ising_xy, angles, torch.zeros(0), 2))[Fallback.DECOMPOSED] == 1
    counts = _counted(lambda: torch.testing.assert_close(
        fast.expectation_values(dense_observable, x, torch.zeros(0), 1)[:, 0], torch.sin(x[:, 0])))
    assert counts == {Fallback.DENSE_OBSERVABLE: 1}


class NumpyRX(qml.operation.Operation):
    """An RX whose matrix goes through NumPy: no batch of angles that needs a gradient."""

    num_wires = 1
    num_params = 1

    @staticmethod
    def compute_matrix(theta):
        c, s = np.cos(np.asarray(theta) / 2), np.sin(np.asarray(theta) / 2)
        return np.array([[c, -1j * s], [-1j * s, c]])


def test_a_gate_type_that_does_not_vectorise_is_counted_and_still_right():
    def circuit(inputs, weights):
        NumpyRX(weights[0], wires=0)
        return qml.expval(qml.PauliZ(0))

    with torch.no_grad():
        counts = _counted(lambda: torch.testing.assert_close(
            fast.expectation_values(circuit, torch.zeros(2, 1), torch.tensor([0.7]), 1)[:, 0],
            torch.full((2,), float(np.cos(0.7)))))
    assert counts[Fallback.NOT_VECTORISED] == 1 and counts[Fallback.RERECORDED] == 1


def test_final_state_and_basis_probabilities_agree_with_default_qubit():
    template = bottleneck_ansatz(3, layers=2)
    inputs, weights = random_batch(template, 4, seed=2)
    state = fast.final_state(template.function, inputs, weights, 3)

    tape = qml.tape.make_qscript(template.function)(inputs, weights)
    (reference,) = qml.execute([qml.tape.QuantumScript(tape.operations, [qml.state()])], qml.device("default.qubit"))
    assert state.shape == (4, 8) and state.dtype == torch.complex128
    assert torch.allclose(state, reference, atol=1e-10)
    probabilities = fast.basis_probabilities(template.function, inputs, weights, 3)
    assert torch.allclose(probabilities, reference.abs() ** 2, atol=1e-10)
