"""Hanbury Brown-Twiss (HBT) coincidence histograms of single-photon emitters (paper 002).

Delay axis: ``bins`` equal bins spanning ``[-span/2, span/2]`` ns (default 215 bins over 500 ns),
so bin ``bins // 2`` is centred on zero delay (the "known zero-delay bin"). Measured histograms
have any bin width and span, and their zero delay (where the dip sits: cable and electronic delays
between the channels) need not be a bin centre: ``DelayAxis(bins, span_ns, first_ns=...)`` or
:meth:`DelayAxis.from_centres` describe them, and :func:`~qml_imaging.physics.g2_fit.fit_g2` fits
the zero-delay position (or takes it given).

Normalisation (the uncorrelated level per bin, "baseline"): from singles counts,
``N1 N2 w / T`` (:func:`baseline_from_singles`; all-pairs coincidences of two independent Poisson
streams), else from the histogram's tails (:func:`baseline_from_tails`, with its Poisson
uncertainty; biased high when bunching reaches the tails). Background: with ``rho = S / (S + B)``,
``g2_true(0) = 1 - (1 - g2_measured(0)) / rho^2`` (:func:`correct_background`; Brouri et al.,
Opt. Lett. 25, 1294 (2000), Eq. 1 inverted). These count-arithmetic functions (and
:func:`check_histograms`) are the torch faces of :mod:`qml_imaging.physics.coincidences`, which computes
them in NumPy for the lab-file path (``g2 fit`` imports no torch); they return float64 tensors.

Three-level emitter model (Eq. 3 of the paper), ``tau`` in ns:

    g2(tau) = 1 - a1 exp(-|tau| / t1) + a2 exp(-|tau| / t2),   g2(0) = 1 - a1 + a2.

Mixtures: independent emitters with shares ``p_i`` of the detected light (the rest, if any, is
uncorrelated background with g2 = 1) give ``g2(tau) = 1 - sum_i p_i^2 (1 - g2_i(tau))``. Hence
``n`` equal emitters give ``g2(0) = 1 - 1/n`` and background with ``rho = S / (S + B)`` gives
``g2_measured(0) = 1 - rho^2 (1 - g2_true(0))``. A mixture of emitters with the same lifetimes is
again a three-level curve with ``a1, a2`` scaled by ``sum_i p_i^2``.

Counts: with singles rates ``R`` (counts/s per detector) a bin of width ``w`` collects
``efficiency * R^2 * w * g2(tau)`` coincidences per second. ``efficiency`` (start-stop losses,
detector efficiency) defaults to 0.0122, calibrated so that an emitter at 1e5 counts/s fills a 1 s
histogram with 61 events, the paper's largest (its 1 s histograms hold 1.2 to 61). Histograms are
Poisson draws of that mean times the acquisition time; a T-second histogram is the bin-wise sum of
T one-second histograms (the paper's augmentation), which has the same distribution.

Checks: every public function checks its arguments at the boundary (:mod:`qml_imaging.physics.checks`):
``TypeError`` for bools where counts are expected and for integer / bool / complex tensors where
real values are needed (histogram counts excepted: integer counts are converted to float64),
``ValueError`` for shapes, empty batches, NaN / inf and unphysical values (negative rates or
times, non-positive lifetimes, negative amplitudes), each naming the argument.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from qml_imaging.physics import coincidences
from qml_imaging.physics.checks import count, real_number, real_tensor
from qml_imaging.physics.delay_axis import DEFAULT_BINS, DEFAULT_SPAN_NS, DelayAxis  # noqa: F401  (torch-free home)
from qml_imaging.physics.settings import DEFAULT_EFFICIENCY


def three_level_g2(tau: torch.Tensor, a1: torch.Tensor, t1: torch.Tensor, a2: torch.Tensor, t2: torch.Tensor) -> torch.Tensor:
    """Eq. 3 at delays ``tau`` ``(K,)`` ns for parameter tensors of shape ``(B,)``: returns ``(B, K)``.

    All floating tensors of one dtype (``TypeError`` otherwise), finite, non-empty; ``t1``, ``t2`` > 0.
    """
    tau = real_tensor("tau", tau, ndim=1, expected="(K,) delays in ns")
    a1, t1, a2, t2 = _parameter_columns(a1=a1, t1=t1, a2=a2, t2=t2)
    if tau.dtype != a1.dtype:
        raise TypeError(f"tau ({tau.dtype}) and the parameters ({a1.dtype}) must share one dtype; convert them first")
    tau = tau.abs()
    return (1.0 - a1[:, None] * torch.exp(-tau / t1[:, None]) + a2[:, None] * torch.exp(-tau / t2[:, None]))


def mixture_share_factor(shares: torch.Tensor) -> torch.Tensor:
    """``sum_i p_i^2`` over the last axis of emitter light shares ``(..., n)`` (background = the missing share).

    ``shares``: a floating tensor with at least one dimension, finite, non-empty; ``ValueError``
    when a share is negative or a row sums above 1.
    """
    shares = real_tensor("shares", shares, min_ndim=1, expected="(..., n) light shares")
    if (shares < 0).any() or (shares.sum(-1) > 1 + 1e-9).any():
        raise ValueError("emitter shares must be >= 0 and sum to at most 1 (the rest is background)")
    return shares.pow(2).sum(-1)


@dataclass(frozen=True)
class EmitterParameters:
    """Effective three-level parameters of what one pixel sees, each ``(B,)``; rates in counts/s per detector."""

    a1: torch.Tensor
    t1: torch.Tensor
    a2: torch.Tensor
    t2: torch.Tensor
    rate: torch.Tensor

    def __post_init__(self) -> None:
        """Check (and never cast) the five fields: floating ``(B,)`` tensors of one dtype and length, finite,
        ``a1, a2 >= 0``, ``t1, t2 > 0`` ns, ``rate >= 0`` counts/s."""
        _parameter_columns(a1=self.a1, t1=self.t1, a2=self.a2, t2=self.t2, rate=self.rate)

    @property
    def g2_zero(self) -> torch.Tensor:
        return 1.0 - self.a1 + self.a2

    def mixed(self, share_factor: torch.Tensor) -> EmitterParameters:
        """The curve seen when these emitters' antibunching is diluted by ``sum p_i^2`` (``()`` or ``(B,)``, in [0, 1])."""
        share_factor = real_tensor("share_factor", share_factor, ndim=(0, 1), nonnegative=True,
                                   expected="() or (B,) sums of squared light shares")
        if share_factor.ndim == 1 and share_factor.shape != self.a1.shape:
            raise ValueError(f"share_factor must be a number or have shape {tuple(self.a1.shape)}, "
                             f"got {tuple(share_factor.shape)}")
        if (share_factor > 1 + 1e-9).any():
            raise ValueError(f"share_factor must be <= 1 (a sum of squared shares), got {share_factor.max().item():.6g}")
        return EmitterParameters(self.a1 * share_factor, self.t1, self.a2 * share_factor, self.t2, self.rate)


