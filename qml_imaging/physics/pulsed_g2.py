"""Pulsed g2(0): the central coincidence peak against the side peaks at multiples of the repetition period.

Under pulsed excitation an HBT histogram is a comb of peaks at ``tau = k T`` (``T`` the laser period).
Photons of different pulses are uncorrelated, so every side peak ``k != 0`` has the area of the
uncorrelated level and ``g2(0) = A_0 / mean(A_k, k != 0)`` (the standard figure for single-photon
sources, e.g. Santori et al., Nature 419, 594 (2002); Michler et al., Science 290, 2282 (2000)).

- **Windows** (:func:`window_areas`): ``A_k`` is the sum of the bins whose centres lie within ``window/2``
  of ``k T + t0``, over ``side_peaks`` peaks on each side. Poisson uncertainty (counts are independent
  Poisson variables): ``sigma = g2 sqrt(1/A_0 + 1/S)``, ``S`` the summed side areas (``A_0 = 0``: one
  count, ``sigma = 1 / mean(A_k)``).
- **Fit of the pulsed model** (:func:`fit_pulsed_model`), for peaks that overlap (a lifetime not much
  shorter than the period), where windows catch the neighbours' tails and miss their own: peaks of
  one shape at every ``k T + t0``, the central one scaled by ``g2(0)``, on a flat background,
  ``n(tau) = B + A sum_k c_k L(tau - k T - t0; t1)`` with ``c_0 = g2(0)``, ``c_k = 1`` otherwise and
  ``L`` the two-sided exponential of unit area, ``exp(-|x| / t1) / (2 t1)`` (the delay between two
  photons each emitted an exponential time ``t1`` after its pulse), integrated over each bin. Fitted
  by Poisson-weighted least squares (``scipy.optimize.least_squares``); sigma from the Fisher
  information of the Poisson counts at the fit (``(J^T J)^-1`` of the Pearson residuals).
- :func:`pulsed_g2` chooses: windows when a peak's share beyond half a period, ``exp(-T / 2 t1)``
  with ``t1`` from the fit, is below :data:`OVERLAP_LIMIT`, else the fit.

Arrays are float64 numpy; times in ns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from qml_imaging.physics.delay_axis import DelayAxis
from qml_imaging.physics.settings import PULSED_METHODS

OVERLAP_LIMIT = 1e-3
"""Share of a peak beyond half a period above which the areas come from the model fit."""


@dataclass(frozen=True)
class PulsedG2:
    """``g2_zero`` +- ``sigma``; ``central`` and ``side`` (mean) peak areas in counts over ``side_peaks`` peaks
    per side; ``method`` ``windows`` or ``fit``; ``lifetime_ns`` and ``overlap`` (share of a peak beyond
    half a period) from the model fit when it ran, else ``None``."""

    g2_zero: float
    sigma: float
    central: float
    side: float
    side_peaks: int
    method: str
    lifetime_ns: float | None = None
    overlap: float | None = None


def check_period(axis: DelayAxis, period_ns: float, window_ns: float, side_peaks: int) -> None:
    """``ValueError`` in one line for a period, window or number of side peaks that cannot work on ``axis``."""
    if not math.isfinite(period_ns) or period_ns <= 0:
        raise ValueError(f"the repetition period must be a positive number of ns, got {period_ns}")
    if not math.isfinite(window_ns) or not 0 < window_ns <= period_ns:
        raise ValueError(f"the integration window ({window_ns} ns) must be positive and no wider than the repetition "
                         f"period ({period_ns} ns): wider windows count the neighbouring peaks twice")
    if isinstance(side_peaks, bool) or not isinstance(side_peaks, int) or side_peaks < 1:
        raise ValueError(f"side_peaks must be an integer >= 1, got {side_peaks!r}")
    low, high = axis.start_ns - axis.width_ns / 2, axis.start_ns + (axis.bins - 0.5) * axis.width_ns
    fits = math.floor((min(-low, high) - window_ns / 2) / period_ns + 1e-9)
    if side_peaks > fits:
        raise ValueError(f"{side_peaks} side peaks of a {period_ns} ns period with {window_ns} ns windows need a delay axis "
                         f"over +-{side_peaks * period_ns + window_ns / 2:g} ns; this one spans {low:g} to {high:g} ns "
                         f"(at most {max(fits, 0)} side peaks fit): widen the axis or ask for fewer side peaks")


def window_areas(counts: np.ndarray, axis: DelayAxis, period_ns: float, window_ns: float, side_peaks: int,
                 zero_ns: float = 0.0) -> tuple[float, np.ndarray]:
    """``(A_0, side areas (2 side_peaks,))``: counts ``(K,)`` summed over the bins whose centres are within
    ``window_ns / 2`` of ``k period_ns + zero_ns`` (``[c - w/2, c + w/2)``)."""
    check_period(axis, period_ns, window_ns, side_peaks)
    centres = axis.centres_ns()
    counts = np.asarray(counts, dtype=np.float64)
    ks = [k for k in range(-side_peaks, side_peaks + 1)]
    areas = [counts[(centres >= k * period_ns + zero_ns - window_ns / 2)
                    & (centres < k * period_ns + zero_ns + window_ns / 2)].sum() for k in ks]
    return areas[side_peaks], np.array(areas[:side_peaks] + areas[side_peaks + 1:])


def windows_g2(counts: np.ndarray, axis: DelayAxis, period_ns: float, window_ns: float, side_peaks: int,
               zero_ns: float = 0.0) -> PulsedG2:
    """g2(0) from window areas with its Poisson uncertainty (module docstring). ``ValueError`` without side counts."""
    central, sides = window_areas(counts, axis, period_ns, window_ns, side_peaks, zero_ns)
    total = float(sides.sum())
    if total <= 0:
        raise ValueError("the side peaks hold no coincidences: no uncorrelated level to compare the central peak with")
    mean = total / len(sides)
    g2 = central / mean
    sigma = g2 * math.sqrt(1 / central + 1 / total) if central > 0 else 1 / mean
    return PulsedG2(g2, sigma, float(central), mean, side_peaks, "windows")


def _laplace_mass(edges: np.ndarray, centre: np.ndarray, lifetime: float) -> np.ndarray:
    """``(M, K)``: the share of a unit two-sided exponential at each ``centre`` (M,) inside each bin of ``edges``."""
    x = edges[None, :] - centre[:, None]
    below = 0.5 * np.exp(np.minimum(x, 0.0) / lifetime)
    cumulative = np.where(x < 0, below, 1.0 - 0.5 * np.exp(-np.maximum(x, 0.0) / lifetime))
    return np.diff(cumulative, axis=1)


def pulsed_model(parameters: np.ndarray, edges: np.ndarray, period_ns: float) -> np.ndarray:
    """Expected counts per bin ``(K,)`` of the pulsed model for ``[g2(0), A, t1, B, t0]`` (module docstring);
    every peak whose tail reaches the axis (within 12 lifetimes: the rest is below 1e-5 of a peak) is included."""
    g2, area, lifetime, background, zero = parameters
    reach = 12 * lifetime
    ks = np.arange(math.floor((edges[0] - zero - reach) / period_ns), math.ceil((edges[-1] - zero + reach) / period_ns) + 1)
    mass = _laplace_mass(edges, ks * period_ns + zero, lifetime)
    scale = np.where(ks == 0, g2, 1.0)
    return background * np.diff(edges) + area * (scale @ mass)


def fit_pulsed_model(counts: np.ndarray, axis: DelayAxis, period_ns: float, start: PulsedG2, zero_ns: float = 0.0,
                     level_per_ns: float | None = None) -> PulsedG2:
    """The pulsed model fitted to ``counts`` ``(K,)`` by Poisson maximum likelihood (least squares on the deviance
    residuals), started from the window estimate ``start``; g2(0), the central and mean side areas of the fit,
    sigma from the Poisson Fisher information at the fit (module docstring).

    ``level_per_ns``: the uncorrelated pair density ``N1 N2 / T`` (per ns of delay) from the singles, when known.
    Pairs of different pulses are independent, so the model's mean level away from 0, ``B + A / T``, equals it:
    ``A = T (level - B)`` is then tied to the background, which removes the trade-off between a flat background
    and the comb of peaks that a free fit meets when the peaks overlap."""
    counts = np.asarray(counts, dtype=np.float64)
    edges = axis.start_ns - axis.width_ns / 2 + axis.width_ns * np.arange(axis.bins + 1)
    full = _full_parameters(period_ns, level_per_ns)

    def residuals(p: np.ndarray) -> np.ndarray:
        model = np.maximum(pulsed_model(full(p), edges, period_ns), 1e-12)
        ratio = np.where(counts > 0, counts * np.log(np.where(counts > 0, counts, 1.0) / model), 0.0)
        return np.sign(counts - model) * np.sqrt(np.maximum(2 * (model - counts + ratio), 0.0))

    x0, bounds = _start(counts, axis, period_ns, start, zero_ns, level_per_ns)
    fit = least_squares(residuals, x0, bounds=bounds, x_scale="jac")
    g2, area, lifetime = full(fit.x)[:3]
    sigma = math.sqrt(max(_fisher_inverse(fit.x, full, edges, period_ns)[0, 0], 0.0))
    return PulsedG2(float(g2), sigma, float(g2 * area), float(area), start.side_peaks, "fit", float(lifetime),
                    math.exp(-period_ns / (2 * lifetime)))


def _full_parameters(period_ns: float, level_per_ns: float | None):
    """The map from fitted parameters to ``[g2(0), A, t1, B, t0]`` (``A`` tied to the level when it is known)."""
    if level_per_ns is None:
        return lambda p: np.asarray(p, dtype=np.float64)
    return lambda p: np.array([p[0], period_ns * (level_per_ns - p[2]), p[1], p[2], p[3]])


def _start(counts: np.ndarray, axis: DelayAxis, period_ns: float, start: PulsedG2, zero_ns: float,
           level_per_ns: float | None) -> tuple[list, tuple[list, list]]:
    floor = max(float(np.percentile(counts, 5)), 0.0) / axis.width_ns
    g2 = min(max(start.g2_zero, 0.01), 5.0)
    if level_per_ns is not None:
        return ([g2, period_ns / 4, min(floor, 0.5 * level_per_ns), zero_ns],
                ([0.0, axis.width_ns / 4, 0.0, zero_ns - period_ns / 2],
                 [10.0, 50 * period_ns, level_per_ns, zero_ns + period_ns / 2]))
    return ([g2, max(start.side, 1.0), period_ns / 4, floor, zero_ns],
            ([0.0, 0.0, axis.width_ns / 4, 0.0, zero_ns - period_ns / 2],
             [10.0, np.inf, 50 * period_ns, np.inf, zero_ns + period_ns / 2]))


def _fisher_inverse(parameters: np.ndarray, full, edges: np.ndarray, period_ns: float) -> np.ndarray:
    """``I^-1`` of Poisson counts with means ``pulsed_model(full(p))`` (``I = J^T diag(1/m) J``, ``J = dm/dp`` by
    central differences)."""
    model = np.maximum(pulsed_model(full(parameters), edges, period_ns), 1e-12)
    columns = []
    for index, value in enumerate(parameters):
        step = 1e-6 * max(abs(value), 1e-3)
        up, down = parameters.copy(), parameters.copy()
        up[index], down[index] = value + step, value - step
        columns.append((pulsed_model(full(up), edges, period_ns) - pulsed_model(full(down), edges, period_ns))
                       / (2 * step))
    jacobian = np.stack(columns, axis=1)
    return np.linalg.pinv(jacobian.T @ (jacobian / model[:, None]))


def pulsed_g2(counts: np.ndarray, axis: DelayAxis, period_ns: float, *, window_ns: float | None = None,
              side_peaks: int = 4, method: str = "auto", zero_ns: float = 0.0,
              level_per_ns: float | None = None) -> PulsedG2:
    """Pulsed g2(0) of one histogram ``(K,)`` on ``axis`` for a laser period ``period_ns``.

    ``window_ns`` (default: the period) around each ``k period + zero_ns``; ``side_peaks`` per side;
    ``method``: ``windows``, ``fit`` or ``auto`` (module docstring); ``level_per_ns``: the singles' uncorrelated
    pair density ``N1 N2 / T`` per ns, which ties the fit's areas (:func:`fit_pulsed_model`). ``ValueError`` for a window wider
    than the period, side peaks beyond the axis, no side counts, or an unknown method.
    """
    if method not in PULSED_METHODS:
        raise ValueError(f"method must be one of {PULSED_METHODS}, got {method!r}")
    window_ns = period_ns if window_ns is None else window_ns
    windows = windows_g2(counts, axis, period_ns, window_ns, side_peaks, zero_ns)
    if method == "windows":
        return windows
    fit = fit_pulsed_model(counts, axis, period_ns, windows, zero_ns, level_per_ns)
    return fit if method == "fit" or fit.overlap > OVERLAP_LIMIT else PulsedG2(**{**windows.__dict__,
                                                                                   "lifetime_ns": fit.lifetime_ns,
                                                                                   "overlap": fit.overlap})


def pulsed_axis(period_ns: float, side_peaks: int = 4, bins_per_period: int = 250) -> DelayAxis:
    """A delay axis with a bin centred on 0 over at least ``+-(side_peaks + 1/2)`` periods, ``bins_per_period``
    bins per period (one bin more when that count is even, to centre one on 0)."""
    if not math.isfinite(period_ns) or period_ns <= 0:
        raise ValueError(f"the repetition period must be a positive number of ns, got {period_ns}")
    bins = (2 * side_peaks + 1) * bins_per_period | 1
    return DelayAxis(bins=bins, span_ns=bins * period_ns / bins_per_period, first_ns=-(bins // 2) * period_ns / bins_per_period)
