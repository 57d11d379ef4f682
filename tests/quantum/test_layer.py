import math

import pytest
import torch
from torch import nn

from qml_imaging.quantum.circuits import (
    bottleneck_ansatz,
    qiren_block,
    qiren_redundant_weights,
)
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


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool, torch.complex64])
def test_integer_boolean_and_complex_inputs_are_refused_not_cast(dtype):
    layer = QuantumLayer(qiren_block(3, 1, 1))
    with pytest.raises(TypeError, match=f"expects a real floating-point tensor.*got {dtype}"):
        layer(torch.ones(2, 3).to(dtype))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs_run_in_float32_and_return_their_dtype(dtype):
    torch.manual_seed(0)
    layer = QuantumLayer(qiren_block(3, 2, 2))
    inputs = torch.rand(16, 3) * 2 - 1
    with torch.no_grad():
        reference = layer(inputs.to(dtype).double())
        outputs = layer(inputs.to(dtype))
    assert outputs.dtype == dtype
    assert (outputs.double() - reference).abs().max() < 1e-2


def test_cpu_autocast_through_qiren_and_the_quantum_diffusion_unet_matches_float32():
    from qml_imaging.models.diffusion_unet import DiffusionUNet
    from qml_imaging.models.inr import QIREN

    torch.manual_seed(0)
    qiren = QIREN(2, 1, n_qubits=3, hybrid_layers=2, reuploads=1, sublayers=2).eval()
    unet = DiffusionUNet(1, (8, 16, 16), bottleneck="quantum", n_qubits=3, quantum_layers=1).eval()
    coordinates, images, steps = torch.rand(32, 2) * 2 - 1, torch.randn(2, 1, 28, 28), torch.tensor([3, 700])
    with torch.no_grad():
        expected = qiren(coordinates), unet(images, steps)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = qiren(coordinates), unet(images, steps)
    for got, want in zip(mixed, expected):
        assert torch.isfinite(got).all()
        assert (got.float() - want).abs().max() < 0.05 * want.abs().max() + 0.02
    with torch.autocast("cpu", dtype=torch.bfloat16):
        qiren.train()(coordinates).float().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in qiren.parameters() if p.grad is not None)


def test_an_empty_batch_gives_an_empty_output():
    layer = QuantumLayer(qiren_block(3, 1, 1))
    assert layer(torch.zeros(0, 3)).shape == (0, 3)


def test_a_simulation_larger_than_free_memory_is_refused_before_it_starts(monkeypatch):
    from qml_imaging.quantum.fast import memory

    monkeypatch.setattr(memory, "available_memory", lambda device: 2**20)
    layer = QuantumLayer(qiren_block(6, 1, 1))
    with pytest.raises(MemoryError, match=r"6 qubits for a batch of 512 needs about .* GiB .* has 0.0 GiB free"):
        layer(torch.zeros(512, 6))
    with torch.no_grad():
        assert layer(torch.zeros(1, 6)).shape == (1, 6)
