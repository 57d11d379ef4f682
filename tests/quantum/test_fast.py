"""The fast simulator executes the templates' own PennyLane tapes: it must agree with default.qubit."""

import math

import pennylane as qml
import pytest
import torch

from qml_imaging.quantum import fast
from qml_imaging.quantum.backends import MAX_SIMULATED_QUBITS
from qml_imaging.quantum.circuits import bottleneck_ansatz, noise_circuit
from tests.quantum.conftest import random_batch, reference_expvals


@pytest.mark.parametrize("batch", [1, 7, 64])  # 64 >= 2**n: the fused-unitary path
def test_fast_matches_default_qubit_on_every_template(template, batch):
    inputs, weights = random_batch(template, batch)
    ours = fast.expectation_values(template.function, inputs, weights, template.n_qubits)
    assert ours.shape == (batch, template.n_outputs)
    assert torch.allclose(ours, reference_expvals(template, inputs, weights), atol=1e-10)


def test_fast_gradients_match_pennylane_backprop(template):
    inputs, weights = random_batch(template, 33, seed=1)
    grads = []
    for run in (
        lambda x, w: fast.expectation_values(template.function, x, w, template.n_qubits),
        lambda x, w: reference_expvals(template, x, w),
    ):
        x, w = inputs.clone().requires_grad_(), weights.clone().requires_grad_()
        projection = torch.linspace(-1, 1, template.n_outputs, dtype=x.dtype)
        (run(x, w) @ projection).sum().backward()
        grads.append((x.grad, w.grad))
    assert torch.allclose(grads[0][0], grads[1][0], atol=1e-10)
    assert torch.allclose(grads[0][1], grads[1][1], atol=1e-10)


def test_single_precision_agrees_to_1e_5(template):
    inputs, weights = random_batch(template, 50, dtype=torch.float32)
    ours = fast.expectation_values(template.function, inputs, weights, template.n_qubits)
    reference = reference_expvals(template, inputs.double(), weights.double())
    assert ours.dtype == torch.float32
    assert torch.allclose(ours.double(), reference, atol=1e-5)


def generic_circuit(inputs, weights):
    """Gates and observables beyond the templates: dense controlled, permutation, 3-qubit, rotated bases."""
    qml.Hadamard(wires=0)
    qml.RX(inputs[..., 0], wires=1)
    qml.CRX(weights[0], wires=[0, 2])
    qml.Toffoli(wires=[0, 1, 2])
    qml.SWAP(wires=[1, 2])
    qml.IsingXX(inputs[..., 1], wires=[0, 2])
    qml.CRY(inputs[..., 2], wires=[2, 0])
    qml.PhaseShift(weights[1], wires=1)
    qml.MultiRZ(inputs[..., 0], wires=[0, 1, 2])
    qml.CNOT(wires=[2, 0])
    return [
        qml.expval(qml.PauliX(0)),
        qml.expval(qml.PauliY(1)),
        qml.expval(qml.PauliZ(0) @ qml.PauliZ(2)),
        qml.expval(qml.PauliX(1) @ qml.PauliY(2)),
    ]


@pytest.mark.parametrize("batch", [1, 5, 16])
def test_generic_gates_and_observables_match_default_qubit(batch):
    generator = torch.Generator().manual_seed(3)
    inputs = torch.rand(batch, 3, generator=generator, dtype=torch.float64) * math.pi
    weights = torch.rand(2, generator=generator, dtype=torch.float64) * math.pi
    ours = fast.expectation_values(generic_circuit, inputs, weights, 3)
    qnode = qml.QNode(generic_circuit, qml.device("default.qubit", wires=3), interface="torch")
    assert torch.allclose(ours, torch.stack(qnode(inputs, weights), dim=-1), atol=1e-10)


def test_noise_circuit_has_zero_z_expectations():
    template = noise_circuit(4)
    out = fast.expectation_values(template.function, torch.zeros(3, 4), torch.zeros(0), 4)
    assert torch.allclose(out, torch.zeros(3, 4), atol=1e-7)


def test_too_many_qubits_is_refused():
    template = noise_circuit(MAX_SIMULATED_QUBITS + 1)
    with pytest.raises(ValueError, match="at most 20 qubits, got 21"):
        fast.expectation_values(template.function, torch.zeros(1, 21), torch.zeros(0), 21)


def test_sampling_measurements_are_refused_by_name():
    def sampled(inputs, weights):
        qml.Hadamard(wires=0)
        return qml.sample(wires=[0])

    with pytest.raises(NotImplementedError, match="expval, var and probs of a state vector, not SampleMP"):
        fast.expectation_values(sampled, torch.zeros(2, 1), torch.zeros(0), 1)


