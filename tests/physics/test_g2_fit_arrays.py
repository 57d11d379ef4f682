"""The g2 fit computes in NumPy: tensors and arrays give the same fit, and the numbers are those of the torch-based
implementation it replaced (commit 8076c47), to float64 rounding."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy
import torch

from qml_imaging.physics.delay_axis import DelayAxis
from qml_imaging.physics.g2_fit import fit_g2

AXIS = DelayAxis(bins=61, span_ns=61.0, first_ns=-30.0)

# fit_g2 of the histograms below at commit 8076c47 (torch tensors in and out): g2(0), sigma, zero delay, baseline,
# reduced deviance; first with the baseline given (80, 80, 0: the third histogram is dark), then fitted
BEFORE = {
    "known": ([0.19057198798599084, 0.13253623193098707, 1.0], [0.050349073158816246, 0.050655227715590036, np.inf],
              [0.3773853322829268, 1.398761576793067, 0.0], [79.99999999999997, 79.99999999999997, 0.0],
              [0.7891932685636612, 1.3028278328983112, 0.0]),
    "fitted": ([0.18895080596131808, 0.11903751096637583], [0.05136228154471358, 0.05439304947095202],
               [0.3787667777521371, 1.388928013818159], [79.76424658512893, 78.10977345356314],
               [0.8026495993329915, 1.2961575211880545]),
}


def rounding_tolerance() -> float:
    """float64 rounding at the lock's NumPy and SciPy, where BEFORE was recorded; elsewhere (the lowest declared
    versions) the least-squares search stops up to ~1e-5 relative away, 1000x below the fits' sigma (~0.05)."""
    lock = (Path(__file__).parents[2] / "constraints.txt").read_text().splitlines()
    at_lock = {f"numpy=={np.__version__}", f"scipy=={scipy.__version__}"} <= set(lock)
    return 1e-12 if at_lock else 1e-4


def histograms() -> np.ndarray:
    rng = np.random.default_rng(7)
    tau = AXIS.centres_ns()

    def mean(g0: float, t1: float, shift: float = 0.0) -> np.ndarray:
        return 80.0 * (1 - (1 - g0) * np.exp(-np.abs(tau - shift) / t1))

    return np.stack([rng.poisson(mean(0.2, 4.0)), rng.poisson(mean(0.1, 3.0, shift=1.3)), np.zeros(61, dtype=np.int64)])


def fits(counts, baseline) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {"known": fit_g2(counts, AXIS, baseline=baseline), "fitted": fit_g2(counts[:2], AXIS)}


def columns(fit) -> tuple:
    return fit.g2_zero, fit.uncertainty, fit.zero_delay_ns, fit.baseline, fit.reduced_deviance


def test_tensors_and_arrays_give_the_fit_of_the_torch_implementation():
    counts = histograms()
    from_tensors = fits(torch.from_numpy(counts), torch.tensor([80.0, 80.0, 0.0], dtype=torch.float64))
    from_arrays = fits(counts.astype(np.float64), np.array([80.0, 80.0, 0.0]))
    tolerance = rounding_tolerance()
    for name, before in BEFORE.items():
        for now, other, then in zip(columns(from_tensors[name]), columns(from_arrays[name]), before, strict=True):
            assert isinstance(now, np.ndarray) and now.dtype == np.float64
            np.testing.assert_array_equal(now, other)  # the same numbers whichever kind of input
            np.testing.assert_allclose(now, then, rtol=tolerance, atol=tolerance)
    assert from_tensors["known"].status[2].startswith("dark") and from_tensors["known"].measured.dtype == bool


def test_float32_tensors_are_read_as_float64_and_bool_or_complex_values_refused():
    counts = histograms()[:1]
    single = fit_g2(torch.from_numpy(counts).float(), AXIS, baseline=torch.tensor([80.0]))
    double = fit_g2(counts.astype(np.float64), AXIS, baseline=np.array([80.0]))
    np.testing.assert_array_equal(single.g2_zero, double.g2_zero)
    with pytest.raises(TypeError, match="histograms"):
        fit_g2(torch.from_numpy(counts) > 0, AXIS)
    with pytest.raises(TypeError, match="baseline"):
        fit_g2(counts, AXIS, baseline=np.array([80.0 + 0j]))
