"""Levenberg-Marquardt fits of HBT histograms: g2(0), the zero delay and their uncertainties, batched over pixels.

Model of the counts in bin ``k`` (centre ``tau_k`` ns): ``A * g2(tau_k - tau0)`` with the three-level
curve of :mod:`qml_imaging.physics.hbt` (paper 002, Eq. 3). ``tau0`` is the zero delay on the
histogram's axis (cable and electronic delays between the two channels put the dip anywhere):
fitted (``zero_delay_ns="fit"``, the default, reported with its uncertainty; a
:class:`DelayOffsetWarning` when it sits more than 3 sigma and half a bin from the axis zero) or
given (``zero_delay_ns=<ns>``: the simulator's axes, or a delay fitted once on a long or summed
measurement, which sparse histograms should use: their dip is too faint to place). ``A``, the
uncorrelated coincidences per bin, is given (``baseline``: from the singles counts ``N1 N2 w / T``,
:func:`~qml_imaging.physics.hbt.baseline_from_singles`, or the tails; the paper fits only
``a1, t1, a2, t2``) or fitted. A fitted ``A`` is ill-posed when bunching (``a2 exp(-|tau| / t2)``)
has not decayed inside the delay window: baseline and bunching trade off and g2(0) is biased (by
+0.1 at 300 events per bin with t2 = 100-300 ns on a 500 ns window). Such fits are refused: when the
fitted bunching left at the far end of the window exceeds :data:`BASELINE_TAIL_TOLERANCE` of the
baseline, :class:`BaselineNotIdentifiable` (a ``ValueError``) names the histograms and the fixes
(give the singles counts, or record a window reaching several ``t2`` past the dip).

MINPACK's L-M (``scipy.optimize.least_squares(method="lm")``) has no bounds, so the physical ranges
are built into the parameterisation: ``A = exp(u0)``, ``a1 = 2 s(u1)``, ``a2 = s(u3)`` and the
lifetimes ``t1``, ``t2`` log-uniformly squashed into ``T1_RANGE_NS`` and ``T2_RANGE_NS`` (``s`` the
logistic function); ``tau0`` is in ns, unbounded. Without this, sparse histograms send ``a1`` and
``a2`` to large cancelling values. Plain least squares on the counts, multi-start over lifetime
guesses (and, for a fitted zero delay, over the axis zero and the minimum of the smoothed
histogram); the lowest cost wins.

``g2(0) = 1 - a1 + a2``; its uncertainty is ``sqrt(g^T C g)`` with ``g = d g2(0) / d u`` and ``C``
the Poisson sandwich covariance of the least-squares fit (the counts near zero delay, which decide
g2(0), have less variance than the average bin, so ``s^2 (J^T J)^-1`` would overstate it); the
same ``C`` gives the uncertainties of ``tau0`` and ``A``. Histograms with fewer than
``dark_threshold`` events are "dark": g2(0) = 1 (the convention the paper's CNN is trained with),
uncertainty infinite, never NaN; so are pixels whose known baseline is 0 (no light: zero singles
rate), which must then hold no coincidences. Pixels are independent fits: the g2 pipelines split
them into chunks, one grid task each, to fit them on Ray (:mod:`qml_imaging.pipelines.g2.lm`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import least_squares

from qml_imaging.physics.checks import count, real_number, real_tensor
from qml_imaging.physics.hbt import DelayAxis, check_histograms

DARK_THRESHOLD = 4
LIFETIME_STARTS_NS = ((15.0, 200.0), (40.0, 400.0), (90.0, 800.0))
"""(t1, t2) start guesses in ns, spanning the 10-100 ns lifetimes of NV centres."""
T1_RANGE_NS = (1.0, 300.0)
T2_RANGE_NS = (50.0, 5000.0)
MAX_EVALUATIONS = 600
SATURATED_GRADIENT = 1e-9
"""Derivatives (per unbounded coordinate) below this count as zero for a coordinate pinned at its bound."""
BASELINE_TAIL_TOLERANCE = 0.01
"""A fitted baseline is refused when the fitted bunching ``a2 exp(-D / t2)`` at the window's far end
(``D`` the largest distance from the dip to an end of the axis) exceeds this share of it."""


class DelayOffsetWarning(UserWarning):
    """The fitted zero delay sits far from the axis zero (a channel delay the data did not correct)."""


class BaselineNotIdentifiable(ValueError):
    """A fitted-baseline fit whose bunching has not decayed inside the delay window (baseline and bunching trade off)."""


@dataclass(frozen=True)
class G2Fit:
    """Per-histogram results, each ``(B,)``: g2(0) and its 1-sigma uncertainty (float64; ``inf`` for
    dark pixels), whether L-M converged (bool), the zero delay ``tau0`` in ns on the histogram's axis
    and its uncertainty (0 when given, ``inf`` for dark pixels), and the uncorrelated level per bin
    ``A`` (counts; given or fitted) and its uncertainty (0 when given)."""

    g2_zero: torch.Tensor
    uncertainty: torch.Tensor
    converged: torch.Tensor
    zero_delay_ns: torch.Tensor
    zero_delay_uncertainty: torch.Tensor
    baseline: torch.Tensor
    baseline_uncertainty: torch.Tensor


def fit_g2(histograms: torch.Tensor, axis: DelayAxis = DelayAxis(), *, baseline: torch.Tensor | None = None,
           zero_delay_ns: float | str = "fit", dark_threshold: int = DARK_THRESHOLD) -> G2Fit:
    """Fit every histogram ``(B, bins)`` on ``axis``; ``baseline`` ``(B,)``: known uncorrelated counts per bin (else fitted).

    ``histograms`` are checked by :func:`~qml_imaging.physics.hbt.check_histograms` (integer counts
    converted to float64); the axis needs at least as many bins as fitted coordinates (4 to 6; MINPACK's
    L-M needs as many residuals). ``baseline``: a real tensor (integers converted to float64) of
    one finite value >= 0 per histogram; 0 marks a pixel without light, whose histogram must be
    empty (it is dark: g2(0) = 1). ``zero_delay_ns``: ``"fit"`` or the zero delay in ns on the
    axis (a finite number between the first and the last bin centre). ``dark_threshold``: integer >= 0.
    ``TypeError`` for bools / wrong kinds, ``ValueError`` for wrong values, each naming the argument;
    :class:`BaselineNotIdentifiable` (a ``ValueError``) when a fitted baseline cannot be separated
    from bunching in this window; a :class:`DelayOffsetWarning` when a fitted dip is off the axis zero.
    """
    if not isinstance(axis, DelayAxis):
        raise TypeError(f"axis must be a DelayAxis, got {type(axis).__name__}")
    if isinstance(zero_delay_ns, str):
        if zero_delay_ns != "fit":
            raise ValueError(f"zero_delay_ns must be 'fit' or a number of ns, got {zero_delay_ns!r}")
        zero = math.nan
    else:
        zero = real_number("zero_delay_ns", zero_delay_ns)
    needed = 4 + (baseline is None) + math.isnan(zero)
    if axis.bins < needed:
        raise ValueError(f"axis has {axis.bins} bins; the L-M fit needs at least {needed} (one per fitted coordinate)")
    dark_threshold = count("dark_threshold", dark_threshold, minimum=0)
    counts = check_histograms(histograms, axis.bins).numpy()
    tau = axis.centres().numpy()
    if not math.isnan(zero) and not tau.min() <= zero <= tau.max():
        raise ValueError(f"zero_delay_ns {zero:g} ns is outside the delay axis ({tau.min():g} .. {tau.max():g} ns)")
    if baseline is None:
        known = np.full(len(counts), np.nan)
    else:
        known_tensor = real_tensor("baseline", baseline, integer_ok=True, dtype=torch.float64, ndim=(0, 1),
                                   allow_empty=True, expected=f"({len(counts)},): one value per histogram")
        known = known_tensor.reshape(-1).numpy()
        if known.shape != (len(counts),):
            raise ValueError(f"baseline must hold one value per histogram ({len(counts)}), got shape {tuple(known_tensor.shape)}")
        if np.any(known < 0):
            raise ValueError(f"baseline must be >= 0 (uncorrelated coincidences per bin), smallest is {known.min():g}")
        lit = (known == 0) & (counts.sum(1) >= dark_threshold)
        if np.any(lit):
            first = int(np.flatnonzero(lit)[0])
            raise ValueError(f"histogram {first} has baseline 0 (no light) but {counts[first].sum():g} coincidences "
                             f"(>= dark_threshold {dark_threshold}); a zero baseline is only valid for a dark pixel")
    options = (tau, zero, dark_threshold, axis.width_ns)
    results = _fit_many(counts, known, options)
    if baseline is None:
        _refuse_unidentified(results, tau)
    if math.isnan(zero):
        _warn_offsets(results, axis)
    column = lambda k: torch.from_numpy(np.ascontiguousarray(results[:, k]))  # noqa: E731
    return G2Fit(column(0), column(1), column(2) > 0, column(3), column(4), column(5), column(6))


def _refuse_unidentified(results: np.ndarray, tau: np.ndarray) -> None:
    """Raise :class:`BaselineNotIdentifiable` for fitted-baseline fits whose bunching outlasts the window."""
    edge = results[:, 7]
    bad = np.flatnonzero(edge > BASELINE_TAIL_TOLERANCE)
    if len(bad) == 0:
        return
    first = int(bad[0])
    reach = float(max(results[first, 3] - tau.min(), tau.max() - results[first, 3]))
    raise BaselineNotIdentifiable(
        f"fitted-baseline g2(0) refused for {len(bad)} of {len(results)} histograms (first: histogram {first}): the "
        f"fitted bunching is still {100 * edge[first]:.1f} % of the baseline at the end of the delay window "
        f"(t2 = {results[first, 8]:.0f} ns fitted, the window reaches {reach:.0f} ns from the dip), so baseline and "
        f"bunching trade off and g2(0) would be biased; give the baseline from the singles counts "
        f"(physics.hbt.baseline_from_singles: N1 N2 w / T) or record a delay window reaching several t2 past the dip")


def _warn_offsets(results: np.ndarray, axis: DelayAxis) -> None:
    """One :class:`DelayOffsetWarning` naming the histograms whose fitted dip is off the axis zero."""
    tau0, sigma = results[:, 3], results[:, 4]
    off = np.isfinite(sigma) & (np.abs(tau0) > 3 * sigma) & (np.abs(tau0) > axis.width_ns / 2)
    if not off.any():
        return
    first = int(np.flatnonzero(off)[0])
    warnings.warn(f"the fitted dip of {int(off.sum())} of {len(results)} histograms is off the axis zero (first: "
                  f"histogram {first}, tau0 = {tau0[first]:.2f} +- {sigma[first]:.2f} ns); g2(0) is read at the fitted "
                  f"dip. A delay between the channels shifts it: correct the axis, or give zero_delay_ns",
                  DelayOffsetWarning, stacklevel=3)


def _fit_many(counts: np.ndarray, baselines: np.ndarray, options: tuple) -> np.ndarray:
    return np.array([_fit_one(row, baseline, *options) for row, baseline in zip(counts, baselines, strict=True)]
                    ).reshape(-1, 9)


def _logistic(u: np.ndarray | float) -> np.ndarray | float:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(u)))


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _lifetime(u: float, bounds: tuple[float, float]) -> float:
    low, high = math.log(bounds[0]), math.log(bounds[1])
    return math.exp(low + (high - low) * float(_logistic(u)))


def _lifetime_coordinate(t: float, bounds: tuple[float, float]) -> float:
    low, high = math.log(bounds[0]), math.log(bounds[1])
    return _logit((math.log(t) - low) / (high - low))


def _physical(u: np.ndarray) -> tuple[float, float, float, float, float, float]:
    """``(A, a1, t1, a2, t2, tau0)`` of the unbounded coordinates ``u``."""
    return (math.exp(min(u[0], 50.0)), 2.0 * float(_logistic(u[1])), _lifetime(u[2], T1_RANGE_NS),
            float(_logistic(u[3])), _lifetime(u[4], T2_RANGE_NS), float(u[5]))


def _model(u: np.ndarray, tau: np.ndarray) -> np.ndarray:
    amplitude, a1, t1, a2, t2, tau0 = _physical(u)
    distance = np.abs(tau - tau0)
    return amplitude * (1.0 - a1 * np.exp(-distance / t1) + a2 * np.exp(-distance / t2))


def _dip_guess(counts: np.ndarray, tau: np.ndarray, width_ns: float) -> float:
    """Delay (ns) of the minimum of the histogram smoothed over about 10 ns, away from the axis ends."""
    window = max(3, round(10.0 / width_ns) | 1)
    smooth = np.convolve(counts, np.ones(window) / window, mode="same")
    inner = slice(window, len(counts) - window) if len(counts) > 3 * window else slice(None)
    return float(tau[inner][int(np.argmin(smooth[inner]))])


def _fit_one(counts: np.ndarray, baseline: float, tau: np.ndarray, zero: float, dark_threshold: int,
             width_ns: float) -> tuple[float, ...]:
    """``(g2(0), sigma, converged, tau0, sigma_tau0, A, sigma_A, edge bunching, t2)`` of one histogram.

    ``baseline`` NaN = fit it; ``zero`` NaN = fit the zero delay. ``edge bunching`` is the fitted
    ``a2 exp(-D / t2)`` at the window's far end for a fitted baseline (0 otherwise)."""
    fit_zero, fitted_baseline = math.isnan(zero), math.isnan(baseline)
    if counts.sum() < dark_threshold or baseline == 0:
        return (1.0, math.inf, 1.0, 0.0 if fit_zero else zero, math.inf if fit_zero else 0.0,
                0.0 if fitted_baseline else baseline, math.inf if fitted_baseline else 0.0, 0.0, 0.0)
    zero_starts = [zero]
    if fit_zero:
        centre = 0.0 if tau.min() <= 0.0 <= tau.max() else float(tau[len(tau) // 2])
        guess = _dip_guess(counts, tau, width_ns)
        zero_starts = [centre] if abs(guess - centre) < 2 * width_ns else [centre, guess]
        anchor = zero_starts[-1]
    else:
        anchor = zero
    far = np.abs(tau - anchor) > 0.6 * np.abs(tau - anchor).max()
    amplitude = max(counts[far].mean(), counts.mean(), 1e-3) if fitted_baseline else baseline
    free = np.array([fitted_baseline, True, True, True, True, fit_zero])

    def coordinates(fitted: np.ndarray, tau0: float) -> np.ndarray:
        """All six coordinates, the known baseline's ``log A`` and a given zero delay put back in."""
        full = np.empty(6)
        full[free] = fitted
        if not fitted_baseline:
            full[0] = math.log(amplitude)
        if not fit_zero:
            full[5] = tau0
        return full

    best, best_zero = None, zero
    for tau0 in zero_starts:
        def residuals(fitted: np.ndarray, tau0: float = tau0) -> np.ndarray:
            return _model(coordinates(fitted, tau0), tau) - counts

        for t1, t2 in LIFETIME_STARTS_NS:
            start = np.array([math.log(amplitude), _logit(0.35), _lifetime_coordinate(t1, T1_RANGE_NS), _logit(0.1),
                              _lifetime_coordinate(t2, T2_RANGE_NS), tau0])
            result = least_squares(residuals, start[free], method="lm", max_nfev=MAX_EVALUATIONS)
            if np.all(np.isfinite(result.x)) and (best is None or result.cost < best.cost):
                best, best_zero = result, tau0
    if best is None:
        return (1.0, math.inf, 0.0, 0.0 if fit_zero else zero, math.inf, amplitude, math.inf, 0.0, 0.0)
    u = coordinates(best.x, best_zero)
    fitted_amplitude, a1, _, a2, t2, tau0 = _physical(u)
    sigma_g2, sigma_zero, sigma_amplitude = _uncertainty(u, best.jac, _model(u, tau), free)
    edge = a2 * math.exp(-max(tau0 - tau.min(), tau.max() - tau0) / t2) if fitted_baseline else 0.0
    return (1.0 - a1 + a2, sigma_g2, float(best.success), tau0, sigma_zero if fit_zero else 0.0,
            fitted_amplitude, sigma_amplitude if fitted_baseline else 0.0, edge, t2)


def _uncertainty(u: np.ndarray, jacobian: np.ndarray, expected: np.ndarray, free: np.ndarray) -> tuple[float, float, float]:
    """1-sigma of ``1 - a1 + a2``, of ``tau0`` and of ``A`` over the fitted coordinates ``free``.

    The fit is unweighted least squares while the counts are Poisson with means ``expected``
    (``(points,)``, the fitted model), so the covariance is the sandwich
    ``(J^T J)^-1 J^T diag(expected) J (J^T J)^-1``; ``jacobian`` ``(points, free.sum())`` is the
    residuals' Jacobian at the optimum. Coordinates whose column is zero (saturated) are left out: a
    quantity that still moves with one of them is reported as ``inf``; one whose derivative along it is
    below :data:`SATURATED_GRADIENT` (a bunching amplitude ``a2`` pinned at 0, where ``d g2 / d u3 = s (1 - s)``
    is round-off) gets the uncertainty conditional on that bound.
    """
    s1, s3 = float(_logistic(u[1])), float(_logistic(u[3]))
    gradients = np.array([[0.0, -2.0 * s1 * (1.0 - s1), 0.0, s3 * (1.0 - s3), 0.0, 0.0],
                          [0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
                          [math.exp(min(u[0], 50.0)), 0.0, 0.0, 0.0, 0.0, 0.0]])[:, free]
    moving = np.any(jacobian != 0, axis=0)
    jacobian = jacobian[:, moving]
    try:
        bread = np.linalg.inv(jacobian.T @ jacobian)
    except np.linalg.LinAlgError:
        return math.inf, math.inf, math.inf
    covariance = bread @ (jacobian.T @ (np.clip(expected, 0.0, None)[:, None] * jacobian)) @ bread
    sigmas = []
    for gradient in gradients:
        if np.any(np.abs(gradient[~moving]) > SATURATED_GRADIENT):
            sigmas.append(math.inf)
            continue
        variance = float(gradient[moving] @ covariance @ gradient[moving])
        sigmas.append(math.sqrt(variance) if variance >= 0 else math.inf)
    return sigmas[0], sigmas[1], sigmas[2]