def test_operations_without_a_matrix_are_refused_by_name():
    def channel(inputs, weights):
        qml.DepolarizingChannel(0.1, wires=0)
        return qml.expval(qml.PauliZ(0))

    with pytest.raises(NotImplementedError, match="cannot run DepolarizingChannel on wires \\[0\\]"):
        fast.expectation_values(channel, torch.zeros(2, 1), torch.zeros(0), 1)


def _agree_with_default_qubit(circuit, n_qubits, inputs, weights, atol=1e-10):
    ours = fast.expectation_values(circuit, inputs, weights, n_qubits)
    qnode = qml.QNode(circuit, qml.device("default.qubit", wires=n_qubits), interface="torch")
    outputs = qnode(inputs, weights)
    reference = torch.cat([torch.as_tensor(o).reshape(inputs.shape[0], -1) for o in outputs], dim=-1)
    assert ours.shape == reference.shape
    assert torch.allclose(ours, reference, atol=atol)
    return ours


def test_hermitian_observable_and_qubit_unitary_gate_run():  # q01
    import numpy as np

    hermitian = np.array([[0.5, 0.2 - 0.1j], [0.2 + 0.1j, -1.0]])
    unitary = np.array([[np.cos(0.4), -np.sin(0.4)], [np.sin(0.4), np.cos(0.4)]])

    def circuit(inputs, weights):
        qml.RY(inputs[..., 0], wires=0)
        qml.QubitUnitary(unitary, wires=0)
        qml.RX(weights[0], wires=1)
        return [qml.expval(qml.Hermitian(hermitian, wires=0)), qml.expval(qml.PauliZ(1))]

    inputs = torch.tensor([[0.3, 0.0], [1.1, 0.0]], dtype=torch.float64)
    _agree_with_default_qubit(circuit, 2, inputs, torch.tensor([0.7], dtype=torch.float64))


def test_gates_mixing_weights_inputs_and_constants_run():  # q02
    def circuit(inputs, weights):
        qml.Rot(weights[0], inputs[..., 0], weights[1], wires=0)
        qml.Rot(inputs[..., 1], weights[1], inputs[..., 0], wires=1)
        qml.CRX(2.0 * weights[0] - inputs[..., 1], wires=[0, 1])
        return [qml.expval(qml.PauliX(0)), qml.var(qml.PauliY(1)), qml.probs(wires=[1, 0])]

    inputs = torch.tensor([[0.3, -0.7], [1.1, 0.4], [-2.0, 0.9]], dtype=torch.float64)
    ours = _agree_with_default_qubit(circuit, 2, inputs, torch.tensor([0.4, -1.3], dtype=torch.float64))
    assert ours.shape == (3, 6)  # expval, var, 4 probabilities: fewer values than qubits are fine too


def test_compute_precision_follows_the_caller():
    template = bottleneck_ansatz(3, layers=2)
    inputs, weights = random_batch(template, 5)
    exact = fast.expectation_values(template.function, inputs, weights, 3)
    assert exact.dtype == torch.float64  # complex128 inside: agrees with default.qubit to 1e-10 above
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        out = fast.expectation_values(template.function, inputs.to(dtype), weights.float(), 3)
        assert out.dtype == dtype
        tolerance = 1e-5 if dtype == torch.float32 else 2e-2
        assert torch.allclose(out.double(), fast.expectation_values(
            template.function, inputs.to(dtype).double(), weights, 3), atol=tolerance)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = fast.expectation_values(template.function, inputs.float(), weights.float(), 3)
    assert out.dtype == torch.float32 and torch.allclose(out.double(), exact, atol=1e-5)


def test_unsupported_wire_labels_are_named():
    def circuit(inputs, weights):
        qml.RX(inputs[..., 0], wires="a")
        return qml.expval(qml.PauliZ("a"))

    with pytest.raises(ValueError, match="RX acts on wire 'a'"):
        fast.expectation_values(circuit, torch.zeros(2, 1), torch.zeros(0), 1)


def test_observable_coefficients_taken_from_weights_are_differentiated():
    def circuit(inputs, weights):
        qml.RY(inputs[..., 0], wires=0)
        qml.CNOT(wires=[0, 1])
        qml.RX(weights[0], wires=1)
        hamiltonian = qml.Hamiltonian([weights[1], 0.5, weights[2]],
                                      [qml.PauliZ(0) @ qml.PauliZ(1), qml.Identity(0), qml.PauliX(1)])
        return [qml.expval(hamiltonian), qml.var(qml.PauliZ(0) @ qml.PauliX(1))]

    inputs = torch.tensor([[0.3], [1.1], [-2.0]], dtype=torch.float64)
    weights = torch.tensor([0.4, -1.3, 0.8], dtype=torch.float64)
    gradients = []
    for run in (
        lambda w: fast.expectation_values(circuit, inputs, w, 2),
        lambda w: torch.stack(qml.QNode(circuit, qml.device("default.qubit", wires=2), interface="torch",
                                       diff_method="backprop")(inputs, w), -1),
    ):
        w = weights.clone().requires_grad_()
        outputs = run(w)
        (outputs @ torch.tensor([1.0, 0.3], dtype=torch.float64)).sum().backward()
        gradients.append((outputs.detach(), w.grad))
    assert torch.allclose(gradients[0][0], gradients[1][0], atol=1e-10)
    assert torch.allclose(gradients[0][1], gradients[1][1], atol=1e-10)


