import numpy as np
import pytest
import torch

from qml_imaging.physics.g2_fit import fit_g2
from qml_imaging.physics.hbt import (
    DelayAxis,
    EmitterParameters,
    check_histograms,
    expected_histogram,
    mixture_share_factor,
    simulate_histograms,
    sum_one_second_histograms,
    three_level_g2,
)


def emitter(n=1, g2_zero=0.2, rate=5e4):
    ones = torch.ones(n, dtype=torch.float64)
    return EmitterParameters(a1=(1.1 - g2_zero) * ones, t1=30 * ones, a2=0.1 * ones, t2=300 * ones, rate=rate * ones)


def test_delay_axis_has_a_bin_centred_on_zero():
    axis = DelayAxis()
    centres = axis.centres()
    assert len(centres) == 215 and centres[axis.zero_bin] == 0.0
    assert centres[-1] - centres[0] == pytest.approx(500.0 - axis.width_ns)


def test_three_level_curve_at_zero_and_far_away():
    curve = three_level_g2(torch.tensor([0.0, 1e6], dtype=torch.float64), *(torch.tensor([x], dtype=torch.float64) for x in (0.9, 30, 0.1, 300)))
    assert curve[0, 0].item() == pytest.approx(0.2) and curve[0, 1].item() == pytest.approx(1.0)


def test_n_equal_emitters_and_background_give_the_closed_forms():
    for n in (1, 2, 3, 5):
        factor = mixture_share_factor(torch.full((n,), 1.0 / n, dtype=torch.float64))
        single = EmitterParameters(*(torch.tensor([x], dtype=torch.float64) for x in (1.0, 30.0, 0.0, 300.0, 1e4)))
        assert single.mixed(factor).g2_zero.item() == pytest.approx(1 - 1 / n)
    rho, true_g2 = 0.7, 0.2
    diluted = emitter(g2_zero=true_g2).mixed(mixture_share_factor(torch.tensor([rho], dtype=torch.float64)))
    assert diluted.g2_zero.item() == pytest.approx(1 - rho**2 * (1 - true_g2))
    with pytest.raises(ValueError, match="sum to at most 1"):
        mixture_share_factor(torch.tensor([0.8, 0.5]))


def test_histogram_counts_average_the_expected_coincidences():
    parameters = emitter(n=4000)
    histograms = simulate_histograms(parameters, 5.0, generator=torch.Generator().manual_seed(0))
    expected = expected_histogram(parameters, 5.0)
    assert histograms.sum(1).mean().item() == pytest.approx(expected.sum(1)[0].item(), rel=0.01)
    assert expected[0, DelayAxis().zero_bin] < 0.25 * expected[0, 0]


def test_calibration_puts_an_in_focus_emitter_at_the_papers_largest_one_second_histogram():
    bright = EmitterParameters(*(torch.tensor([x], dtype=torch.float64) for x in (0.0, 30.0, 0.0, 300.0, 1e5)))
    assert expected_histogram(bright, 1.0).sum().item() == pytest.approx(61.0, rel=0.01)


def test_summing_one_second_histograms_uses_distinct_ones():
    one_second = torch.eye(10, 215, dtype=torch.float64)
    total = sum_one_second_histograms(one_second, 7, torch.Generator().manual_seed(0))
    assert total.sum().item() == 7 and total.max().item() == 1
    with pytest.raises(ValueError, match="cannot sum 11 distinct histograms out of 10"):
        sum_one_second_histograms(one_second, 11)


def test_levenberg_marquardt_recovers_g2_from_a_long_acquisition():
    parameters = emitter(n=3, g2_zero=0.3)
    histograms = simulate_histograms(parameters, 2000.0, generator=torch.Generator().manual_seed(1))
    flat = EmitterParameters(a1=torch.zeros(3, dtype=torch.float64), t1=parameters.t1, a2=torch.zeros(3, dtype=torch.float64),
                             t2=parameters.t2, rate=parameters.rate)
    fit = fit_g2(histograms, baseline=expected_histogram(flat, 2000.0)[:, 0], sampling="centre")
    assert np.allclose(fit.g2_zero, 0.3, atol=0.05)
    assert (fit.uncertainty < 0.05).all()


def test_reported_uncertainty_matches_the_scatter_of_repeated_fits():
    parameters = emitter(n=80, g2_zero=0.3)
    histograms = simulate_histograms(parameters, 400.0, generator=torch.Generator().manual_seed(2))
    flat = EmitterParameters(a1=torch.zeros(80, dtype=torch.float64), t1=parameters.t1,
                             a2=torch.zeros(80, dtype=torch.float64), t2=parameters.t2, rate=parameters.rate)
    fit = fit_g2(histograms, baseline=expected_histogram(flat, 400.0)[:, 0], sampling="centre")
    scatter = fit.g2_zero.std(ddof=1)
    assert 0.75 < np.median(fit.uncertainty) / scatter < 1.35


def test_dark_histograms_are_g2_one():
    fit = fit_g2(torch.zeros(2, 215))
    assert fit.g2_zero.tolist() == [1.0, 1.0]


@pytest.mark.parametrize(("histograms", "message"), [
    (torch.zeros(2, 214), r"shape \(B, 215\) \(215 delay bins\), got \(2, 214\)"),
    (-torch.ones(1, 215), "must be >= 0"),
    (torch.full((1, 215), float("nan")), "NaN"),
])
def test_bad_histograms_are_clear_errors(histograms, message):
    with pytest.raises(ValueError, match=message):
        check_histograms(histograms)


def test_cramer_rao_bound_scales_with_acquisition_and_levenberg_marquardt_nearly_reaches_it():
    from qml_imaging.physics.hbt import g2_zero_cramer_rao

    parameters = emitter(n=80, g2_zero=0.3)
    bound = g2_zero_cramer_rao(parameters, 2000.0)
    assert bound[0].item() == pytest.approx(5**0.5 * g2_zero_cramer_rao(parameters, 10000.0)[0].item(), rel=1e-9)
    histograms = simulate_histograms(parameters, 2000.0, generator=torch.Generator().manual_seed(2))
    flat = EmitterParameters(a1=torch.zeros(80, dtype=torch.float64), t1=parameters.t1,
                             a2=torch.zeros(80, dtype=torch.float64), t2=parameters.t2, rate=parameters.rate)
    scatter = fit_g2(histograms, baseline=expected_histogram(flat, 2000.0)[:, 0], sampling="centre").g2_zero.std(ddof=1)
    assert 0.85 < scatter / bound[0].item() < 1.4
