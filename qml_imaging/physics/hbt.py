"""Hanbury Brown-Twiss (HBT) coincidence histograms of single-photon emitters (paper 002).

Delay axis: ``bins`` equal bins spanning ``[-span/2, span/2]`` ns (default 215 bins over 500 ns),
so bin ``bins // 2`` is centred on zero delay (the "known zero-delay bin").

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
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

DEFAULT_BINS = 215
DEFAULT_SPAN_NS = 500.0
DEFAULT_EFFICIENCY = 0.0122


@dataclass(frozen=True)
class DelayAxis:
    """Bin centres of an HBT histogram; ``zero_bin`` is the bin centred on zero delay."""

    bins: int = DEFAULT_BINS
    span_ns: float = DEFAULT_SPAN_NS

    def __post_init__(self) -> None:
        if self.bins < 3 or self.bins % 2 == 0:
            raise ValueError(f"an HBT histogram needs an odd number of bins >= 3 (a bin centred on zero), got {self.bins}")
        if self.span_ns <= 0:
            raise ValueError(f"span_ns must be > 0, got {self.span_ns}")

    @property
    def width_ns(self) -> float:
        return self.span_ns / self.bins

    @property
    def zero_bin(self) -> int:
        return self.bins // 2

    def centres(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """``(bins,)`` bin centres in ns."""
        return (torch.arange(self.bins, dtype=dtype) - self.zero_bin) * self.width_ns


def three_level_g2(tau: torch.Tensor, a1: torch.Tensor, t1: torch.Tensor, a2: torch.Tensor, t2: torch.Tensor) -> torch.Tensor:
    """Eq. 3 at delays ``tau`` ``(K,)`` for parameter tensors of shape ``(B,)``: returns ``(B, K)``."""
    tau = tau.abs()
    return (1.0 - a1[:, None] * torch.exp(-tau / t1[:, None]) + a2[:, None] * torch.exp(-tau / t2[:, None]))


def mixture_share_factor(shares: torch.Tensor) -> torch.Tensor:
    """``sum_i p_i^2`` over the last axis of emitter light shares ``(..., n)`` (background = the missing share)."""
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

    @property
    def g2_zero(self) -> torch.Tensor:
        return 1.0 - self.a1 + self.a2

    def mixed(self, share_factor: torch.Tensor) -> EmitterParameters:
        """The curve seen when these emitters' antibunching is diluted by ``sum p_i^2`` (``(B,)``)."""
        return EmitterParameters(self.a1 * share_factor, self.t1, self.a2 * share_factor, self.t2, self.rate)


def expected_histogram(parameters: EmitterParameters, seconds: float | torch.Tensor, axis: DelayAxis = DelayAxis(),
                       efficiency: float = DEFAULT_EFFICIENCY) -> torch.Tensor:
    """Mean coincidences per bin ``(B, bins)`` after ``seconds`` of acquisition."""
    width_s = axis.width_ns * 1e-9
    g2 = three_level_g2(axis.centres(), parameters.a1, parameters.t1, parameters.a2, parameters.t2)
    seconds = torch.as_tensor(seconds, dtype=torch.float64)
    scale = efficiency * parameters.rate.to(torch.float64) ** 2 * width_s * seconds
    return scale.reshape(-1, 1) * g2.clamp_min(0.0)


def simulate_histograms(parameters: EmitterParameters, seconds: float | torch.Tensor, axis: DelayAxis = DelayAxis(),
                        efficiency: float = DEFAULT_EFFICIENCY, generator: torch.Generator | None = None) -> torch.Tensor:
    """Poisson coincidence histograms ``(B, bins)`` (float64 counts) after ``seconds`` (number or ``(B,)``)."""
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
    tau = axis.centres().abs()
    decay1 = torch.exp(-tau / parameters.t1[:, None])
    decay2 = torch.exp(-tau / parameters.t2[:, None])
    baseline = expected_histogram(EmitterParameters(torch.zeros_like(parameters.a1), parameters.t1,
                                                    torch.zeros_like(parameters.a2), parameters.t2, parameters.rate),
                                  seconds, axis, efficiency)
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
    """The paper's augmentation: bin-wise sums of ``seconds`` distinct 1 s histograms ``(N, bins)`` of one emitter."""
    if not 1 <= seconds <= len(one_second):
        raise ValueError(f"cannot sum {seconds} distinct histograms out of {len(one_second)}")
    picks = torch.randperm(len(one_second), generator=generator)[:seconds]
    return one_second[picks].sum(0)


def check_histograms(histograms: torch.Tensor, bins: int = DEFAULT_BINS) -> torch.Tensor:
    """``histograms`` as float ``(B, bins)`` after checking length, finiteness and sign."""
    histograms = torch.as_tensor(histograms)
    if histograms.ndim == 1:
        histograms = histograms.unsqueeze(0)
    if histograms.ndim != 2 or histograms.shape[1] != bins:
        raise ValueError(f"expected HBT histograms of shape (B, {bins}) ({bins} delay bins), got {tuple(histograms.shape)}")
    if not torch.isfinite(histograms.to(torch.float64)).all():
        raise ValueError("HBT histograms contain NaN or infinite values")
    if (histograms < 0).any():
        raise ValueError(f"HBT histograms hold counts and must be >= 0; smallest entry {histograms.min().item():g}")
    return histograms.to(torch.float64)
