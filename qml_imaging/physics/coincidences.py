"""Coincidence-count arithmetic of HBT histograms in NumPy (no torch): the checks, baselines and corrections that
``g2 fit`` / ``g2 scan`` apply to laboratory files. :mod:`qml_imaging.physics.hbt` offers the same functions on
torch tensors (it calls these); the model and the simulator live there.

Inputs are NumPy arrays, Python numbers or torch tensors, checked by :mod:`qml_imaging.physics.array_checks`
(integer counts converted to float64, bool / complex refused with ``TypeError``, NaN / inf / wrong signs with
``ValueError`` naming the argument); every result is float64.

Normalisation (the uncorrelated level per bin, "baseline"): from singles counts ``N1 N2 w / T``
(:func:`baseline_from_singles`; all-pairs coincidences of two independent Poisson streams), else from the
histogram's tails (:func:`baseline_from_tails`, with its Poisson uncertainty; biased high when bunching reaches
the tails, which :func:`tail_excess` tests). Background: with ``rho = S / (S + B)``,
``g2_true(0) = 1 - (1 - g2_measured(0)) / rho^2`` (:func:`correct_background`; Brouri et al., Opt. Lett. 25,
1294 (2000), Eq. 1 inverted). The G2 image ``N^2 (1 - g2(0))`` (:func:`g2_image`; paper 002's super-resolved
image of the second-order correlation).
"""

from __future__ import annotations

import numpy as np

from qml_imaging.physics.array_checks import count, real_array, real_number
from qml_imaging.physics.delay_axis import DelayAxis


def check_counts(histograms: object, bins: int) -> np.ndarray:
    """``histograms`` as float64 ``(B, bins)`` after checking kind, length, emptiness, finiteness and sign.

    A ``(bins,)`` histogram is taken as a batch of one; integer counts are converted to float64
    (documented), bool / complex raise ``TypeError``; ``ValueError`` for a wrong number of bins, an
    empty batch, NaN / inf or negative counts.
    """
    bins = count("bins", bins)
    counts = real_array("histograms", histograms, ndim=(1, 2), integer_ok=True, finite=False, allow_empty=True,
                        expected=f"(B, {bins})")
    if counts.ndim == 1:
        counts = counts[None]
    if counts.shape[1] != bins:
        raise ValueError(f"expected HBT histograms of shape (B, {bins}) ({bins} delay bins), got {counts.shape}")
    if len(counts) == 0:
        raise ValueError(f"histograms is an empty batch (shape {counts.shape}); expected at least one histogram")
    if not np.all(np.isfinite(counts)):
        raise ValueError("HBT histograms contain NaN or infinite values")
    if np.any(counts < 0):
        raise ValueError(f"HBT histograms hold counts and must be >= 0; smallest entry {counts.min():g}")
    return counts


def baseline_from_singles(singles_1: object, singles_2: object, width_ns: float, seconds: object) -> np.ndarray:
    """Uncorrelated coincidences per bin ``N1 N2 w / T`` (float64, shape of the broadcast inputs).

    ``singles_1``, ``singles_2``: photons counted on each channel during the acquisition (counts,
    >= 0); ``width_ns``: bin width in ns; ``seconds``: acquisition time ``T`` in s (> 0). Two
    independent Poisson streams of rates ``N1 / T`` and ``N2 / T`` give ``R1 R2 w T`` pairs per bin of
    width ``w`` in an all-pairs correlation (the standard HBT normalisation, e.g. Fox, *Quantum
    Optics*, 2006, Ch. 6; start-stop histograms approach it while ``R2 * span << 1``). A pixel with a
    zero singles count gets 0 (no light: a dark pixel). ``TypeError`` / ``ValueError`` naming the
    argument for wrong kinds, NaN / inf, negative counts or non-positive times.
    """
    n1 = real_array("singles_1", singles_1, integer_ok=True, nonnegative=True)
    n2 = real_array("singles_2", singles_2, integer_ok=True, nonnegative=True)
    width = real_number("width_ns", width_ns, positive=True)
    seconds = real_array("seconds", seconds, integer_ok=True, positive=True)
    return n1 * n2 * (width * 1e-9) / seconds


