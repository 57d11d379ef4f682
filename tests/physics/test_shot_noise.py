import math

import pytest
import torch

from qml_imaging.physics.shot_noise import check_transmittance, normalise, shot_noise_counts


def flat(size=8):
    return torch.full((size, size), 1.0 / size**2, dtype=torch.float64)


def test_counts_have_poisson_mean_and_variance_per_pixel():
    phi = normalise(torch.linspace(0.1, 1.0, 64, dtype=torch.float64).reshape(8, 8))
    counts = shot_noise_counts(phi.expand(20000, 8, 8).contiguous(), 500.0, torch.Generator().manual_seed(0))
    rate = 500.0 * phi
    standard_error = (rate / 20000).sqrt()
    assert ((counts.mean(0) - rate).abs() < 5 * standard_error).all()
    assert torch.allclose(counts.var(0), rate, rtol=0.1)


def test_total_counts_average_nbar_and_are_seeded():
    phi = flat().expand(4000, 8, 8).contiguous()
    first = shot_noise_counts(phi, 64.0, torch.Generator().manual_seed(3))
    again = shot_noise_counts(phi, 64.0, torch.Generator().manual_seed(3))
    assert torch.equal(first, again)
    assert first.sum((1, 2)).mean().item() == pytest.approx(64.0, abs=5 * math.sqrt(64 / 4000))


def test_per_image_nbar_scales_each_image():
    phi = flat().expand(2, 8, 8).contiguous()
    counts = shot_noise_counts(phi, torch.tensor([1e-9, 1e6]), torch.Generator().manual_seed(0))
    assert counts[0].sum() == 0 and counts[1].sum() > 9e5


@pytest.mark.parametrize("nbar", [0.0, -5.0, float("nan")])
def test_non_positive_nbar_is_a_clear_error(nbar):
    with pytest.raises(ValueError, match="nbar .* must be finite and > 0"):
        shot_noise_counts(flat(), nbar)


def test_negative_phi_is_a_clear_error():
    phi = flat()
    phi[0, 0], phi[0, 1] = -phi[0, 0], 3 * phi[0, 1]
    with pytest.raises(ValueError, match="must be non-negative .* smallest entry is -0.0156"):
        check_transmittance(phi)


def test_unnormalised_phi_is_a_clear_error():
    with pytest.raises(ValueError, match="must sum to 1 .* found sums up to 1 away"):
        shot_noise_counts(2 * flat(), 100.0)


def test_nan_phi_is_a_clear_error():
    phi = flat()
    phi[1, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        check_transmittance(phi)
