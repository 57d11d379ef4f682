"""Poisson maximum-likelihood fits of HBT histograms: g2(0), lifetimes, zero delay, jitter, with refusals.

Model of the counts in bin ``k`` (centre ``tau_k`` ns, width ``w``): ``A`` times the bin average of the
measured curve of :mod:`qml_imaging.physics.g2_model`, i.e. the three-level curve of paper 002 (Eq. 3)

    g2(tau) = 1 - a1 exp(-|tau - tau0| / t1) + a2 exp(-|tau - tau0| / t2)

convolved with a Gaussian timing jitter of standard deviation ``s`` ns (the instrument response;
``jitter_ns``: a number, 0 for none, or ``"fit"``). ``A`` (uncorrelated coincidences per bin) is
given (``baseline``: from the singles ``N1 N2 w / T``, or the tails) or fitted; ``tau0`` (the zero
delay: cable and electronic delays put the dip anywhere) is fitted (a :class:`DelayOffsetWarning`
when it sits more than 3 sigma and half a bin from the axis zero) or given. Ranges and starts come
from the axis and the histogram, from sub-nanosecond to microsecond lifetimes; the bunching term is
kept only when the likelihood asks for it (Akaike); see :mod:`qml_imaging.physics.g2_search` for the
likelihood, the starts and the covariance (inverse Fisher information).

Reported per histogram: the emitter's ``g2(0) = 1 - a1 + a2`` (deconvolved from the jitter) and the
measured curve's value at the zero delay beside it, ``a1, t1, a2, t2``, the jitter, the zero delay and
the baseline, each with its 1-sigma uncertainty (0 for given values), and the reduced deviance
(deviance / degrees of freedom; about 1 for a model that describes the data, a little below at a
few counts per bin).

**Never a silent wrong number**: :attr:`G2Fit.status` is ``""`` for a measurement, otherwise one line
``"<reason>: <fix>"`` and the values are not a measurement. Refused are: dark histograms (fewer than
``dark_threshold`` coincidences, or a known baseline of 0; g2(0) = 1 and uncertainty ``inf`` by the
convention the paper's CNN is trained with); a histogram without a significant dip (against a flat line,
:func:`_no_dip`); a fit with a parameter at a bound of its range (the zero
delay at an end of the axis, ``t1`` as wide as the window or below a tenth of a bin, no dip, g2(0)
pushed below ``-(1 + a2) / 2``, bunching at its largest amplitude or as fast as the antibunching, the
jitter at half the window); an infinite uncertainty of g2(0); a fitted baseline the window cannot
identify (:func:`_unidentified_baseline`: bunching above :data:`BASELINE_TAIL_TOLERANCE` of it at the far
end of the window fits the data); and a poor fit (reduced deviance above :data:`POOR_FIT_RATIO` and the excess over the degrees
of freedom above :data:`POOR_FIT_Z` of its standard deviation ``sqrt(2 dof)``).
Pixels are independent fits: the g2 pipelines split them into chunks, one grid task each
(:mod:`qml_imaging.pipelines.g2.lm`); :meth:`G2Fit.concat` joins the chunks.

NumPy and SciPy only (no torch import: ``g2 fit`` of a lab file loads no torch). Histograms and baselines
may be NumPy arrays or torch tensors (the training pipelines pass tensors): both are read as float64
(:mod:`qml_imaging.physics.array_checks`), and :class:`G2Fit` holds NumPy arrays, which a torch caller turns
into tensors with ``torch.from_numpy`` (float64 and bool, no copy).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np

from qml_imaging.physics import g2_search as search
from qml_imaging.physics.array_checks import count, real_array, real_number
from qml_imaging.physics.coincidences import check_counts
from qml_imaging.physics.delay_axis import DelayAxis

if TYPE_CHECKING:
    import torch

DARK_THRESHOLD = 4
BASELINE_TAIL_TOLERANCE = 0.01
"""A fitted baseline is refused when the fitted bunching ``a2 exp(-D / t2)`` at the window's far end
(``D`` the largest distance from the dip to an end of the axis) exceeds this share of it."""
POOR_FIT_RATIO = 1.5
POOR_FIT_Z = 5.0
MAX_COUNT = 1e12
"""Largest count per bin accepted as a coincidence count (1e6 counts/s for 1e6 s in one bin)."""
SAMPLINGS = ("bin", "centre")
UNRESOLVED_JITTER_BINS = 2.0
"""A fitted jitter below half a bin enters the covariance at this many bins (see :func:`_resolvable`)."""
PARAMETERS = ("a1", "t1_ns", "a2", "t2_ns", "jitter_ns")
"""Columns of :attr:`G2Fit.parameters`: amplitudes, lifetimes (ns, ``t2 = 0`` without bunching), jitter (ns)."""


class DelayOffsetWarning(UserWarning):
    """The fitted zero delay sits far from the axis zero (a channel delay the data did not correct)."""


@dataclass(frozen=True)
class G2Fit:
    """Per-histogram results as NumPy arrays, each ``(B,)`` float64 unless stated: the emitter's ``g2_zero`` and its 1-sigma
    ``uncertainty`` (``inf`` for dark pixels), ``converged`` (bool), the zero delay ``tau0`` (ns) and its
    uncertainty, the baseline ``A`` (counts per bin) and its uncertainty, ``parameters`` ``(B, 5)`` and
    ``parameter_uncertainty`` ``(B, 5)`` (columns :data:`PARAMETERS`), the measured curve's value at the zero
    delay ``g2_measured_zero`` and its uncertainty, ``reduced_deviance``, ``bunching`` (bool: the bunching
    term was kept), and ``status`` (a tuple of ``B`` strings: ``""`` for a measurement, else why not)."""

    g2_zero: np.ndarray
    uncertainty: np.ndarray
    converged: np.ndarray
    zero_delay_ns: np.ndarray
    zero_delay_uncertainty: np.ndarray
    baseline: np.ndarray
    baseline_uncertainty: np.ndarray
    parameters: np.ndarray
    parameter_uncertainty: np.ndarray
    g2_measured_zero: np.ndarray
    g2_measured_uncertainty: np.ndarray
    reduced_deviance: np.ndarray
    bunching: np.ndarray
    status: tuple[str, ...]

    @property
    def measured(self) -> np.ndarray:
        """``(B,)`` bool: which histograms gave a measurement (empty status)."""
        return np.array([not s for s in self.status], dtype=bool)

    @classmethod
    def concat(cls, parts: list[G2Fit]) -> G2Fit:
        """The fits of consecutive chunks of histograms joined in order."""
        return cls(*(sum((p.status for p in parts), ()) if f.name == "status"
                     else np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)))

    def row(self, i: int) -> dict[str, object]:
        """Histogram ``i`` as a flat dict (the columns of ``g2 fit``'s CSV); a refused fit's g2(0) is left empty."""
        values = {"g2": float(self.g2_zero[i]), "sigma": float(self.uncertainty[i]),
                  "g2_measured": float(self.g2_measured_zero[i]), "g2_measured_sigma": float(self.g2_measured_uncertainty[i])}
        if self.status[i]:
            values = dict.fromkeys(values, "")
        for k, name in enumerate(PARAMETERS):
            values[name] = float(self.parameters[i, k])
            values[f"{name}_sigma"] = float(self.parameter_uncertainty[i, k])
        values.update({"zero_delay_ns": float(self.zero_delay_ns[i]), "zero_delay_sigma": float(self.zero_delay_uncertainty[i]),
                       "baseline": float(self.baseline[i]), "baseline_sigma": float(self.baseline_uncertainty[i]),
                       "reduced_deviance": float(self.reduced_deviance[i]), "bunching": bool(self.bunching[i]),
                       "converged": bool(self.converged[i]), "status": self.status[i]})
        return values


def fit_g2(histograms: np.ndarray | torch.Tensor, axis: DelayAxis = DelayAxis(), *,
           baseline: np.ndarray | torch.Tensor | None = None,
           zero_delay_ns: float | str = "fit", jitter_ns: float | str = 0.0, sampling: str = "bin",
           dark_threshold: int = DARK_THRESHOLD) -> G2Fit:
    """Fit every histogram ``(B, bins)`` on ``axis``; ``baseline`` ``(B,)``: known uncorrelated counts per bin (else fitted).

    ``histograms`` (a NumPy array or a torch tensor) are checked by
    :func:`~qml_imaging.physics.coincidences.check_counts` (integer and float32 counts converted to float64) and must stay below :data:`MAX_COUNT` per bin; the axis needs more bins than
    fitted coordinates (4 to 8). ``baseline``: one finite value >= 0 per histogram (integers converted
    to float64); 0 marks a pixel without light, whose histogram must be empty. ``zero_delay_ns``:
    ``"fit"`` or the zero delay in ns (between the first and the last bin centre). ``jitter_ns``: the
    Gaussian timing jitter (standard deviation, ns, >= 0) or ``"fit"``. ``sampling``: ``"bin"`` (each count
    integrates its bin: measured histograms) or ``"centre"`` (the curve at the bin centre: the simulator of
    :mod:`qml_imaging.physics.hbt`). ``dark_threshold``: integer >= 0.
    ``TypeError`` for bools / wrong kinds, ``ValueError`` for wrong values, each naming the argument;
    a :class:`DelayOffsetWarning` when a fitted dip is off the axis zero. Refusals are per histogram, in
    :attr:`G2Fit.status` (see the module docstring).
    """
    if not isinstance(axis, DelayAxis):
        raise TypeError(f"axis must be a DelayAxis, got {type(axis).__name__}")
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
    zero = _choice("zero_delay_ns", zero_delay_ns)
    jitter = _choice("jitter_ns", jitter_ns)
    if jitter < 0:
        raise ValueError(f"jitter_ns must be >= 0 ns (the timing jitter's standard deviation) or 'fit', got {jitter:g}")
    needed = 4 + (baseline is None) + math.isnan(zero) + math.isnan(jitter)
    if axis.bins <= needed:
        raise ValueError(f"axis has {axis.bins} bins; the fit needs more than {needed} (one per fitted coordinate)")
    dark_threshold = count("dark_threshold", dark_threshold, minimum=0)
    counts = check_counts(histograms, axis.bins)
    if counts.max() > MAX_COUNT:
        raise ValueError(f"histograms hold {counts.max():.3g} counts in a bin; coincidence counts above {MAX_COUNT:.0e} "
                         f"per bin are not plausible: check which column holds the counts")
    tau = axis.centres_ns()
    if not math.isnan(zero) and not tau.min() <= zero <= tau.max():
        raise ValueError(f"zero_delay_ns {zero:g} ns is outside the delay axis ({tau.min():g} .. {tau.max():g} ns)")
    known = _known_baselines(baseline, counts, dark_threshold)
    rows = [_fit_one(search.Setup(row, tau, axis.width_ns, known_one, zero, jitter, sampling == "centre"), dark_threshold)
            for row, known_one in zip(counts, known, strict=True)]
    fit = _assemble(rows)
    if math.isnan(zero):
        _warn_offsets(fit, axis)
    return fit


def _choice(name: str, value: float | str) -> float:
    """A number, or NaN for ``"fit"``."""
    if isinstance(value, str):
        if value != "fit":
            raise ValueError(f"{name} must be 'fit' or a number of ns, got {value!r}")
        return math.nan
    return real_number(name, value)


def _known_baselines(baseline: np.ndarray | torch.Tensor | None, counts: np.ndarray, dark_threshold: int) -> np.ndarray:
    if baseline is None:
        return np.full(len(counts), np.nan)
    given = real_array("baseline", baseline, integer_ok=True, ndim=(0, 1), allow_empty=True,
                       expected=f"({len(counts)},): one value per histogram")
    known = given.reshape(-1)
    if known.shape != (len(counts),):
        raise ValueError(f"baseline must hold one value per histogram ({len(counts)}), got shape {given.shape}")
    if np.any(known < 0):
        raise ValueError(f"baseline must be >= 0 (uncorrelated coincidences per bin), smallest is {known.min():g}")
    lit = (known == 0) & (counts.sum(1) >= dark_threshold)
    if np.any(lit):
        first = int(np.flatnonzero(lit)[0])
        raise ValueError(f"histogram {first} has baseline 0 (no light) but {counts[first].sum():g} coincidences "
                         f"(>= dark_threshold {dark_threshold}); a zero baseline is only valid for a dark pixel")
    return known


def _dark(setup: search.Setup, status: str) -> dict:
    fitted_zero, fitted_baseline = math.isnan(setup.zero), math.isnan(setup.baseline)
    return {"g2": 1.0, "sigma": math.inf, "converged": False, "tau0": 0.0 if fitted_zero else setup.zero,
            "tau0_sigma": math.inf if fitted_zero else 0.0, "A": 0.0 if fitted_baseline else setup.baseline,
            "A_sigma": math.inf if fitted_baseline else 0.0, "parameters": [0.0] * 5, "parameter_sigma": [math.inf] * 5,
            "measured": 1.0, "measured_sigma": math.inf, "reduced_deviance": 0.0, "bunching": False, "status": status}


def _fit_one(setup: search.Setup, dark_threshold: int) -> dict:
    """One histogram's row (see :func:`_assemble`)."""
    events = float(setup.counts.sum())
    if events < dark_threshold or setup.baseline == 0:
        return _dark(setup, f"dark: {events:.0f} coincidences (fewer than {dark_threshold}) or no light: nothing to fit")
    ranges = search.estimate(setup)
    solution, bunched = search.search(setup, ranges)
    if solution is None:
        return _dark(setup, "the fit found no finite optimum: check that the file holds raw coincidence counts")
    theta = search.physical(solution.u, ranges)
    names = [name for name, free in zip(search.NAMES, solution.free, strict=True) if free]
    informed = _resolvable(theta, setup)
    fisher = search.fisher_information(setup, ranges, informed, names)

    def sigma(function) -> float:
        variance = search.projected_variance(fisher, search.gradient_of(function, informed, names, setup.width))
        return math.sqrt(variance) if math.isfinite(variance) and variance >= 0 else math.inf

    def own(name: str) -> float:
        return sigma(lambda t: t[name]) if name in names else 0.0

    dof = max(len(setup.counts) - len(names), 1)
    row = {"g2": 1.0 - theta["a1"] + theta["a2"], "sigma": sigma(lambda t: 1.0 - t["a1"] + t["a2"]),
           "converged": solution.converged, "tau0": theta["tau0"] if math.isnan(setup.zero) else setup.zero, "tau0_sigma": own("tau0"), "A": theta["A"],
           "A_sigma": own("A"), "measured": search.measured_zero(theta), "measured_sigma": sigma(search.measured_zero),
           "reduced_deviance": solution.deviance / dof, "bunching": solution.bunching,
           "parameters": [theta["a1"], theta["t1"], theta["a2"], theta["t2"] if solution.bunching else 0.0, theta["jitter"]],
           "parameter_sigma": [own(name) for name in ("a1", "t1", "a2", "t2", "jitter")]}
    row["status"] = _verdict(setup, ranges, solution, bunched, row, dof)
    return row


BOUNDS = {
    ("tau0", "low"): "the zero delay runs to an end of the delay axis, so the dip is not on it: give the zero delay "
                     "(--zero NS) or record a window with the dip inside",
    ("t1", "high"): "the antibunching dip is as wide as the delay window (t1 at its bound, the window's half-width): "
                    "record a window several t1 wide",
    ("t1", "low"): "the dip is narrower than the bins resolve (t1 at its bound, a tenth of a bin): use finer bins, or "
                   "give the timing jitter (--jitter NS) if the dip is the instrument's",
    ("depth", "low"): "no antibunching dip (a1 at 0): check the channels, the delay axis and the zero delay",
    ("depth", "high"): "the fit puts g2(0) far below 0 (dip depth at its bound): check the baseline (--baseline singles) "
                       "and the background",
    ("a2", "high"): "the bunching amplitude runs to its bound (20): the baseline is far too low; give the singles "
                    "counts or check the file's rates and times",
    ("ratio", "low"): "bunching as fast as the antibunching (t2 at 1.2 t1): the two cannot be separated; give the "
                      "baseline from the singles counts or record longer",
    ("jitter", "high"): "the fitted timing jitter runs to half the window: give the jitter measured on a laser "
                        "(--jitter NS) or record a wider window",
}
BOUNDS[("tau0", "high")] = BOUNDS[("tau0", "low")]


def _resolvable(theta: dict, setup: search.Setup) -> dict:
    """``theta`` with a fitted jitter below half a bin (unresolved: the fit pins it near its lower bound) replaced by
    :data:`UNRESOLVED_JITTER_BINS` bins for the covariance. At 0 the jitter's information vanishes (the curve moves
    as ``s^2``), which would report g2(0)'s uncertainty as if the jitter were known to be 0; a jitter of a couple of
    bins is what such a histogram cannot exclude (quantum dots, 10 ps bins, 40 ps jitter: 2-sigma coverage 88 %
    without this, ``benchmarks/g2_fit_classes.py``)."""
    if not math.isnan(setup.jitter) or theta["jitter"] >= 0.5 * setup.width:
        return theta
    return {**theta, "jitter": UNRESOLVED_JITTER_BINS * setup.width}


def _verdict(setup: search.Setup, ranges: search.Ranges, solution: search.Solution, bunched: search.Solution | None,
             row: dict, dof: int) -> str:
    """``""`` for a measurement, else the first reason (with its fix) why the fit is not one."""
    for bound in search.at_bounds(solution):
        if bound in BOUNDS:
            return f"parameter at a bound: {BOUNDS[bound]}"
    checks = (_no_dip(setup, solution), _undetermined(row), _unidentified_baseline(setup, ranges, solution, bunched),
              _poor_fit(row, dof))
    return next((reason for reason in checks if reason), "")


def _no_dip(setup: search.Setup, solution: search.Solution) -> str:
    """The dip must lower the deviance below a flat line by more than ``ln K`` per parameter it adds (``a1``, ``t1``,
    a fitted zero delay and jitter; Schwarz's criterion, which also pays for searching the dip over ``K`` bins)."""
    flat = float(np.sum(search.deviance_residuals(np.full(len(setup.counts), _flat_level(setup)), setup.counts) ** 2))
    needed = (2 + math.isnan(setup.zero) + math.isnan(setup.jitter)) * math.log(len(setup.counts))
    if flat - solution.deviance > needed:
        return ""
    return (f"no antibunching dip: the dip lowers the deviance by only {flat - solution.deviance:.1f} below a flat line "
            f"(it must exceed {needed:.0f}), so the histogram holds no measurable dip: record longer, check the two "
            f"channels, and keep the zero delay inside the window")


def _flat_level(setup: search.Setup) -> float:
    return setup.baseline if not math.isnan(setup.baseline) else max(float(setup.counts.mean()), 1e-12)


def _undetermined(row: dict) -> str:
    if math.isfinite(row["sigma"]):
        return ""
    return ("g2(0) is not determined by this histogram (infinite uncertainty: the parameters it depends on trade "
            "off): record longer, give the baseline from the singles counts, or give the jitter")


def _unidentified_baseline(setup: search.Setup, ranges: search.Ranges, solution: search.Solution,
                           bunched: search.Solution | None) -> str:
    """A fitted baseline is refused when bunching that reaches the end of the window (more than
    :data:`BASELINE_TAIL_TOLERANCE` of the baseline there) lowers the deviance by more than ``ln K``: the data
    then cannot tell the baseline from slow bunching, even when the bunching term was not kept."""
    if not math.isnan(setup.baseline) or bunched is None:
        return ""
    theta = search.physical(bunched.u, ranges)
    edge = theta["a2"] * math.exp(-ranges.reach / theta["t2"])
    if edge <= BASELINE_TAIL_TOLERANCE or bunched.gain <= math.log(len(setup.counts)):
        return ""
    return (f"baseline not identifiable: bunching still {100 * edge:.1f} % of the baseline at the end of the window "
            f"fits the data (t2 = {theta['t2']:.3g} ns, the window reaches {ranges.reach:.3g} ns from the dip), so "
            f"baseline and bunching trade off: give the singles counts (--baseline singles) or record a window "
            f"reaching several t2 past the dip")


def _poor_fit(row: dict, dof: int) -> str:
    deviance = row["reduced_deviance"] * dof
    if row["reduced_deviance"] <= POOR_FIT_RATIO or deviance - dof <= POOR_FIT_Z * math.sqrt(2 * dof):
        return ""
    return (f"poor fit: the model leaves a deviance of {deviance:.0f} on {dof} degrees of freedom "
            f"({row['reduced_deviance']:.2f} per degree): check the delay unit and axis, the background, or fit "
            f"the timing jitter (--jitter fit)")


def _assemble(rows: list[dict]) -> G2Fit:
    def column(key: str, dtype: type = np.float64) -> np.ndarray:
        return np.array([row[key] for row in rows], dtype=dtype)

    return G2Fit(column("g2"), column("sigma"), column("converged", bool), column("tau0"), column("tau0_sigma"),
                 column("A"), column("A_sigma"), column("parameters"), column("parameter_sigma"), column("measured"),
                 column("measured_sigma"), column("reduced_deviance"), column("bunching", bool),
                 tuple(row["status"] for row in rows))


def _warn_offsets(fit: G2Fit, axis: DelayAxis) -> None:
    """One :class:`DelayOffsetWarning` naming the histograms whose fitted dip is off the axis zero."""
    tau0, sigma = fit.zero_delay_ns, fit.zero_delay_uncertainty
    off = np.isfinite(sigma) & (np.abs(tau0) > 3 * sigma) & (np.abs(tau0) > axis.width_ns / 2) & fit.measured
    if not off.any():
        return
    first = int(np.flatnonzero(off)[0])
    warnings.warn(f"the fitted dip of {int(off.sum())} of {len(tau0)} histograms is off the axis zero (first: "
                  f"histogram {first}, tau0 = {tau0[first]:.2f} +- {sigma[first]:.2f} ns); g2(0) is read at the fitted "
                  f"dip. A delay between the channels shifts it: correct the axis, or give zero_delay_ns",
                  DelayOffsetWarning, stacklevel=3)
