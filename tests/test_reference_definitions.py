"""Definitions the toolkit shares with a reference library or a published formula equal it on reference inputs.

One test per public function documented as a published formula. The reference is computed here by
another library (scikit-image, scikit-learn, SciPy, torch.autograd) or written out from the paper,
never by calling the toolkit again. Where a function deliberately differs, its docstring says how.
"""

import math

import numpy as np
import pytest
import torch

from qml_imaging.diffusion.schedules import cosine_schedule, linear_schedule
from qml_imaging.physics.bounds import fisher_information, total_bound
from qml_imaging.physics.hbt import baseline_from_singles, correct_background, three_level_g2
from qml_imaging.physics.microscopy import fit_gaussian, g2_image
from qml_imaging.training.losses import ssim
from qml_imaging.training.metrics import mape_percent, psnr, r2


@pytest.fixture
def images():
    generator = torch.Generator().manual_seed(0)
    clean = torch.rand(1, 1, 32, 40, generator=generator, dtype=torch.float64)
    noisy = (clean + 0.1 * torch.randn(1, 1, 32, 40, generator=generator, dtype=torch.float64)).clamp(0, 1)
    return clean, noisy


def test_psnr_equals_scikit_image(images):
    from skimage.metrics import peak_signal_noise_ratio

    clean, noisy = images
    for data_range in (1.0, 2.0):
        reference = peak_signal_noise_ratio(clean.numpy(), noisy.numpy(), data_range=data_range)
        assert psnr(noisy, clean, data_range=data_range) == pytest.approx(reference, rel=1e-6)  # torchmetrics: float32


def test_ssim_equals_scikit_image_up_to_border_handling(images):
    """scikit-image with Wang et al.'s settings (Gaussian sigma 1.5, population covariances); the two libraries
    treat the 5-pixel border differently (documented in :func:`ssim`), which moves the mean by < 1e-3."""
    from skimage.metrics import structural_similarity

    clean, noisy = images
    reference = structural_similarity(clean[0, 0].numpy(), noisy[0, 0].numpy(), data_range=1.0, gaussian_weights=True,
                                      sigma=1.5, use_sample_covariance=False, win_size=11)
    assert float(ssim(noisy, clean)) == pytest.approx(reference, abs=1e-3)
    assert float(ssim(clean, clean)) == pytest.approx(1.0, abs=1e-12)


def test_r2_and_mape_equal_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn comes with the test extras (medmnist)")
    mean_absolute_percentage_error, r2_score = metrics.mean_absolute_percentage_error, metrics.r2_score

    generator = torch.Generator().manual_seed(1)
    target = torch.rand(200, generator=generator, dtype=torch.float64) + 0.05
    prediction = target + 0.1 * torch.randn(200, generator=generator, dtype=torch.float64)
    assert r2(prediction, target) == pytest.approx(r2_score(target.numpy(), prediction.numpy()), rel=1e-9)
    assert mape_percent(prediction, target, floor=0.0) == pytest.approx(  # torchmetrics sums in float32
        100 * mean_absolute_percentage_error(target.numpy(), prediction.numpy()), rel=1e-6)
    kept = target > 0.5  # entries at or below the floor are left out (the documented difference)
    assert mape_percent(prediction, target, floor=0.5) == pytest.approx(
        100 * mean_absolute_percentage_error(target[kept].numpy(), prediction[kept].numpy()), rel=1e-6)


def _nichol_dhariwal_betas(steps, s=0.008, max_beta=0.999):
    """Nichol & Dhariwal (2021), eq. 17, as diffusers' ``betas_for_alpha_bar(alpha_transform_type="cosine")``
    writes it: beta_i = min(1 - abar((i + 1) / T) / abar(i / T), max_beta),
    abar(t) = cos^2((t + s) / (1 + s) pi / 2)."""
    def abar(t):
        return math.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    return np.array([min(1 - abar((i + 1) / steps) / abar(i / steps), max_beta) for i in range(steps)])


@pytest.mark.parametrize("steps", [10, 100, 1000])
def test_the_cosine_schedule_equals_the_published_definition(steps):
    betas = cosine_schedule(steps).betas.numpy()
    assert np.allclose(betas, _nichol_dhariwal_betas(steps), rtol=1e-12, atol=1e-8)  # our lower clip is 1e-8