def _parameter_columns(**columns: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Check three-level parameters: floating ``(B,)`` tensors of one dtype and length, finite, signs as documented."""
    checked = {}
    for name, value in columns.items():
        checked[name] = real_tensor(name, value, ndim=1, positive=name in ("t1", "t2"),
                                    nonnegative=name in ("a1", "a2", "rate"), expected="(B,)")
    lengths = {name: len(value) for name, value in checked.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"three-level parameters must all have shape (B,) with one B, got lengths {lengths}")
    dtypes = {name: value.dtype for name, value in checked.items()}
    if len(set(dtypes.values())) > 1:
        raise TypeError(f"three-level parameters must share one dtype, got {dtypes}")
    return tuple(checked.values())


def _check_acquisition(parameters: EmitterParameters, seconds: float | torch.Tensor, axis: DelayAxis,
                       efficiency: float) -> torch.Tensor:
    if not isinstance(parameters, EmitterParameters):
        raise TypeError(f"parameters must be EmitterParameters, got {type(parameters).__name__}")
    if not isinstance(axis, DelayAxis):
        raise TypeError(f"axis must be a DelayAxis, got {type(axis).__name__}")
    real_number("efficiency", efficiency, positive=True)
    if efficiency > 1:
        raise ValueError(f"efficiency must be in (0, 1], got {efficiency}")
    seconds = real_tensor("seconds", seconds, dtype=torch.float64, integer_ok=True, positive=True,
                          expected="(acquisition time in s: a number or one per histogram)")
    if seconds.ndim > 1 or (seconds.ndim == 1 and seconds.shape != parameters.rate.shape):
        raise ValueError(f"seconds must be a number or one value per histogram {tuple(parameters.rate.shape)}, "
                         f"got shape {tuple(seconds.shape)}")
    return seconds


def uncorrelated_baseline(parameters: EmitterParameters, seconds: float | torch.Tensor, axis: DelayAxis = DelayAxis(),
                          efficiency: float = DEFAULT_EFFICIENCY) -> torch.Tensor:
    """Coincidences per bin ``(B,)`` (float64) that uncorrelated light at the singles rates would give.

    The standard HBT normalisation ``efficiency * R^2 * w * T`` (singles rate ``R`` counts/s per
    detector, bin width ``w`` s, acquisition ``T`` s; the normalisation of g2 by uncorrelated
    coincidences, e.g. Fox, *Quantum Optics*, 2006, Ch. 6): the baseline that L-M fits with a known
    baseline use, and the scale of :func:`expected_histogram`. ``seconds``: a number or ``(B,)``, > 0.
    """
    seconds = _check_acquisition(parameters, seconds, axis, efficiency)
    width_s = axis.width_ns * 1e-9
    return efficiency * parameters.rate.to(torch.float64) ** 2 * width_s * seconds


def expected_histogram(parameters: EmitterParameters, seconds: float | torch.Tensor, axis: DelayAxis = DelayAxis(),
                       efficiency: float = DEFAULT_EFFICIENCY) -> torch.Tensor:
    """Mean coincidences per bin ``(B, bins)`` (float64) after ``seconds`` (number or ``(B,)``, > 0) of acquisition:
    :func:`uncorrelated_baseline` times Eq. 3 (clamped at 0)."""
    scale = uncorrelated_baseline(parameters, seconds, axis, efficiency)
    g2 = three_level_g2(axis.centres(parameters.a1.dtype), parameters.a1, parameters.t1, parameters.a2, parameters.t2)
    return scale.reshape(-1, 1) * g2.to(torch.float64).clamp_min(0.0)


def simulate_histograms(parameters: EmitterParameters, seconds: float | torch.Tensor, axis: DelayAxis = DelayAxis(),
                        efficiency: float = DEFAULT_EFFICIENCY, generator: torch.Generator | None = None) -> torch.Tensor:
    """Poisson coincidence histograms ``(B, bins)`` (float64 counts) after ``seconds`` (number or ``(B,)``, > 0).

    Checks as :func:`expected_histogram`; pixels with zero rate give all-zero histograms.
    """
    return torch.poisson(expected_histogram(parameters, seconds, axis, efficiency), generator=generator)


def g2_zero_cramer_rao(parameters: EmitterParameters, seconds: float | torch.Tensor, axis: DelayAxis = DelayAxis(),
                       efficiency: float = DEFAULT_EFFICIENCY) -> torch.Tensor:
    """Cramér-Rao bound on the standard deviation of unbiased g2(0) estimates, ``(B,)``.

    The histogram's bins are independent Poisson counts with means ``mu_k`` (see
    :func:`expected_histogram`); with the baseline known (the L-M fit's setting) the unknowns are
    ``theta = (a1, t1, a2, t2)``, the Fisher information is ``F = sum_k (d mu_k / d theta)
    (d mu_k / d theta)^T / mu_k`` and ``Var(g2(0)) >= g^T F^+ g`` with ``g = (-1, 0, 1, 0)``
    (pseudo-inverse: ``t2`` is not identifiable when ``a2 = 0``, and g2(0) does not depend on it).
    """
    baseline = uncorrelated_baseline(parameters, seconds, axis, efficiency)[:, None]
    tau = axis.centres().abs()
    decay1 = torch.exp(-tau / parameters.t1[:, None])
    decay2 = torch.exp(-tau / parameters.t2[:, None])
    means = expected_histogram(parameters, seconds, axis, efficiency).clamp_min(1e-12)
    derivatives = torch.stack([
        -baseline * decay1,
        -baseline * parameters.a1[:, None] * decay1 * tau / parameters.t1[:, None] ** 2,
        baseline * decay2,
        baseline * parameters.a2[:, None] * decay2 * tau / parameters.t2[:, None] ** 2,
    ], dim=-1)
    fisher = torch.einsum("bki,bkj->bij", derivatives / means[..., None], derivatives)
    gradient = torch.tensor([-1.0, 0.0, 1.0, 0.0], dtype=fisher.dtype)
    variance = gradient @ torch.linalg.pinv(fisher, hermitian=True) @ gradient
    return variance.clamp_min(0.0).sqrt()


def sum_one_second_histograms(one_second: torch.Tensor, seconds: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """The paper's augmentation: bin-wise sums of ``seconds`` distinct 1 s histograms ``(N, bins)`` of one emitter.

    ``one_second`` is checked as counts (integers converted to float64); ``seconds`` an integer >= 1.
    """
    one_second = real_tensor("one_second", one_second, ndim=2, integer_ok=True, nonnegative=True,
                             expected="(N, bins) one-second histograms")
    seconds = count("seconds", seconds)
    if not 1 <= seconds <= len(one_second):
        raise ValueError(f"cannot sum {seconds} distinct histograms out of {len(one_second)}")
    picks = torch.randperm(len(one_second), generator=generator)[:seconds]
    return one_second[picks].sum(0)


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array))


def check_histograms(histograms: torch.Tensor, bins: int = DEFAULT_BINS) -> torch.Tensor:
    """:func:`~qml_imaging.physics.coincidences.check_counts` as a float64 tensor ``(B, bins)``."""
    return _tensor(coincidences.check_counts(histograms, bins))


def baseline_from_singles(singles_1, singles_2, width_ns: float, seconds) -> torch.Tensor:
    """:func:`~qml_imaging.physics.coincidences.baseline_from_singles` (``N1 N2 w / T``) as a float64 tensor."""
    return _tensor(coincidences.baseline_from_singles(singles_1, singles_2, width_ns, seconds))


def baseline_from_tails(histograms: torch.Tensor, axis: DelayAxis, *, zero_delay_ns: float = 0.0,
                        beyond_ns: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`~qml_imaging.physics.coincidences.baseline_from_tails` (level and sigma, ``(B,)`` each) as float64 tensors."""
    level, sigma = coincidences.baseline_from_tails(histograms, axis, zero_delay_ns=zero_delay_ns, beyond_ns=beyond_ns)
    return _tensor(level), _tensor(sigma)


def tail_excess(histograms: torch.Tensor, axis: DelayAxis, *, zero_delay_ns: float = 0.0,
                beyond_ns: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`~qml_imaging.physics.coincidences.tail_excess` (excess and z, ``(B,)`` each) as float64 tensors."""
    excess, z = coincidences.tail_excess(histograms, axis, zero_delay_ns=zero_delay_ns, beyond_ns=beyond_ns)
    return _tensor(excess), _tensor(z)


def correct_background(g2_measured, rho, uncertainty=None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`~qml_imaging.physics.coincidences.correct_background` (``1 - (1 - g2) / rho^2``) as float64 tensors."""
    corrected, sigma = coincidences.correct_background(g2_measured, rho, uncertainty)
    return _tensor(corrected), None if sigma is None else _tensor(sigma)


def signal_share(total_rate, background_rate) -> torch.Tensor:
    """:func:`~qml_imaging.physics.coincidences.signal_share` (``rho = (R - B) / R``) as a float64 tensor."""
    return _tensor(coincidences.signal_share(total_rate, background_rate))
