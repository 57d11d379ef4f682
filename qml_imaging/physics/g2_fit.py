"""Levenberg-Marquardt fits of HBT histograms: g2(0) and its uncertainty, batched over pixels.

Model of the counts in bin ``k`` (centre ``tau_k``): ``A * g2(tau_k)`` with the three-level curve of
:mod:`qml_imaging.physics.hbt` and the zero-delay bin known (the delay axis is fixed). ``A``, the
uncorrelated coincidences per bin, is the standard HBT normalisation ``efficiency * R1 * R2 * w * T``
from the singles counts when ``baseline`` is given (the paper fits only ``a1, t1, a2, t2``);
otherwise it is fitted too, which is ill-posed when ``t2`` is long compared with the delay window
(bunching and baseline trade off). MINPACK's
L-M (``scipy.optimize.least_squares(method="lm")``) has no bounds, so the physical ranges are built
into the parameterisation: ``A = exp(u0)``, ``a1 = 2 s(u1)``, ``a2 = s(u3)`` and the lifetimes
``t1``, ``t2`` log-uniformly squashed into ``T1_RANGE_NS`` and ``T2_RANGE_NS`` (``s`` the logistic
function). Without this, sparse histograms send ``a1`` and ``a2`` to large cancelling values.
Plain least squares on the counts, multi-start over lifetime guesses; the lowest cost wins.

``g2(0) = 1 - a1 + a2``; its uncertainty is ``sqrt(g^T C g)`` with ``g = d g2(0) / d u`` and ``C``
the Poisson sandwich covariance of the least-squares fit (the counts near zero delay, which decide
g2(0), have less variance than the average bin, so ``s^2 (J^T J)^-1`` would overstate it). Histograms with fewer than
``dark_threshold`` events are "dark": g2(0) = 1 (the convention the paper's CNN is trained with),
uncertainty infinite; so are pixels whose known baseline is 0 (no light: zero singles rate), which
must then hold no coincidences. Pixels are fitted in parallel processes when ``workers > 1``.
"""

from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import least_squares

from qml_imaging.physics.checks import count, real_tensor
from qml_imaging.physics.hbt import DelayAxis, check_histograms

DARK_THRESHOLD = 4
LIFETIME_STARTS_NS = ((15.0, 200.0), (40.0, 400.0), (90.0, 800.0))
"""(t1, t2) start guesses in ns, spanning the 10-100 ns lifetimes of NV centres."""
T1_RANGE_NS = (1.0, 300.0)
T2_RANGE_NS = (50.0, 5000.0)
MAX_EVALUATIONS = 600


@dataclass(frozen=True)
class G2Fit:
    """Per-histogram results, each ``(B,)`` float64: g2(0), its 1-sigma uncertainty, and whether L-M converged."""

    g2_zero: torch.Tensor
    uncertainty: torch.Tensor
    converged: torch.Tensor


def fit_g2(histograms: torch.Tensor, axis: DelayAxis = DelayAxis(), *, baseline: torch.Tensor | None = None,
           dark_threshold: int = DARK_THRESHOLD, workers: int = 1) -> G2Fit:
    """Fit every histogram ``(B, bins)``; ``baseline`` ``(B,)``: known uncorrelated counts per bin (else fitted).

    ``histograms`` are checked by :func:`~qml_imaging.physics.hbt.check_histograms` (integer counts
    converted to float64); the axis needs at least 5 bins (MINPACK's L-M needs as many residuals as
    the up to 5 fitted coordinates). ``baseline``: a real tensor (integers converted to float64) of
    one finite value >= 0 per histogram; 0 marks a pixel without light, whose histogram must be
    empty (it is dark: g2(0) = 1). ``dark_threshold``: integer >= 0; ``workers``: integer >= 1.
    ``TypeError`` for bools / wrong kinds, ``ValueError`` for wrong values, each naming the argument.
    """
    if not isinstance(axis, DelayAxis):
        raise TypeError(f"axis must be a DelayAxis, got {type(axis).__name__}")
    if axis.bins < 5:
        raise ValueError(f"axis has {axis.bins} bins; the L-M fit needs at least 5 (one per fitted coordinate)")
    dark_threshold = count("dark_threshold", dark_threshold, minimum=0)
    workers = count("workers", workers)
    counts = check_histograms(histograms, axis.bins).numpy()
    tau = axis.centres().numpy()
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
    if workers > 1 and len(counts) > 1:
        chunks = np.array_split(np.arange(len(counts)), workers)
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(_fit_many, [counts[c] for c in chunks], [known[c] for c in chunks], [tau] * len(chunks),
                                  [dark_threshold] * len(chunks)))
        results = np.concatenate(parts)
    else:
        results = _fit_many(counts, known, tau, dark_threshold)
    return G2Fit(torch.from_numpy(results[:, 0]), torch.from_numpy(results[:, 1]), torch.from_numpy(results[:, 2] > 0))


