"""Measured-data HBT physics: zero delay off the axis centre (f11), normalisation, background, the
fitted-baseline refusal, and a perfect single-photon emitter (g2(0) = 0)."""

import warnings

import numpy as np
import pytest
import torch

from qml_imaging.physics.g2_fit import DelayOffsetWarning, fit_g2
from qml_imaging.physics.hbt import (
    DelayAxis,
    EmitterParameters,
    baseline_from_singles,
    baseline_from_tails,
    correct_background,
    expected_histogram,
    signal_share,
    tail_excess,
    three_level_g2,
)

A1, T1, A2, T2 = 0.95, 20.0, 0.1, 300.0  # g2(0) = 0.15


def shifted(offset_ns, seconds=600.0, rate=1e5, axis=DelayAxis(), seed=0, n=1):
    """Poisson histograms of the f11 emitter with the dip at ``offset_ns``, and the known baseline (the curve
    sampled at the bin centres, as the simulator does: the fits below say so with sampling="centre")."""
    flat = EmitterParameters(*(torch.tensor([v], dtype=torch.float64) for v in (0.0, T1, 0.0, T2, rate)))
    baseline = expected_histogram(flat, seconds, axis)[:, 0]
    curve = three_level_g2(axis.centres() - offset_ns, *(torch.tensor([v], dtype=torch.float64) for v in (A1, T1, A2, T2)))
    mean = (baseline[:, None] * curve).expand(n, -1)
    return torch.poisson(mean, generator=torch.Generator().manual_seed(seed)), baseline.expand(n)


@pytest.mark.parametrize("offset_ns", [0.0, 5.0, 10.0])
def test_f11_an_offset_dip_is_fitted_where_it_is(offset_ns):
    histograms, baseline = shifted(offset_ns)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = fit_g2(histograms, baseline=baseline, sampling="centre")
    sigma = fit.uncertainty.item()
    assert abs(fit.g2_zero.item() - 0.15) < 2 * sigma < 0.1
    # the offset's Cramer-Rao bound here is 0.383 ns (2.3 ns bins, 600 s), so no estimator keeps it within 0.5 ns in
    # more than ~81 % of histograms (docs/results.md: benchmarks/g2_measured_checks.py); the test asks for 2 sigma
    sigma_zero = fit.zero_delay_uncertainty.item()
    assert abs(fit.zero_delay_ns.item() - offset_ns) < 2 * sigma_zero and 0 < sigma_zero < 0.5
    offsets = [w for w in caught if issubclass(w.category, DelayOffsetWarning)]
    assert bool(offsets) == (offset_ns > 0)
    if offsets:
        assert "off the axis zero" in str(offsets[0].message)


def test_a_given_zero_delay_is_used_as_given():
    histograms, baseline = shifted(5.0)
    fit = fit_g2(histograms, baseline=baseline, zero_delay_ns=5.0, sampling="centre")
    assert fit.zero_delay_ns.item() == 5.0 and fit.zero_delay_uncertainty.item() == 0.0
    assert abs(fit.g2_zero.item() - 0.15) < 2 * fit.uncertainty.item()
    with pytest.raises(ValueError, match="zero_delay_ns must be 'fit' or a number"):
        fit_g2(histograms, zero_delay_ns="auto")


def test_measured_axes_of_any_width_and_start():
    axis = DelayAxis.from_centres(torch.arange(100, dtype=torch.float64) * 4.0 + 10.0)  # 0.01 ... 406 ns, even bins
    assert axis.bins == 100 and axis.width_ns == 4.0 and axis.start_ns == 10.0 and axis.zero_bin == 0
    histograms, baseline = shifted(200.0, axis=axis, seed=3)  # a start-stop card: the dip at the cable delay
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DelayOffsetWarning)
        fit = fit_g2(histograms, axis, baseline=baseline, sampling="centre")
    assert abs(fit.zero_delay_ns.item() - 200.0) < 1.0 and abs(fit.g2_zero.item() - 0.15) < 2 * fit.uncertainty.item()
    with pytest.raises(ValueError, match="equally spaced"):
        DelayAxis.from_centres([0.0, 1.0, 3.0])


def test_singles_and_tail_normalisation():
    assert baseline_from_singles(1e5 * 600, 1e5 * 600, 2.0, 600.0).item() == pytest.approx(1e5 * 1e5 * 2e-9 * 600)
    assert baseline_from_singles(0, 10, 1.0, 1.0).item() == 0.0
    with pytest.raises(ValueError, match="seconds must be > 0"):
        baseline_from_singles(1, 1, 1.0, 0.0)
    axis = DelayAxis(bins=215, span_ns=5000.0)
    histograms, baseline = shifted(0.0, axis=axis, n=50, seed=4)  # t2 = 300 ns: the tails past 1500 ns are flat
    level, sigma = baseline_from_tails(histograms, axis)
    assert abs(level.mean().item() - baseline[0].item()) < 3 * sigma.mean().item() / 50**0.5
    assert torch.allclose(sigma, (level / (axis.centres().abs() > 1500).sum()).sqrt())