def baseline_from_tails(histograms: object, axis: DelayAxis, *, zero_delay_ns: float = 0.0,
                        beyond_ns: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The uncorrelated level per bin estimated from the histogram's tails, with its 1-sigma uncertainty.

    ``histograms`` ``(B, bins)`` or ``(bins,)`` counts (checked by :func:`check_counts`); the
    tails are the bins farther than ``beyond_ns`` from ``zero_delay_ns`` (default: 60 % of the larger
    distance from the zero delay to an end of the axis). Returns ``(level, sigma)``, each ``(B,)``
    float64: the mean count of the tail bins and its Poisson standard error ``sqrt(mean / n_tail)``
    (``sqrt(1 / n_tail)`` for empty tails, so the uncertainty of a dark pixel is never 0). The
    estimate assumes the tails are flat: bunching (``a2 exp(-|tau| / t2)``) still present there
    biases it high by ``a2 exp(-beyond / t2)`` relative (:func:`tail_excess` tests for it); give the
    singles counts when ``t2`` is long. ``ValueError`` when fewer than 3 bins lie beyond ``beyond_ns``.
    """
    counts, _, tail = _tails(histograms, axis, zero_delay_ns, beyond_ns)
    level = counts[:, tail].mean(1)
    return level, np.sqrt(np.maximum(level, 1.0) / int(tail.sum()))


def tail_excess(histograms: object, axis: DelayAxis, *, zero_delay_ns: float = 0.0,
                beyond_ns: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Whether the tails of :func:`baseline_from_tails` are flat: ``(excess, z)``, each ``(B,)`` float64.

    The tail bins are split at their (lower) median distance from the zero delay; ``excess = inner / outer - 1``
    is how much higher the half nearer the dip lies, and ``z`` its significance in Poisson standard
    errors, ``(inner - outer) / sqrt(inner / n_inner + outer / n_outer)`` (means per bin, each at
    least 1 count). Flat tails give ``excess`` about 0 and ``|z|`` about 1 or less; bunching that has
    not decayed in the tails makes both positive, and the tails level is then biased high.
    """
    counts, distance, tail = _tails(histograms, axis, zero_delay_ns, beyond_ns)
    far = np.sort(distance[tail])
    split = far[(len(far) - 1) // 2]
    inner, outer = tail & (distance <= split), tail & (distance > split)
    if not outer.any():  # every tail bin at one distance: nothing to compare
        zeros = np.zeros(len(counts))
        return zeros, zeros.copy()
    inner_level, outer_level = counts[:, inner].mean(1), counts[:, outer].mean(1)
    spread = np.sqrt(np.maximum(inner_level, 1.0) / int(inner.sum()) + np.maximum(outer_level, 1.0) / int(outer.sum()))
    return inner_level / np.maximum(outer_level, 1e-12) - 1.0, (inner_level - outer_level) / spread


def _tails(histograms: object, axis: DelayAxis, zero_delay_ns: float,
           beyond_ns: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(counts (B, bins), |tau - zero| (bins,), tail mask (bins,))``, checked."""
    if not isinstance(axis, DelayAxis):
        raise TypeError(f"axis must be a DelayAxis, got {type(axis).__name__}")
    counts = check_counts(histograms, axis.bins)
    zero = real_number("zero_delay_ns", zero_delay_ns)
    distance = np.abs(axis.centres_ns() - zero)
    beyond = real_number("beyond_ns", 0.6 * float(distance.max()) if beyond_ns is None else beyond_ns)
    tail = distance > beyond
    if int(tail.sum()) < 3:
        raise ValueError(f"only {int(tail.sum())} bins lie farther than {beyond:g} ns from the zero delay {zero:g} ns; "
                         f"the tail estimate needs at least 3 (lower beyond_ns or record a wider delay window)")
    return counts, distance, tail


def correct_background(g2_measured: object, rho: object,
                       uncertainty: object = None) -> tuple[np.ndarray, np.ndarray | None]:
    """``g2_true(0) = 1 - (1 - g2_measured(0)) / rho^2`` and its uncertainty scaled by ``1 / rho^2``.

    Uncorrelated background with signal share ``rho = S / (S + B)`` dilutes antibunching as
    ``g2_measured(0) = 1 - rho^2 (1 - g2_true(0))`` (Brouri et al., Opt. Lett. 25, 1294 (2000));
    this inverts it. ``g2_measured`` (any shape), ``rho`` (broadcastable, in (0, 1]) and the
    optional ``uncertainty`` (>= 0, inf allowed: dark pixels) are real; float64 results, returned as
    ``(g2_true, uncertainty_true)`` (the second ``None`` when no uncertainty is given). Dark pixels
    (g2 = 1) stay at 1. ``ValueError`` for rho outside (0, 1] or NaN.
    """
    g2 = real_array("g2_measured", g2_measured, integer_ok=True, allow_empty=True)
    rho = real_array("rho", rho, integer_ok=True, allow_empty=True)
    if np.any((rho <= 0) | (rho > 1)):
        raise ValueError(f"rho = S / (S + B) must be in (0, 1]; got values from {rho.min():g} to {rho.max():g}")
    corrected = 1.0 - (1.0 - g2) / rho**2
    if uncertainty is None:
        return corrected, None
    sigma = real_array("uncertainty", uncertainty, finite=False, allow_empty=True)
    if np.any(np.isnan(sigma)) or np.any(sigma < 0):
        raise ValueError("uncertainty must be >= 0 (inf for dark pixels), without NaN")
    return corrected, sigma / rho**2


def signal_share(total_rate: object, background_rate: object) -> np.ndarray:
    """``rho = S / (S + B) = (R - B) / R`` (float64) from a pixel's singles rate ``R`` and the background rate ``B``
    (counts/s, measured off the emitters). Pixels with ``R <= B`` (background only or dark) get ``rho = 1``,
    which leaves their g2 uncorrected rather than dividing by 0; ``ValueError`` for negative or non-finite rates."""
    total = real_array("total_rate", total_rate, integer_ok=True, nonnegative=True, allow_empty=True)
    background = real_array("background_rate", background_rate, integer_ok=True, nonnegative=True, allow_empty=True)
    above = total > background
    return np.where(above, (total - background) / np.where(above, total, 1.0), np.ones_like(total))


def g2_image(counts: object, g2_zero: object) -> np.ndarray:
    """``G2 = <N>^2 (1 - g2(0))`` per pixel (float64); ``counts`` and ``g2_zero`` of the same shape.

    ``counts``: non-negative counts (integers converted to float64); ``g2_zero``: floating values
    (converted to float64); both finite and non-empty.
    """
    counts = real_array("counts", counts, integer_ok=True, nonnegative=True, allow_empty=True)
    g2_zero = real_array("g2_zero", g2_zero, allow_empty=True)
    if counts.shape != g2_zero.shape:
        raise ValueError(f"counts {counts.shape} and g2_zero {g2_zero.shape} must have the same shape")
    if counts.size == 0:
        raise ValueError("counts and g2_zero are empty; expected at least one pixel")
    return counts ** 2 * (1.0 - g2_zero)
