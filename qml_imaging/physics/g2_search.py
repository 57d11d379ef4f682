"""One histogram's Poisson maximum-likelihood fit: ranges and starts from the data, two models, the covariance.

Used by :func:`qml_imaging.physics.g2_fit.fit_g2` (which documents the model and the refusals). Steps:

1. **Estimates from the data**: the uncorrelated level (the given baseline, else the mean of the bins
   farther than 60 % of the window from the dip), the dip (minimum of the histogram smoothed over
   enough bins to hold about 50 counts), its depth and half-depth width, hence a start ``t1`` of
   ``half-width / ln 2`` (the half-depth point of ``1 - a1 exp(-|tau| / t1)``).
2. **Ranges from the axis** (bin width ``w``, largest distance ``H`` from the dip to an end of the axis):
   ``t1`` in ``[w / 10, H]``, ``t2 / t1`` in ``[1.2, 1e6]``, ``a2`` in ``[0, 20]``, ``a1 = d (1 + a2)`` with
   the relative dip depth ``d`` in ``[0, 1.5]`` (so the emitter's ``g2(0) = (1 + a2)(1 - d)`` may fall
   below 0 by up to half its plateau: an unbiased estimate of a g2(0) near 0 needs room on both sides),
   ``tau0`` on the axis, a fitted jitter in ``[w / 20, H / 2]``, ``A`` in ``(0, inf)``. They are built into
   the coordinates (logistic and log-logistic maps), so MINPACK's unbounded Levenberg-Marquardt
   (``scipy.optimize.least_squares(method="lm")``) can run; a coordinate whose map is within 1e-3 of
   either end is *at its bound*.
3. **Poisson likelihood**: the residuals are the signed deviance residuals
   ``sign(n - mu) sqrt(2 (mu - n + n log(n / mu)))``, whose sum of squares is the Poisson deviance
   (McCullagh & Nelder, *Generalized Linear Models*, 1989, Sec. 2.4), so least squares on them is the
   maximum-likelihood fit.
4. **Two models, several starts**: without bunching (``a2 = 0``) from ``t1`` and ``t1 / 3`` at each zero-delay
   start (the axis zero and the smoothed minimum), then with bunching from the best of those with
   ``t2 = 8 t1`` and ``t2 = H / 2``. Bunching is kept when it lowers the deviance by more than 4 (Akaike's
   criterion for its two more parameters) and its fit is not pinned at ``a2 = 0`` or ``t2 = 1.2 t1``.
5. **Covariance**: the inverse Fisher information ``F = J^T diag(1 / mu) J`` (``J = d mu / d theta`` by
   central differences in the physical parameters ``theta``) at the optimum; a quantity ``q`` gets
   ``g^T F^+ g`` (``g = d q / d theta``), or ``inf`` when ``g`` reaches into the null space of ``F``
   (the data do not determine it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import least_squares
from scipy.special import xlogy

from qml_imaging.physics.g2_model import binned_curve, g2_curve, subpoints_for

NAMES = ("A", "a1", "t1", "a2", "t2", "tau0", "jitter")
"""Physical parameters: uncorrelated counts per bin, antibunching and bunching amplitudes and lifetimes (ns),
zero delay (ns), Gaussian timing jitter (ns)."""
DEPTH_MAX = 1.5
A2_MAX = 20.0
RATIO_RANGE = (1.2, 1e6)
AT_BOUND = 1e-3
BUNCHING_DEVIANCE = 4.0
"""Deviance drop that keeps the bunching term (Akaike: 2 per added parameter, ``a2`` and ``t2``). Schwarz's
stricter ``ln K`` per parameter drops real bunching with ``t2`` near ``t1`` (NV, t2 = 2.5 t1: g2(0) then comes out
0.02-0.03 low, with a sigma that assumes a2 = 0); noise that adds bunching mostly pins it (``_degenerate``)."""
SMOOTHING_COUNTS = 50.0
INFORMATION_FLOOR = 1e-2
"""Bins whose expected count is below this share of the baseline count as this share in the Fisher information:
a Poisson mean at the boundary 0 (a perfect emitter's dip) does not follow the Fisher expansion, whose ``1 / mu``
would report an uncertainty far below the scatter."""


@dataclass(frozen=True)
class Setup:
    """One histogram's fixed inputs: ``baseline``, ``zero``, ``jitter`` are NaN when fitted; ``centre``: the counts
    sample the curve at the bin centres (the simulator of :mod:`qml_imaging.physics.hbt`) instead of averaging it."""

    counts: np.ndarray
    tau: np.ndarray
    width: float
    baseline: float
    zero: float
    jitter: float
    centre: bool = False


@dataclass(frozen=True)
class Ranges:
    """Ranges of the bounded coordinates and what the data suggest as starts."""

    t1: tuple[float, float]
    jitter: tuple[float, float]
    zero: tuple[float, float]
    level: float
    depth: float
    t1_start: float
    zero_starts: tuple[float, ...]
    reach: float
    subpoints: int
    given_jitter: float


@dataclass(frozen=True)
class Solution:
    """A fitted model: all seven coordinates ``u``, which are free, whether bunching is in, the deviance."""

    u: np.ndarray
    free: np.ndarray
    bunching: bool
    deviance: float
    converged: bool
    gain: float = 0.0
    """For a fit with bunching: how much it lowers the deviance below the best fit without."""


def _s(u):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(u, dtype=np.float64)))


def _logit(p: float) -> float:
    p = min(max(p, 1e-9), 1 - 1e-9)
    return math.log(p / (1.0 - p))


def _log_between(u: float, low: float, high: float) -> float:
    return math.exp(math.log(low) + (math.log(high) - math.log(low)) * float(_s(u)))


def _log_coordinate(value: float, low: float, high: float) -> float:
    return _logit((math.log(min(max(value, low), high)) - math.log(low)) / (math.log(high) - math.log(low)))


def physical(u: np.ndarray, ranges: Ranges) -> dict[str, float]:
    """The seven physical parameters of coordinates ``u`` (``(7,)``: log A, depth, t1, a2, t2 / t1, tau0, jitter)."""
    a2 = A2_MAX * float(_s(u[3]))
    t1 = _log_between(u[2], *ranges.t1)
    low, high = ranges.zero
    return {"A": math.exp(min(float(u[0]), 700.0)), "a1": DEPTH_MAX * float(_s(u[1])) * (1.0 + a2), "t1": t1,
            "a2": a2, "t2": t1 * _log_between(u[4], *RATIO_RANGE), "tau0": low + (high - low) * float(_s(u[5])),
            "jitter": ranges.given_jitter if not math.isnan(ranges.given_jitter) else _log_between(u[6], *ranges.jitter)}


def expected(setup: Setup, ranges: Ranges, theta: dict[str, float]) -> np.ndarray:
    """Expected counts per bin ``(K,)`` for physical parameters ``theta``."""
    curve = binned_curve(setup.tau, setup.width, ranges.subpoints, theta["tau0"], theta["a1"], theta["t1"],
                         theta["a2"], theta["t2"], theta["jitter"])
    return theta["A"] * curve


def deviance_residuals(mu: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Signed Poisson deviance residuals of counts ``n`` against means ``mu`` (both ``(K,)``, ``mu > 0``)."""
    term = mu - counts + xlogy(counts, counts) - xlogy(counts, mu)
    return np.sign(counts - mu) * np.sqrt(2.0 * np.maximum(term, 0.0))


def _moving_average(values: np.ndarray, size: int) -> np.ndarray:
    """Mean over ``size`` (odd) neighbouring bins, the ends continued by their edge values (what
    ``scipy.ndimage.uniform_filter1d(mode="nearest")`` computes, here as exact sums: scipy.ndimage costs about
    0.5 s to import, more than a whole fit)."""
    half = size // 2
    return np.convolve(np.pad(values, half, mode="edge"), np.ones(size), mode="valid") / size


def estimate(setup: Setup) -> Ranges:
    """Levels, dip position, depth and width of one histogram, and the coordinate ranges they imply."""
    counts, tau, width = setup.counts, setup.tau, setup.width
    window = int(min(max(1, math.ceil(SMOOTHING_COUNTS / max(counts.mean(), 1e-9))), max(1, len(tau) // 8)))
    smooth = _moving_average(counts, window | 1)
    inner = slice(window, len(tau) - window) if len(tau) > 4 * window else slice(None)
    guess = float(tau[inner][int(np.argmin(smooth[inner]))])
    centre = 0.0 if tau.min() <= 0.0 <= tau.max() else float(tau[len(tau) // 2])
    if not math.isnan(setup.zero):
        starts, anchor = (setup.zero,), setup.zero
    else:
        starts = (centre,) if abs(guess - centre) < 2 * width else (centre, guess)
        anchor = starts[-1]
    distance = np.abs(tau - anchor)
    level = setup.baseline if not math.isnan(setup.baseline) else max(counts[distance > 0.6 * distance.max()].mean(), 1e-3)
    bottom = float(smooth[int(np.argmin(np.abs(tau - anchor)))])
    depth = min(max(1.0 - bottom / level, 0.05), 1.2)
    half_width = _half_depth_width(smooth, tau, anchor, level * (1.0 - depth / 2), width)
    reach = float(distance.max())
    t1_start = min(max(half_width / math.log(2.0), width / 2), reach / 2)
    return Ranges(t1=(width / 10, reach), jitter=(width / 20, reach / 2), zero=(float(tau.min()), float(tau.max())),
                  level=float(level), depth=depth, t1_start=t1_start, zero_starts=starts, reach=reach,
                  subpoints=1 if setup.centre else subpoints_for(width, t1_start), given_jitter=setup.jitter)


def _half_depth_width(smooth: np.ndarray, tau: np.ndarray, anchor: float, half_level: float, width: float) -> float:
    """Mean distance from ``anchor`` to the first bins on each side whose smoothed count reaches ``half_level``."""
    sides = []
    for side in (tau >= anchor, tau <= anchor):
        distance = np.abs(tau[side] - anchor)
        above = smooth[side][np.argsort(distance)] >= half_level
        sorted_distance = np.sort(distance)
        if above.any():
            sides.append(float(sorted_distance[int(np.argmax(above))]))
    return float(np.mean(sides)) if sides else width


def _free_mask(setup: Setup, bunching: bool) -> np.ndarray:
    return np.array([math.isnan(setup.baseline), True, True, bunching, bunching, math.isnan(setup.zero),
                     math.isnan(setup.jitter)])


def _fixed(setup: Setup, ranges: Ranges) -> np.ndarray:
    """Coordinates of everything not fitted: the given baseline, ``a2 = 0``, the given zero delay (a given jitter
    is read from ``ranges.given_jitter``)."""
    zero = 0.0 if math.isnan(setup.zero) else _zero_coordinate(setup.zero, ranges)
    level = math.log(ranges.level) if math.isnan(setup.baseline) else math.log(setup.baseline)
    return np.array([level, 0.0, 0.0, -math.inf, 0.0, zero, 0.0])


def _zero_coordinate(zero: float, ranges: Ranges) -> float:
    low, high = ranges.zero
    return _logit((zero - low) / (high - low))


def _run(setup: Setup, ranges: Ranges, start: np.ndarray, free: np.ndarray, bunching: bool) -> Solution | None:
    """One Levenberg-Marquardt run from the full coordinates ``start``; ``None`` when it ends non-finite."""
    base = start.copy()

    def residuals(fitted: np.ndarray) -> np.ndarray:
        full = base.copy()
        full[free] = fitted
        return deviance_residuals(expected(setup, ranges, physical(full, ranges)), setup.counts)

    result = least_squares(residuals, start[free], method="lm", max_nfev=150 * (int(free.sum()) + 1))
    if not np.all(np.isfinite(result.x)) or not np.isfinite(result.cost):
        return None
    full = base.copy()
    full[free] = result.x
    return Solution(full, free, bunching, 2.0 * float(result.cost), bool(result.success))


def _best(solutions) -> Solution | None:
    found = [s for s in solutions if s is not None]
    return min(found, key=lambda s: s.deviance) if found else None


def search(setup: Setup, ranges: Ranges) -> tuple[Solution | None, Solution | None]:
    """``(chosen, with bunching)``: the maximum-likelihood solution over the starts and the two models (see the
    module docstring), and the best fit with bunching whether chosen or not (``None`` when it failed or is
    pinned at a bound), which :func:`qml_imaging.physics.g2_fit.fit_g2` asks whether a fitted baseline can be
    told from slow bunching."""
    fixed = _fixed(setup, ranges)
    free = _free_mask(setup, False)
    plain = []
    for zero in ranges.zero_starts:
        for t1 in (ranges.t1_start, ranges.t1_start / 3):
            start = fixed.copy()
            start[1], start[2] = _logit(ranges.depth / DEPTH_MAX), _log_coordinate(t1, *ranges.t1)
            if free[5]:
                start[5] = _zero_coordinate(zero, ranges)
            plain.append(_run(setup, ranges, start, free, False))
    simple = _best(plain)
    if simple is None:
        return None, None
    t1 = physical(simple.u, ranges)["t1"]
    bunched = []
    for ratio in (8.0, max(2.0, ranges.reach / (2 * t1))):
        start = simple.u.copy()
        start[3], start[4] = _logit(0.2 / A2_MAX), _log_coordinate(ratio, *RATIO_RANGE)
        bunched.append(_run(setup, ranges, start, _free_mask(setup, True), True))
    rich = _best(bunched)
    if rich is None or _degenerate(rich):
        return simple, None
    rich = replace(rich, gain=simple.deviance - rich.deviance)
    return (rich if rich.gain > BUNCHING_DEVIANCE else simple), rich


def _degenerate(solution: Solution) -> bool:
    """Bunching that the fit pins at no amplitude or at the antibunching's own time is no bunching model."""
    return any(bound in (("a2", "low"), ("ratio", "low")) for bound in at_bounds(solution))


def at_bounds(solution: Solution) -> list[tuple[str, str]]:
    """``(coordinate, "low" | "high")`` for each free bounded coordinate within :data:`AT_BOUND` of an end."""
    names = ("A", "depth", "t1", "a2", "ratio", "tau0", "jitter")
    found = []
    for index in np.flatnonzero(solution.free):
        if index == 0:
            continue
        share = float(_s(solution.u[index]))
        if share < AT_BOUND:
            found.append((names[index], "low"))
        elif share > 1 - AT_BOUND:
            found.append((names[index], "high"))
    return found


def fisher_information(setup: Setup, ranges: Ranges, theta: dict[str, float], names: list[str]) -> np.ndarray:
    """``F = J^T diag(1 / max(mu, INFORMATION_FLOOR A)) J`` over the physical parameters ``names`` (central differences)."""
    mu = expected(setup, ranges, theta)
    columns = [_derivative(lambda t: expected(setup, ranges, t), theta, name, setup.width) for name in names]
    jacobian = np.stack(columns, axis=1)
    return jacobian.T @ (jacobian / np.maximum(mu, INFORMATION_FLOOR * theta["A"])[:, None])


def _derivative(function, theta: dict[str, float], name: str, width: float) -> np.ndarray:
    scale = {"A": theta["A"], "t1": theta["t1"], "t2": theta["t2"], "tau0": width, "jitter": max(theta["jitter"], width)}
    step = 1e-5 * max(abs(theta[name]), scale.get(name, 1.0))
    up, down = dict(theta), dict(theta)
    up[name] += step
    down[name] -= step
    return (function(up) - function(down)) / (2 * step)


def gradient_of(function, theta: dict[str, float], names: list[str], width: float) -> np.ndarray:
    """``d function / d theta`` over ``names`` for a scalar ``function`` of the physical parameters."""
    return np.array([float(_derivative(lambda t: np.asarray(function(t)), theta, name, width)) for name in names])


def projected_variance(fisher: np.ndarray, gradient: np.ndarray) -> float:
    """``g^T F^+ g``, or ``inf`` when ``g`` has a component in the (numerical) null space of ``F``."""
    scale = np.sqrt(np.maximum(np.diag(fisher), 0.0))
    informed = scale > 0
    if np.any(np.abs(gradient[~informed]) > 0):
        return math.inf
    normed = fisher[np.ix_(informed, informed)] / np.outer(scale[informed], scale[informed])
    g = gradient[informed] / scale[informed]
    values, vectors = np.linalg.eigh(normed)
    keep = values > 1e-10 * max(values.max(), 1e-300)
    along = vectors.T @ g
    if np.linalg.norm(along[~keep]) > 1e-6 * max(np.linalg.norm(g), 1e-300):
        return math.inf
    return float(np.sum(along[keep] ** 2 / values[keep]))


def measured_zero(theta: dict[str, float]) -> float:
    """The measured (jitter-convolved) curve's value at the zero delay."""
    return float(g2_curve(np.array([theta["tau0"]]), theta["tau0"], theta["a1"], theta["t1"], theta["a2"],
                          theta["t2"], theta["jitter"])[0])