def test_the_linear_schedule_is_ddpms_at_1000_steps_and_scaled_below():
    """Ho et al. (2020): betas linear from 1e-4 to 0.02 over T = 1000 (diffusers' ``linear``). For other T the
    toolkit scales both ends by 1000 / T (improved-diffusion's ``get_named_beta_schedule``), as documented."""
    assert np.allclose(linear_schedule(1000).betas.numpy(), np.linspace(1e-4, 0.02, 1000), rtol=1e-12)
    assert np.allclose(linear_schedule(100).betas.numpy(), np.linspace(1e-3, 0.2, 100), rtol=1e-12)


def test_poisson_fisher_equals_the_expected_hessian_of_the_poisson_log_likelihood():
    """F = E[-d^2 log L / dtheta^2] of counts n_k ~ Poisson(nbar phi_k(theta)), computed by autograd at n = E[n]."""
    generator = torch.Generator().manual_seed(2)
    phi0 = torch.rand(12, generator=generator, dtype=torch.float64) + 0.1
    phi0 = phi0 / phi0.sum()
    jacobian = torch.randn(12, 3, generator=generator, dtype=torch.float64) * 0.01
    jacobian = jacobian - jacobian.mean(0)  # sum(phi) stays 1
    nbar = 250.0
    counts = nbar * phi0

    def negative_log_likelihood(theta):
        rate = nbar * (phi0 + jacobian @ theta)
        return -(counts * torch.log(rate) - rate - torch.lgamma(counts + 1)).sum()

    reference = torch.autograd.functional.hessian(negative_log_likelihood, torch.zeros(3, dtype=torch.float64))
    fisher = fisher_information(phi0[None], jacobian[None], nbar)[0]
    assert torch.allclose(fisher, reference, rtol=1e-10)
    assert float(total_bound(phi0[None], jacobian[None], nbar)[0]) == pytest.approx(
        float(torch.trace(jacobian @ torch.linalg.inv(reference) @ jacobian.T)), rel=1e-9)


def test_the_fitted_fwhm_equals_scipys_peak_width_at_half_maximum():
    from scipy.signal import peak_widths

    positions = np.linspace(-1000, 1000, 4001)  # 0.5 nm steps
    sigma = 127.4
    profile = 3.0 * np.exp(-0.5 * ((positions - 40.0) / sigma) ** 2)
    width_samples = peak_widths(profile, [int(np.argmax(profile))], rel_height=0.5)[0][0]
    reference = width_samples * (positions[1] - positions[0])
    fit = fit_gaussian(positions, profile, with_offset=False)
    assert fit.fwhm == pytest.approx(reference, rel=1e-4)
    assert fit.fwhm == pytest.approx(2 * math.sqrt(2 * math.log(2)) * sigma, rel=1e-6)


def test_hbt_formulas_equal_their_published_forms():
    """Three-level g2 (Kurtsiefer et al. 2000), background dilution (Brouri et al. 2000), accidental coincidences
    N1 N2 w / T, and the G2 image <N>^2 (1 - g2(0)) (Schwartz et al. 2013)."""
    tau = torch.tensor([-30.0, 0.0, 12.5])
    a1, t1, a2, t2 = torch.tensor([0.9]), torch.tensor([8.0]), torch.tensor([0.2]), torch.tensor([150.0])
    expected = 1 - 0.9 * np.exp(-np.abs(tau.numpy()) / 8.0) + 0.2 * np.exp(-np.abs(tau.numpy()) / 150.0)
    assert np.allclose(three_level_g2(tau, a1, t1, a2, t2)[0].numpy(), expected, rtol=1e-6)
    measured = 1 - 0.8**2 * (1 - 0.1)  # a g2_true(0) = 0.1 emitter with rho = 0.8
    corrected, sigma = correct_background(torch.tensor([measured], dtype=torch.float64), 0.8, torch.tensor([0.05]))
    assert float(corrected[0]) == pytest.approx(0.1, abs=1e-12) and float(sigma[0]) == pytest.approx(0.05 / 0.64)
    baseline = baseline_from_singles(torch.tensor([20000.0]), torch.tensor([30000.0]), 2.3, torch.tensor([10.0]))
    assert float(baseline[0]) == pytest.approx(20000.0 * 30000.0 * 2.3e-9 / 10.0, rel=1e-12)
    counts, g2_zero = torch.tensor([[100.0, 50.0]]), torch.tensor([[0.5, 1.0]])
    assert g2_image(counts, g2_zero).tolist() == [[5000.0, 0.0]]
