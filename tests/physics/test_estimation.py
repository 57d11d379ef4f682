import pytest
import torch

from qml_imaging.physics.estimation import error_statistics, tangent_split
from qml_imaging.physics.parametric import get_family


def test_error_statistics_split_mse_into_bias_and_variance():
    truth = torch.zeros(2, 2, dtype=torch.float64)
    estimates = torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[3.0, 0.0], [0.0, 0.0]]], dtype=torch.float64)
    stats = error_statistics(estimates, truth)
    assert stats["bias2"].item() == pytest.approx(4.0)
    assert stats["variance"].item() == pytest.approx(1.0)
    assert stats["mse"].item() == pytest.approx(5.0)


def test_tangent_split_puts_parameter_errors_along_the_family_and_white_noise_off_it():
    family = get_family("sinusoid")
    theta = torch.tensor([2.0, 1.0, 1.0], dtype=torch.float64)
    truth = family.phi(theta, 16)[0]
    jacobian = family.jacobian(theta, 16)[0]
    generator = torch.Generator().manual_seed(0)
    perturbed = theta + 1e-4 * torch.randn(500, 3, generator=generator, dtype=torch.float64)
    along = tangent_split(family.phi(perturbed, 16), truth, jacobian)
    assert along["orthogonal"] < 1e-3 * along["tangent"]
    noise = truth + 1e-3 * torch.randn(500, 16, 16, generator=generator, dtype=torch.float64)
    split = tangent_split(noise, truth, jacobian)
    total = split["tangent"] + split["orthogonal"]
    assert total == pytest.approx(error_statistics(noise, truth)["mse"])
    assert split["tangent"] / total == pytest.approx(3 / 256, rel=0.15)