def _fit_many(counts: np.ndarray, baselines: np.ndarray, tau: np.ndarray, dark_threshold: int) -> np.ndarray:
    return np.array([_fit_one(row, baseline, tau, dark_threshold) for row, baseline in zip(counts, baselines, strict=True)]).reshape(-1, 3)


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


def _physical(u: np.ndarray) -> tuple[float, float, float, float, float]:
    """``(A, a1, t1, a2, t2)`` of the unbounded coordinates ``u``."""
    return (math.exp(min(u[0], 50.0)), 2.0 * float(_logistic(u[1])), _lifetime(u[2], T1_RANGE_NS),
            float(_logistic(u[3])), _lifetime(u[4], T2_RANGE_NS))


def _model(u: np.ndarray, tau: np.ndarray) -> np.ndarray:
    amplitude, a1, t1, a2, t2 = _physical(u)
    distance = np.abs(tau)
    return amplitude * (1.0 - a1 * np.exp(-distance / t1) + a2 * np.exp(-distance / t2))


def _fit_one(counts: np.ndarray, baseline: float, tau: np.ndarray, dark_threshold: int) -> tuple[float, float, float]:
    """``(g2(0), uncertainty, converged)`` of one histogram; ``baseline`` NaN = fit it."""
    if counts.sum() < dark_threshold or baseline == 0:
        return 1.0, math.inf, 1.0
    fitted_baseline = math.isnan(baseline)
    far = np.abs(tau) > 0.6 * np.abs(tau).max()
    amplitude = max(counts[far].mean(), counts.mean(), 1e-3) if fitted_baseline else baseline
    free = np.array([fitted_baseline, True, True, True, True])

    def coordinates(fitted: np.ndarray) -> np.ndarray:
        """All five coordinates, the known baseline's ``log A`` put back in."""
        return fitted if fitted_baseline else np.concatenate([[math.log(amplitude)], fitted])

    def residuals(fitted: np.ndarray) -> np.ndarray:
        return _model(coordinates(fitted), tau) - counts

    best = None
    for t1, t2 in LIFETIME_STARTS_NS:
        start = np.array([math.log(amplitude), _logit(0.35), _lifetime_coordinate(t1, T1_RANGE_NS), _logit(0.1),
                          _lifetime_coordinate(t2, T2_RANGE_NS)])
        result = least_squares(residuals, start[free], method="lm", max_nfev=MAX_EVALUATIONS)
        if np.all(np.isfinite(result.x)) and (best is None or result.cost < best.cost):
            best = result
    if best is None:
        return math.nan, math.inf, 0.0
    u = coordinates(best.x)
    _, a1, _, a2, _ = _physical(u)
    return 1.0 - a1 + a2, _uncertainty(u, best.jac, _model(u, tau), free), float(best.success)


def _uncertainty(u: np.ndarray, jacobian: np.ndarray, expected: np.ndarray, free: np.ndarray) -> float:
    """1-sigma of ``1 - a1 + a2`` over the fitted coordinates ``free``.

    The fit is unweighted least squares while the counts are Poisson with means ``expected``
    (``(points,)``, the fitted model), so the covariance is the sandwich
    ``(J^T J)^-1 J^T diag(expected) J (J^T J)^-1``; ``jacobian`` ``(points, free.sum())`` is the
    residuals' Jacobian at the optimum. Coordinates whose column is zero (saturated) are left out.
    """
    s1, s3 = float(_logistic(u[1])), float(_logistic(u[3]))
    gradient = np.array([0.0, -2.0 * s1 * (1.0 - s1), 0.0, s3 * (1.0 - s3), 0.0])[free]
    moving = np.any(jacobian != 0, axis=0)
    jacobian, gradient = jacobian[:, moving], gradient[moving]
    try:
        bread = np.linalg.inv(jacobian.T @ jacobian)
    except np.linalg.LinAlgError:
        return math.inf
    covariance = bread @ (jacobian.T @ (np.clip(expected, 0.0, None)[:, None] * jacobian)) @ bread
    variance = float(gradient @ covariance @ gradient)
    return math.sqrt(variance) if variance >= 0 else math.inf
