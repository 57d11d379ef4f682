import pytest
import torch

from qml_imaging.diffusion.ddpm import EpsilonObjective
from qml_imaging.diffusion.schedules import cosine_schedule
from qml_imaging.models.diffusion_unet import (
    ClassicalBottleneck,
    DiffusionUNet,
    QuantumBottleneck,
    make_bottleneck,
)
from qml_imaging.models.inr import parameter_count


@pytest.mark.parametrize("channels", [1, 3])
def test_unet_maps_images_to_noise_estimates_of_the_same_shape(channels):
    model = DiffusionUNet(in_channels=channels, channels=(16, 32, 64))
    x = torch.randn(2, channels, 28, 28)
    assert model(x, torch.tensor([0, 999])).shape == x.shape


def test_classical_control_has_the_quantum_blocks_parameter_count_within_five_percent():
    for channels, qubits, layers in ((128, 8, 3), (64, 4, 2), (128, 12, 3)):
        quantum = parameter_count(QuantumBottleneck(channels, qubits, layers))
        classical = parameter_count(make_bottleneck("classical", channels, qubits, layers))
        assert abs(classical - quantum) <= 0.05 * quantum
    assert parameter_count(QuantumBottleneck(128, 8, 3)) == 1032 + 48 + 1152


def test_training_moves_the_quantum_bottleneck_weights_with_nonzero_gradients():
    torch.manual_seed(0)
    model = DiffusionUNet(channels=(16, 32, 64), bottleneck="quantum", n_qubits=4, quantum_layers=2)
    circuit_weights = model.bottleneck.core.weights
    before = circuit_weights.detach().clone()
    objective = EpsilonObjective(cosine_schedule(100))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    images = torch.rand(8, 1, 28, 28) * 2 - 1
    for _ in range(3):
        optimizer.zero_grad()
        objective(model, images).backward()
        assert circuit_weights.grad is not None and circuit_weights.grad.abs().min() > 0
        optimizer.step()
    assert (circuit_weights.detach() - before).abs().min() > 0


def test_bad_inputs_and_settings_are_clear_errors():
    model = DiffusionUNet(channels=(16, 32, 64))
    with pytest.raises(ValueError, match="H and W divisible by 4, got \\(2, 1, 30, 30\\)"):
        model(torch.zeros(2, 1, 30, 30), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="one timestep per image, shape \\(2,\\), got \\(3,\\)"):
        model(torch.zeros(2, 1, 28, 28), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="unknown bottleneck 'quantun'"):
        make_bottleneck("quantun", 64)
    with pytest.raises(ValueError, match="no classical bottleneck width matches 3 parameters"):
        ClassicalBottleneck.matching(64, 3)