def test_tail_excess_is_null_on_flat_tails_and_finds_bunching_that_reaches_them():
    """Closed form: with bunching a2 exp(-|tau| / t2) the inner half of the tails (|tau| in (d1, dm]) lies
    above the outer half (|tau| in (dm, d2]) by the ratio of their mean bunching terms."""
    wide = DelayAxis(bins=215, span_ns=5000.0)  # t2 = 300 ns: flat past 1500 ns
    flat, _ = shifted(0.0, axis=wide, n=200, seed=1)
    excess, z = tail_excess(flat, wide)
    assert abs(excess.mean().item()) < 0.01 and z.abs().median().item() < 1.0 and (z > 4).sum() <= 1
    narrow = DelayAxis()  # +-250 ns: the tails (150-250 ns) still hold bunching of about a2 exp(-200 / 300)
    sloped, _ = shifted(0.0, axis=narrow, n=100, seed=2, rate=1e6)  # 17000 counts per bin: a 0.8 % slope shows
    excess, z = tail_excess(sloped, narrow)
    tau = narrow.centres().abs()
    tail = tau > 0.6 * tau.max()
    inner, outer = tail & (tau <= tau[tail].median()), tail & (tau > tau[tail].median())
    curve = three_level_g2(narrow.centres(), *(torch.tensor([v], dtype=torch.float64) for v in (A1, T1, A2, T2)))[0]
    expected = curve[inner].mean() / curve[outer].mean() - 1
    assert excess.mean().item() == pytest.approx(expected.item(), abs=0.001) and expected > 0.005
    assert (z > 4).float().mean() > 0.5
    faint, _ = shifted(0.0, axis=narrow, n=100, seed=3)  # 170 counts per bin: the same slope is within the noise
    assert (tail_excess(faint, narrow)[1] > 4).float().mean() < 0.05


def test_background_correction_inverts_the_rho_squared_dilution():
    rho = signal_share(torch.tensor([4e4, 1e4, 0.0]), 1e4)
    assert rho.tolist() == pytest.approx([0.75, 1.0, 1.0])
    measured = 1 - 0.75**2 * (1 - 0.2)
    g2, sigma = correct_background(torch.tensor([measured, 1.0]), torch.tensor([0.75, 1.0]), torch.tensor([0.01, float("inf")]))
    assert g2.tolist() == pytest.approx([0.2, 1.0]) and sigma[0].item() == pytest.approx(0.01 / 0.75**2)
    with pytest.raises(ValueError, match=r"rho = S / \(S \+ B\) must be in \(0, 1\]"):
        correct_background(0.5, 0.0)


def test_fitted_baseline_is_refused_when_bunching_outlasts_the_window_or_right_within_two_sigma():
    # t2 = 300 ns on a +-250 ns window: baseline and bunching trade off; each fit is refused or right
    for scale, seed in ((1, 5), (10, 6)):
        histograms, _ = shifted(0.0, seconds=600.0 * 300 / 140 * scale, n=6, seed=seed)
        fit = fit_g2(histograms, zero_delay_ns=0.0, sampling="centre")
        refused = [s for s in fit.status if s]
        assert all(s.startswith(("baseline not identifiable", "parameter at a bound", "g2(0) is not determined"))
                   for s in refused), refused
        assert all("--baseline singles" in s or "singles counts" in s for s in refused)
        assert len(refused) >= (3 if scale == 10 else 0)
        kept = fit.measured
        assert (np.abs(fit.g2_zero[kept] - 0.15) < 2 * fit.uncertainty[kept]).all()
    wide = DelayAxis(bins=1075, span_ns=5000.0)
    histograms, _ = shifted(0.0, seconds=600.0 * 300 / 140, axis=wide, n=4, seed=6)
    fit = fit_g2(histograms, wide, zero_delay_ns=0.0, sampling="centre")
    assert np.abs(fit.g2_zero - 0.15).max() < 3 * fit.uncertainty.max() and fit.baseline_uncertainty.min() > 0
    assert fit.measured.all()


def test_a_perfect_single_photon_emitter_and_dark_pixels_stay_finite():
    flat = EmitterParameters(*(torch.tensor([v, v], dtype=torch.float64) for v in (0.0, 20.0, 0.0, 300.0)),
                             torch.tensor([1e5, 0.0], dtype=torch.float64))
    perfect = EmitterParameters(*(torch.tensor([v, v], dtype=torch.float64) for v in (1.0, 20.0, 0.0, 300.0)),
                                flat.rate)
    histograms = torch.poisson(expected_histogram(perfect, 600.0), generator=torch.Generator().manual_seed(7))
    fit = fit_g2(histograms, baseline=expected_histogram(flat, 600.0)[:, 0], zero_delay_ns=0.0, sampling="centre")
    assert np.isfinite(fit.g2_zero).all() and fit.g2_zero[1].item() == 1.0
    assert abs(fit.g2_zero[0].item()) < 3 * fit.uncertainty[0].item() < 0.1
    assert not np.isnan(np.stack([fit.zero_delay_ns, fit.baseline, fit.uncertainty])).any()


def test_a_perfect_emitter_without_bunching_has_a_finite_uncertainty_with_the_zero_delay_fitted():
    # 12 histograms of a two-level emitter (g2(0) = 0, no bunching), 190 counts per bin, dip at 7 ns: the fitted
    # bunching amplitude a2 is pinned at its bound 0 in about half of them, which once made sigma infinite
    axis = DelayAxis()
    curve = three_level_g2(axis.centres() - 7.0, *(torch.tensor([v], dtype=torch.float64) for v in (1.0, 8.6, 0.0, 300.0)))
    histograms = torch.poisson((190.0 * curve).expand(12, -1), generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DelayOffsetWarning)
        fit = fit_g2(histograms, baseline=torch.full((12,), 190.0, dtype=torch.float64), sampling="centre")
    # the centre bin's mean is 0 (a boundary of the Poisson mean): its information is capped (INFORMATION_FLOOR)
    assert np.all(fit.uncertainty > 0.005) and 0.02 < np.median(fit.uncertainty) < 0.05, fit.uncertainty
    assert np.all(np.abs(fit.g2_zero) < 3 * fit.uncertainty)
