"""The measured HBT curve in NumPy: three-level g2 with a Gaussian timing jitter, averaged over each delay bin.

Emitter (paper 002, Eq. 3; ``tau`` in ns from the zero delay ``tau0``):
``g2(tau) = 1 - a1 exp(-|tau| / t1) + a2 exp(-|tau| / t2)``, ``g2(0) = 1 - a1 + a2``.

Instrument response: the two detectors' timing jitter is a Gaussian of standard deviation ``s`` ns
(the IRF of the delay, i.e. the two channels' jitters added in quadrature), so the measured curve is
the emitter curve convolved with it. The convolution of ``exp(-|x| / t)`` with ``N(0, s^2)`` is the
two-sided exponentially modified Gaussian

    D(x) = 1/2 [E(x) + E(-x)],  E(y) = exp(s^2 / (2 t^2) - y / t) erfc((s^2 / t - y) / (s sqrt 2))

(the convolution integral of an exponential and a Gaussian, e.g. Grushka, Anal. Chem. 44, 1733
(1972), applied to each side of the two-sided exponential). It is evaluated without overflow as
``exp(-y^2 / 2 s^2) erfcx(z)`` for ``z = (s / t - y / s) / sqrt 2 >= 0`` (``scipy.special.erfcx``)
and directly otherwise, where its exponent is below ``-s^2 / 2 t^2``.

Bins: a TCSPC or time-tagger histogram counts every delay inside a bin, so the expected count of a
bin is the curve's average over it; :func:`binned_curve` takes the mean over ``subpoints`` equally
spaced points (the midpoint rule over sub-bins; exact for ``subpoints = 1`` only when the curve is
linear across a bin, and within ``w / (4 t1 subpoints^2)`` of the dip depth at the kink otherwise).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erfc, erfcx

CURVE_FLOOR = 1e-4
"""Below this normalised level the model curve bends smoothly to ``CURVE_FLOOR exp(x / CURVE_FLOOR - 1)``, so
expected counts stay positive (Poisson means) while the emitter's g2(0) may be fitted slightly below 0."""


def smeared_decay(x: np.ndarray, lifetime: float, jitter: float) -> np.ndarray:
    """``exp(-|x| / lifetime)`` convolved with a Gaussian of standard deviation ``jitter`` (ns; 0: none), at ``x`` (ns)."""
    if jitter <= 0:
        return np.exp(-np.abs(x) / lifetime)
    return 0.5 * (_one_side(x, lifetime, jitter) + _one_side(-x, lifetime, jitter))


def _one_side(y: np.ndarray, t: float, s: float) -> np.ndarray:
    z = (s / t - y / s) / math.sqrt(2.0)
    scaled = np.exp(-0.5 * (y / s) ** 2) * erfcx(np.maximum(z, 0.0))
    direct = np.exp(np.minimum(0.5 * (s / t) ** 2 - y / t, 0.0)) * erfc(np.minimum(z, 0.0))
    return np.where(z >= 0, scaled, direct)


def g2_curve(tau: np.ndarray, tau0: float, a1: float, t1: float, a2: float, t2: float, jitter: float) -> np.ndarray:
    """The measured (jitter-convolved) normalised curve at delays ``tau`` (ns) for a dip at ``tau0`` (ns)."""
    x = np.asarray(tau, dtype=np.float64) - tau0
    curve = 1.0 - a1 * smeared_decay(x, t1, jitter)
    if a2 != 0.0:
        curve = curve + a2 * smeared_decay(x, t2, jitter)
    return curve


def floored(curve: np.ndarray) -> np.ndarray:
    """``curve`` with values below :data:`CURVE_FLOOR` bent smoothly (C1) towards 0 from above."""
    low = curve < CURVE_FLOOR
    if not low.any():
        return curve
    return np.where(low, CURVE_FLOOR * np.exp(np.minimum(curve, CURVE_FLOOR) / CURVE_FLOOR - 1.0), curve)


def sub_offsets(width_ns: float, subpoints: int) -> np.ndarray:
    """``(subpoints,)`` offsets (ns) of the midpoints of ``subpoints`` equal sub-bins from a bin's centre."""
    return ((np.arange(subpoints) + 0.5) / subpoints - 0.5) * width_ns


def binned_curve(centres: np.ndarray, width_ns: float, subpoints: int, tau0: float, a1: float, t1: float, a2: float,
                 t2: float, jitter: float) -> np.ndarray:
    """``(K,)`` bin averages of :func:`g2_curve` (floored by :func:`floored`) for bins of ``width_ns`` at ``centres``."""
    points = (np.asarray(centres, dtype=np.float64)[:, None] + sub_offsets(width_ns, subpoints)[None, :]).reshape(-1)
    curve = floored(g2_curve(points, tau0, a1, t1, a2, t2, jitter))
    return curve.reshape(len(centres), subpoints).mean(1)


def subpoints_for(width_ns: float, lifetime_ns: float) -> int:
    """Sub-bins that keep the midpoint rule's error at a centred dip (``w / (4 t1 k^2)`` of its depth) below about
    0.6 %: 1 for bins under 1 % of the lifetime, up to 9 for bins wider than it (odd: one point on a centred dip)."""
    ratio = width_ns / max(lifetime_ns, 1e-12)
    for limit, points in ((0.01, 1), (0.1, 3), (0.4, 5), (1.0, 7)):
        if ratio <= limit:
            return points
    return 9
