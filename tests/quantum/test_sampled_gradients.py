"""Gradients through sampled backends (case f19): parameter shift over gate angles for batched inputs
and weights, every shifted circuit of a batch in one execution, within three shot-noise standard
errors of the exact (backprop) gradient component by component; SPSA as the cheaper option."""

import math

import numpy as np
import pytest
import torch

from qml_imaging.models.inr import QIREN
from qml_imaging.quantum.angles import angle_form
from qml_imaging.quantum.backends import backend_spec
from qml_imaging.quantum.circuits import qiren_block
from qml_imaging.quantum.factory import make_executor
from qml_imaging.quantum.layer import QuantumLayer
from qml_imaging.quantum.sampled import with_readout_errors
from qml_imaging.training.gradient_noise import gradient_noise

TEMPLATE = qiren_block(2, reuploads=1, sublayers=1)
INPUTS = torch.tensor([[0.3, -0.7], [1.1, 0.4], [-0.5, 0.9]], dtype=torch.float64)
UPSTREAM = torch.tensor([1.0, -0.5], dtype=torch.float64)
SAMPLED = [{"backend": "default.qubit", "shots": 20000, "seed": 3},
           pytest.param("aer_shots", marks=pytest.mark.qiskit)]


def _gradients(spec, weights):
    layer = QuantumLayer(TEMPLATE, None if spec is None else backend_spec(spec)).double()
    with torch.no_grad():
        layer.weights.copy_(weights)
    inputs = INPUTS.clone().requires_grad_(True)
    (layer(inputs) * UPSTREAM).sum().backward()
    return inputs.grad, layer.weights.grad.reshape(-1), layer.gradient_noise


@pytest.mark.parametrize("spec", SAMPLED)
def test_parameter_shift_gradients_are_within_three_standard_errors_of_exact(spec):
    torch.manual_seed(0)
    weights = QuantumLayer(TEMPLATE).weights.detach().double()
    exact_inputs, exact_weights, _ = _gradients(None, weights)
    inputs, weights_grad, noise = _gradients(spec, weights)
    error, input_error = noise.variance.sqrt(), noise.input_variance.sqrt()
    assert error.shape == weights_grad.shape and (error > 0).all()
    assert ((weights_grad - exact_weights).abs() <= 3 * error).all(), (weights_grad - exact_weights) / error
    assert ((inputs - exact_inputs).abs() <= 3 * input_error).all(), (inputs - exact_inputs) / input_error
    assert not torch.allclose(weights_grad, exact_weights, atol=1e-6), "shots cannot give the exact gradient"


@pytest.mark.qiskit
def test_a_batch_and_its_shifted_circuits_are_one_execution():
    executor = make_executor(backend_spec("aer_shots"))
    calls = []
    runner = executor.runner

    def counting(form, sets):
        calls.append(sets.shape)
        return runner(form, sets)

    executor.runner = counting
    layer = QuantumLayer(TEMPLATE, executor).double()
    layer(INPUTS.clone().requires_grad_(True)).sum().backward()
    angles = angle_form(TEMPLATE).n_angles
    assert calls == [(len(INPUTS) * (1 + 2 * angles), angles)]
    with torch.no_grad():
        layer(INPUTS)
    assert calls[1] == (len(INPUTS), angles)


@pytest.mark.qiskit
def test_spsa_runs_two_circuits_per_direction_and_points_along_the_gradient():
    spec = backend_spec({"backend": "qiskit.aer", "seed": 2, "gradient": "spsa",
                         "spsa": {"step": 0.05, "samples": 64}})
    torch.manual_seed(0)
    weights = QuantumLayer(TEMPLATE).weights.detach().double()
    _, exact, _ = _gradients(None, weights)
    _, estimate, noise = _gradients(spec, weights)
    cosine = torch.dot(estimate, exact) / (estimate.norm() * exact.norm())
    assert cosine > 0.85
    assert torch.all(noise.variance == 0), "exact Aer (shots: null) has no shot noise"


@pytest.mark.qiskit
def test_qiren_first_training_step_on_aer_shots_matches_the_exact_gradient():
    """The quantum weights' gradient of a QIREN's first step: the estimate given the upstream gradient it
    received lies within three standard errors of the exact vector-Jacobian product, component by component."""
    torch.manual_seed(1)
    model = QIREN(2, 1, n_qubits=2, hybrid_layers=1, reuploads=1, sublayers=1,
                  executor=backend_spec("aer_shots")).double()
    layer = model.quantum_layers()[0]
    seen = {}
    layer.register_forward_hook(lambda module, args, output: seen.update(inputs=args[0].detach(), output=output))
    coordinates = torch.linspace(-1, 1, 8, dtype=torch.float64)
    coordinates = torch.stack(torch.meshgrid(coordinates, coordinates, indexing="ij"), -1).reshape(-1, 2)
    target = torch.sin(math.pi * coordinates[:, :1])
    model.train()
    seen_grad = {}

    def keep(grad):
        seen_grad["upstream"] = grad

    output = model(coordinates)
    seen["output"].register_hook(keep)
    torch.nn.functional.mse_loss(output, target).backward()
    exact = QuantumLayer(TEMPLATE).double()
    with torch.no_grad():
        exact.weights.copy_(layer.weights)
    (exact(seen["inputs"]) * seen_grad["upstream"]).sum().backward()
    error = layer.gradient_noise.variance.sqrt()
    difference = (layer.weights.grad.reshape(-1) - exact.weights.grad.reshape(-1)).abs()
    assert (difference <= 3 * error).all(), np.round((difference / error).numpy(), 2)


@pytest.mark.qiskit
def test_epoch_records_carry_the_gradient_standard_error_of_each_sampled_layer():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), QuantumLayer(TEMPLATE, backend_spec("aer_shots"))).double()
    assert gradient_noise(model) == {}
    model(INPUTS).sum().backward()
    record = gradient_noise(model)
    assert list(record) == ["grad_se/1"] and 0 < record["grad_se/1"] < 0.1
    assert gradient_noise(QuantumLayer(TEMPLATE)) == {}, "exact backends report none"


def test_readout_errors_act_on_each_qubits_recorded_bit():
    flip = np.array([[0.9, 0.1], [0.2, 0.8]])  # A[true, recorded]
    np.testing.assert_allclose(with_readout_errors(np.array([[1.0, 0, 0, 0]]), {0: flip}), [[0.9, 0.1, 0, 0]])
    np.testing.assert_allclose(with_readout_errors(np.array([[0, 0, 1.0, 0]]), {1: flip}), [[0.2, 0, 0.8, 0]])
    both = with_readout_errors(np.array([[0.5, 0, 0, 0.5]]), {0: flip, 1: flip})
    np.testing.assert_allclose(both.sum(), 1.0)
    np.testing.assert_allclose(both[0, 3], 0.5 * 0.9 * 0.9 * 0 + 0.5 * 0.8 * 0.8 + 0.5 * 0.1 * 0.1)