def _gradients_agree(circuit, n_qubits, inputs, weights, reference_circuit=None):
    results = []
    for reference in (False, True):
        x, w = inputs.clone().requires_grad_(), weights.clone().requires_grad_()
        if reference:
            qnode = qml.QNode(reference_circuit or circuit, qml.device("default.qubit", wires=n_qubits),
                              interface="torch", diff_method="backprop")
            outputs = torch.stack(qnode(x, w), dim=-1)
        else:
            outputs = fast.expectation_values(circuit, x, w, n_qubits)
        outputs.sum().backward()
        results.append((outputs.detach(), x.grad, w.grad))
    for ours, reference in zip(*results, strict=True):
        assert torch.allclose(ours, reference, atol=1e-10)


def test_adjoints_and_gates_whose_matrices_go_through_numpy_run():
    """A new user's circuits: adjoint gates (PennyLane gives conjugated transposed views) beside other
    one-qubit gates, and IsingXY, whose batched compute_matrix fails on angles that need a gradient."""
    def adjoints(inputs, weights):
        qml.RY(inputs[..., 0], 0)
        qml.CNOT([0, 1])
        qml.adjoint(qml.Hadamard(0))
        qml.Hadamard(1)
        qml.adjoint(qml.RZ(weights[0], 0))
        qml.RX(weights[1], 1)
        qml.CNOT([1, 0])
        qml.adjoint(qml.S(1))
        return [qml.expval(qml.PauliY(0)), qml.expval(qml.PauliX(1))]

    def ising_xy(inputs, weights, by_hand=False):
        qml.RY(inputs[..., 0], 0)
        qml.IsingXY(weights[0], wires=[0, 1])
        if by_hand:  # default.qubit fails on IsingXY of a batch that needs a gradient, as PennyLane's matrix does
            qml.IsingXY.compute_decomposition(inputs[..., 1], wires=[1, 0])  # queues its gates
        else:
            qml.IsingXY(inputs[..., 1], wires=[1, 0])
        return [qml.expval(qml.PauliZ(1)), qml.expval(qml.PauliX(0))]

    generator = torch.Generator().manual_seed(5)
    inputs = torch.rand(6, 2, generator=generator, dtype=torch.float64) * 3
    weights = torch.rand(2, generator=generator, dtype=torch.float64) * 3
    _gradients_agree(adjoints, 2, inputs, weights)
    _gradients_agree(ising_xy, 2, inputs, weights, lambda x, w: ising_xy(x, w, by_hand=True))


def test_non_hermitian_observables_and_empty_readouts_are_refused():
    def unitary_observable(inputs, weights):
        qml.RY(inputs[..., 0], 0)
        return qml.expval(qml.QubitUnitary(torch.tensor([[0, 1], [1j, 0]]), wires=0))

    def complex_coefficient(inputs, weights):
        qml.RY(inputs[..., 0], 0)
        return qml.expval(qml.s_prod(1j, qml.PauliZ(0)))

    def nothing(inputs, weights):
        qml.RY(inputs[..., 0], 0)
        return []

    def mid_measurement(inputs, weights):
        qml.RY(inputs[..., 0], 0)
        qml.measure(0)
        return qml.expval(qml.PauliZ(0))

    with pytest.raises(ValueError, match="is not Hermitian, so its expectation value is not a real measurement"):
        fast.expectation_values(unitary_observable, torch.zeros(2, 1), torch.zeros(0), 1)
    with pytest.raises(ValueError, match="complex coefficient 1j on Z\\(0\\).*not Hermitian"):
        fast.expectation_values(complex_coefficient, torch.zeros(2, 1), torch.zeros(0), 1)
    with pytest.raises(ValueError, match="the circuit returns no measurement"):
        fast.expectation_values(nothing, torch.zeros(2, 1), torch.zeros(0), 1)
    with pytest.raises(NotImplementedError, match="measures wire \\[0\\] mid-circuit \\(qml.measure\\)"):
        fast.expectation_values(mid_measurement, torch.zeros(2, 1), torch.zeros(0), 1)
