import math

import numpy as np
import pytest
import torch

from qml_imaging.physics.hbt import EmitterParameters
from qml_imaging.physics.microscopy import (
    ConfocalScan,
    dip_depth,
    fit_gaussian,
    g2_image,
)

CURVE = EmitterParameters(*(torch.tensor([v], dtype=torch.float64) for v in (1.1, 20.0, 0.2, 300.0, 0.0)))
SINGLE_G2 = 1 - 1.1 + 0.2


def row_through(image, scan, y_nm):
    return image[int(torch.argmin((scan.axis_nm() - y_nm).abs()))].numpy()


def test_one_emitter_g2_image_is_the_squared_psf_narrower_by_sqrt_two():
    scan = ConfocalScan()
    emitters = torch.tensor([[10.0, 0.0]])
    counts = scan.mean_counts(emitters)
    g2 = scan.pixel_curves(emitters, CURVE).g2_zero.reshape(32, 32)
    torch.testing.assert_close(g2, torch.full_like(g2, SINGLE_G2))  # no background: the emitter's own g2 everywhere
    x = scan.axis_nm().numpy()
    pl = fit_gaussian(x, row_through(counts, scan, 0.0), with_offset=False)
    g2_fit = fit_gaussian(x, row_through(g2_image(counts, g2), scan, 0.0), with_offset=False)
    assert pl.fwhm == pytest.approx(300.0, rel=1e-6) and pl.centre == pytest.approx(10.0, abs=1e-6)
    assert pl.fwhm / g2_fit.fwhm == pytest.approx(math.sqrt(2), rel=1e-6)


def test_two_equal_emitters_seen_midway_halve_the_antibunching_and_g2_separates_them():
    scan = ConfocalScan(pixels=33, field_nm=33 * 25.0)  # a pixel centre at x = 0
    emitters = torch.tensor([[-300.0, 0.0], [300.0, 0.0]])
    g2 = scan.pixel_curves(emitters, CURVE).g2_zero.reshape(33, 33)
    assert 1 - g2[16, 16].item() == pytest.approx((1 - SINGLE_G2) / 2, rel=1e-9)
    counts = scan.mean_counts(emitters)
    x = scan.axis_nm().numpy()
    g2_dip = dip_depth(x, row_through(g2_image(counts, g2), scan, 0.0), -300, 300)
    assert g2_dip > dip_depth(x, row_through(counts, scan, 0.0), -300, 300) > 0.5
    assert dip_depth(x, row_through(counts, scan, 0.0), -10, 10) == 0.0  # neighbouring pixels: nothing between


def test_background_dilutes_antibunching_as_rho_squared():
    scan = ConfocalScan(pixels=33, field_nm=33 * 25.0, peak_rate=3e4, background_rate=1e4)
    g2 = scan.pixel_curves(torch.tensor([[0.0, 0.0]]), CURVE).g2_zero.reshape(33, 33)
    rho = 3e4 / 4e4
    assert 1 - g2[16, 16].item() == pytest.approx(rho**2 * (1 - SINGLE_G2), rel=1e-9)
    assert g2[0, 0].item() > 0.99  # far from the emitter the light is background


def test_gaussian_fit_recovers_a_noisy_profile():
    x = np.linspace(-400, 400, 33)
    truth = 5.0 + 100 * np.exp(-4 * math.log(2) * (x - 30) ** 2 / 250**2)
    noisy = truth + np.random.default_rng(0).normal(0, 2, x.shape)
    fit = fit_gaussian(x, noisy)
    assert fit.fwhm == pytest.approx(250, rel=0.05) and fit.centre == pytest.approx(30, abs=10)


def test_bad_scan_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="emitters must be \\(E, 2\\).*got shape \\(3,\\)"):
        ConfocalScan().mean_counts(torch.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        ConfocalScan().mean_counts(torch.tensor([[float("nan"), 0.0]]))
    with pytest.raises(ValueError, match="background_rate must be >= 0"):
        ConfocalScan(background_rate=-1.0)
    with pytest.raises(ValueError, match="psf_fwhm_nm must be > 0"):
        ConfocalScan(psf_fwhm_nm=0.0)
    with pytest.raises(ValueError, match="same shape"):
        g2_image(torch.ones(4, 4), torch.ones(4, 3))
