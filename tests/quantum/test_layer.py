import math

import pytest
import torch
from torch import nn

from qml_imaging.quantum.circuits import bottleneck_ansatz, qiren_block, qiren_redundant_weights
from qml_imaging.quantum.layer import QuantumLayer


def test_layer_maps_batches_and_extra_leading_dimensions():
    layer = QuantumLayer(qiren_block(4))
    assert layer(torch.rand(6, 4)).shape == (6, 4)
    assert layer(torch.rand(2, 3, 4)).shape == (2, 3, 4)
    assert layer.weights.shape == (3, 2, 4, 3)
    assert layer.weights.abs().max() <= math.pi


def weight_gradients(template, seed=0):
    torch.manual_seed(seed)
    layer = QuantumLayer(template).double()
    inputs = torch.rand(16, layer.n_qubits, dtype=torch.float64) * 2 - 1
    projection = torch.randn(layer.n_outputs, dtype=torch.float64)
    (layer(inputs) @ projection).sum().backward()
    return layer.weights.grad.abs()


def test_every_bottleneck_weight_gets_a_nonzero_gradient():
    """The diffusion paper's circuit had weights that could not change <Z>; here none may be dead."""
    assert (weight_gradients(bottleneck_ansatz(6, layers=3)) > 1e-9).all()


def test_qiren_weights_are_live_except_the_documented_redundant_ones():
    template = qiren_block(4, reuploads=2, sublayers=2)
    gradients = weight_gradients(template)
    redundant = torch.zeros_like(gradients, dtype=torch.bool)
    for index in qiren_redundant_weights(template.weight_shape):
        redundant[index] = True
    assert (gradients[~redundant] > 1e-9).all()
    assert (gradients[redundant] < 1e-12).all()
    assert int(redundant.sum()) == 2 * template.n_qubits


def test_training_changes_the_circuit_weights_and_lowers_the_loss():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(2, 3), QuantumLayer(bottleneck_ansatz(3, layers=2)), nn.Linear(3, 1))
    x = torch.rand(64, 2) * 2 - 1
    y = torch.sin(2 * x[:, :1]) * x[:, 1:]
    before = model[1].weights.detach().clone()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(60):
        loss = nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert not torch.allclose(model[1].weights.detach(), before)


def test_wrong_feature_count_and_nan_inputs_are_clear_errors():
    layer = QuantumLayer(qiren_block(4))
    with pytest.raises(ValueError, match=r"expects inputs of shape \(B, 4\), got \(5, 3\)"):
        layer(torch.rand(5, 3))
    with pytest.raises(ValueError, match=r"expects inputs of shape \(B, 4\), got \(4,\)"):
        layer(torch.rand(4))
    bad = torch.rand(2, 4)
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match="non-finite inputs"):
        layer(bad)


def test_too_many_qubits_for_the_fast_backend():
    with pytest.raises(ValueError, match="needs 21 qubits but backend 'fast' has 20"):
        QuantumLayer(qiren_block(21))


def test_template_sizes_are_checked():
    with pytest.raises(ValueError, match="n_qubits must be a positive integer, got 0"):
        qiren_block(0)
    with pytest.raises(ValueError, match="entangler must be 'chain' or 'ring'"):
        bottleneck_ansatz(3, entangler="star")
