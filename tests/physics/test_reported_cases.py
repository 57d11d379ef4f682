"""One test per reproduction in shared/cases that probes physics (r01, r03, r04, r05, r06, r08, f12)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from qml_imaging.physics.bounds import fisher_information, total_bound
from qml_imaging.physics.g2_fit import fit_g2
from qml_imaging.physics.hbt import DelayAxis, EmitterParameters, simulate_histograms, uncorrelated_baseline
from qml_imaging.physics.microscopy import ConfocalScan
from qml_imaging.physics.mle import PoissonMLE
from qml_imaging.physics.parametric import get_family
from qml_imaging.physics.shot_noise import shot_noise_counts


def test_r01_an_empty_batch_is_a_clear_error():
    with pytest.raises(ValueError, match=r"phi is empty \(shape \(0, 4, 4\)\)"):
        shot_noise_counts(torch.empty(0, 4, 4), 100)


@pytest.mark.parametrize(("size", "error", "message"), [
    (0, ValueError, "size must be an integer >= 1, got 0"),
    (-3, ValueError, "size must be an integer >= 1, got -3"),
    (2.5, TypeError, r"size must be an integer count, got 2.5"),
    (True, TypeError, "size must be an integer count, got True"),
])
def test_r03_family_size_is_validated(size, error, message):
    family = get_family("sinusoid")
    theta = torch.tensor([2.0, 1.0, 1.0])
    for method in (family.phi, family.jacobian):
        with pytest.raises(error, match=message):
            method(theta, size)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_r04_bounds_refuse_a_non_finite_jacobian(bad):
    family = get_family("sinusoid")
    theta = torch.tensor([[2.0, 1.0, 1.0]], dtype=torch.float64)
    phi, jacobian = family.phi(theta, 8).flatten(1), family.jacobian(theta, 8)
    jacobian[0, 5, 1] = bad
    for bound in (fisher_information, total_bound):
        with pytest.raises(ValueError, match=f"jacobian must be finite .* contains {bad}"):
            bound(phi, jacobian, 100)


def test_r05_mle_starts_above_candidates_fail_at_construction():
    with pytest.raises(ValueError, match=r"starts \(8\) must be <= candidates \(4\)"):
        PoissonMLE(get_family("sinusoid"), 8, candidates=4, starts=8)


@pytest.mark.parametrize("span", [float("nan"), float("inf"), -1.0, 0.0])
def test_r06_delay_axis_span_must_be_finite_and_positive(span):
    with pytest.raises(ValueError, match="span_ns must be"):
        DelayAxis(span_ns=span)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("rate", -1e5, "rate must be >= 0"), ("t1", 0.0, "t1 must be > 0"), ("t2", -5.0, "t2 must be > 0"),
    ("a1", float("nan"), "a1 must be finite"), ("a2", -0.1, "a2 must be >= 0"),
])
def test_r08_emitter_parameters_are_validated(field, value, message):
    fields = dict(a1=0.9, t1=20.0, a2=0.1, t2=300.0, rate=1e5) | {field: value}
    with pytest.raises(ValueError, match=message):
        EmitterParameters(**{k: torch.tensor([v], dtype=torch.float64) for k, v in fields.items()})


@pytest.mark.parametrize("seconds", [-5.0, 0.0, float("nan")])
def test_r08_acquisition_time_must_be_positive(seconds):
    parameters = EmitterParameters(*(torch.tensor([v], dtype=torch.float64) for v in (0.9, 20.0, 0.1, 300.0, 1e5)))
    with pytest.raises(ValueError, match="seconds must be"):
        simulate_histograms(parameters, seconds, generator=torch.Generator().manual_seed(0))


def test_f12_dark_scan_pixels_give_zero_counts_and_g2_one():
    scan = ConfocalScan(pixels=8, field_nm=10000.0)
    emitter = torch.tensor([[0.0, 0.0]])
    curve = EmitterParameters(*(torch.tensor([v], dtype=torch.float64) for v in (1.05, 20.0, 0.2, 300.0, 0.0)))
    dark = scan.emitter_rates(emitter)[..., 0].flatten() == 0
    assert dark.sum() > 0
    pixels = scan.pixel_curves(emitter, curve)
    for field in ("a1", "t1", "a2", "t2", "rate"):
        assert torch.isfinite(getattr(pixels, field)).all()
    assert (pixels.rate[dark] == 0).all() and (pixels.g2_zero[dark] == 1).all()
    histograms = simulate_histograms(pixels, scan.seconds, DelayAxis(), 0.0122, torch.Generator().manual_seed(0))
    assert (histograms[dark] == 0).all()
    baselines = uncorrelated_baseline(pixels, scan.seconds, DelayAxis(), 0.0122)
    fit = fit_g2(histograms, baseline=baselines)
    assert (fit.g2_zero[dark.numpy()] == 1).all() and not np.isnan(fit.g2_zero).any()
    assert fit_g2(torch.zeros(2, 215), baseline=torch.tensor([1.0, 0.0])).g2_zero.tolist() == [1.0, 1.0]


def test_a_zero_baseline_with_coincidences_is_a_clear_error():
    with pytest.raises(ValueError, match="histogram 1 has baseline 0 .* but 10 coincidences"):
        fit_g2(torch.cat([torch.zeros(1, 215), torch.full((1, 215), 10.0 / 215)]), baseline=torch.tensor([1.0, 0.0]))


def test_a_delay_axis_shorter_than_the_fit_is_a_clear_error():
    with pytest.raises(ValueError, match="axis has 3 bins; the fit needs more than 6"):
        fit_g2(torch.ones(1, 3), DelayAxis(bins=3))


def test_uncorrelated_baseline_is_the_far_delay_level_of_the_expected_histogram():
    from qml_imaging.physics.hbt import expected_histogram

    parameters = EmitterParameters(*(torch.tensor([v, v], dtype=torch.float64) for v in (0.0, 20.0, 0.0, 300.0)),
                                   torch.tensor([1e4, 1e5], dtype=torch.float64))
    baseline = uncorrelated_baseline(parameters, 5.0)
    assert torch.allclose(expected_histogram(parameters, 5.0), baseline[:, None].expand(-1, 215))
    assert baseline[1].item() == pytest.approx(0.0122 * 1e10 * (500 / 215) * 1e-9 * 5.0, rel=1e-12)
    assert math.isfinite(baseline.sum().item())
