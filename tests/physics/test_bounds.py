import pytest
import torch

from qml_imaging.physics.bounds import (
    fisher_information, heisenberg_total, pixel_bound, sql_pixel, sql_total, total_bound,
)
from qml_imaging.physics.parametric import get_family
from qml_imaging.physics.shot_noise import shot_noise_counts


def ramp_family(theta: float, pixels: int = 16):
    """phi_k = (1 + theta c_k) / K with sum c = 0: J = c / K, F = nbar/K sum c^2 / (1 + theta c) in closed form."""
    c = torch.linspace(-1.0, 1.0, pixels, dtype=torch.float64)
    phi = ((1 + theta * c) / pixels).unsqueeze(0)
    jacobian = (c / pixels).reshape(1, pixels, 1)
    return c, phi, jacobian


def family_total_bound(family, theta, size, nbar):
    """Total QCRB ``(B,)`` of ``family`` at ``theta`` from its image and Jacobian."""
    return total_bound(family.phi(theta, size).flatten(1), family.jacobian(theta, size), nbar)


def test_one_parameter_fisher_information_has_its_closed_form():
    c, phi, jacobian = ramp_family(0.3)
    nbar = 250.0
    expected = nbar / 16 * (c**2 / (1 + 0.3 * c)).sum()
    assert fisher_information(phi, jacobian, nbar)[0, 0, 0].item() == pytest.approx(expected.item(), rel=1e-12)
    assert total_bound(phi, jacobian, nbar).item() == pytest.approx(((c / 16) ** 2).sum().item() / expected.item(), rel=1e-12)


def test_fisher_information_is_the_covariance_of_the_score():
    family = get_family("sinusoid")
    theta = torch.tensor([1.5, -0.5, 2.0], dtype=torch.float64)
    nbar, size = 300.0, 8
    phi = family.phi(theta, size)
    jacobian = family.jacobian(theta, size)[0]
    counts = shot_noise_counts(phi.expand(40000, size, size).contiguous(), nbar, torch.Generator().manual_seed(0))
    score = (counts.flatten(1) / phi.flatten() - nbar) @ jacobian
    empirical = torch.cov(score.T)
    exact = fisher_information(phi.flatten(1), family.jacobian(theta, size), nbar)[0]
    assert score.mean(0).abs().max() < 5 * exact.diagonal().sqrt().max() / 200
    assert torch.allclose(empirical, exact, rtol=0.05, atol=0.02 * exact.abs().max().item())


def test_bounds_scale_as_one_over_nbar_and_sit_below_the_sql():
    family = get_family("sinusoid")
    theta = torch.tensor([2.0, 1.0, 1.0])
    low, high = (family_total_bound(family, theta, 32, n).item() for n in (100.0, 1000.0))
    assert low / high == pytest.approx(10.0, rel=1e-10)
    assert high < sql_total(1000.0).item() / 100


def test_pixel_bound_sums_to_the_total_and_is_nonnegative():
    family = get_family("radial_linear")
    theta = family.sample(3, torch.Generator().manual_seed(0))
    phi, jacobian = family.phi(theta, 16).flatten(1), family.jacobian(theta, 16)
    pixels = pixel_bound(phi, jacobian, 500.0)
    assert (pixels >= -1e-18).all()
    assert torch.allclose(pixels.sum(1), total_bound(phi, jacobian, 500.0))


def test_sql_and_heisenberg_limits():
    phi = torch.full((4, 4), 1 / 16, dtype=torch.float64)
    assert sql_pixel(phi, 100.0).sum().item() == pytest.approx(sql_total(100.0).item())
    assert heisenberg_total(100.0).item() == pytest.approx(1e-4)


def test_bad_inputs_are_clear_errors():
    _, phi, jacobian = ramp_family(0.0)
    with pytest.raises(ValueError, match="nbar .* must be finite and > 0, got 0"):
        fisher_information(phi, jacobian, 0.0)
    with pytest.raises(ValueError, match="must sum to 1"):
        fisher_information(2 * phi, jacobian, 10.0)
    with pytest.raises(ValueError, match=r"expected phi \(B, K\) and jacobian \(B, K, P\)"):
        fisher_information(phi, jacobian[:, :-1], 10.0)
