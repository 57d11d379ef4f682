"""Maximum-likelihood estimation of a family's parameters from Poisson photon counts.

The negative log-likelihood of counts ``n`` (``K`` pixels) given ``theta`` and ``nbar`` is, up to a
constant, ``NLL = nbar * sum(phi) - sum_k n_k log phi_k = nbar - n . log phi(theta)``.

Multi-start, batched over realisations, in two stages:

1. **screening**: ``candidates`` parameter vectors (a fixed seeded uniform draw over the ranges)
   are scored on every realisation at once, one matrix product ``n @ log(phi(candidates))^T``;
   the ``starts`` best per realisation are kept;
2. **refinement**: Fisher scoring with Levenberg-Marquardt damping from each start,
   ``theta <- theta + (F + lambda diag F)^-1 score`` with ``score = J^T (n / phi - nbar)`` and
   ``F = nbar J^T diag(1/phi) J``; a step is kept only if it lowers the NLL (else lambda grows
   tenfold), periodic parameters wrap and the others are clamped to their range.

The estimate is the refined start with the lowest NLL.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from qml_imaging.physics.bounds import poisson_fisher
from qml_imaging.physics.checks import count, real_tensor
from qml_imaging.physics.parametric import ImageFamily
from qml_imaging.physics.settings import MleSettings
from qml_imaging.physics.shot_noise import check_nbar

CONVERGED_NLL_GAIN = 1e-9
"""A start stops once an accepted step lowers its NLL by less than this (nats)."""
MAX_DAMPING = 1e8
"""A start whose steps keep failing until the damping exceeds this is at a (local) minimum."""

_MLE = MleSettings()


@dataclass
class PoissonMLE:
    """Maximum-likelihood estimator of ``family`` on ``size x size`` images (see the module docstring).

    ``size``, ``candidates``, ``starts``, ``iterations`` are integers >= 1 and ``seed`` >= 0 (bools and
    fractions raise ``TypeError``); ``starts <= candidates`` (``ValueError``), since the starts are
    the best of the screened candidates. The defaults are :class:`~qml_imaging.physics.settings.MleSettings`'s.
    """

    family: ImageFamily
    size: int
    candidates: int = _MLE.candidates
    starts: int = _MLE.starts
    iterations: int = _MLE.iterations
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.family, ImageFamily):
            raise TypeError(f"family must be an ImageFamily, got {type(self.family).__name__}")
        self.size = count("size", self.size)
        self.candidates = count("candidates", self.candidates)
        self.starts = count("starts", self.starts)
        self.iterations = count("iterations", self.iterations)
        self.seed = count("seed", self.seed, minimum=0)
        if self.starts > self.candidates:
            raise ValueError(f"starts ({self.starts}) must be <= candidates ({self.candidates}): the starts are "
                             f"the best of the screened candidates")
        generator = torch.Generator().manual_seed(self.seed)
        self._candidates = self.family.sample(self.candidates, generator)
        self._log_phi = self.family.phi(self._candidates, self.size).flatten(1).clamp_min(1e-300).log()

    def fit(self, counts: torch.Tensor, nbar: float) -> torch.Tensor:
        """Estimates ``(B, P)`` (float64) from counts ``(B, size, size)`` recorded with ``nbar`` photons.

        ``counts``: a real tensor (integer counts are converted to float64; bool / complex raise
        ``TypeError``), non-empty, finite and >= 0; ``nbar`` one number, finite and > 0.
        """
        if isinstance(counts, torch.Tensor) and (counts.ndim != 3 or counts.shape[1:] != (self.size, self.size)):
            raise ValueError(f"expected counts of shape (B, {self.size}, {self.size}), got {tuple(counts.shape)}")
        counts = real_tensor("counts", counts, shape=(None, self.size, self.size), integer_ok=True, nonnegative=True,
                             expected=f"(B, {self.size}, {self.size})")
        nbar = check_nbar(nbar)
        if nbar.ndim != 0:
            raise ValueError(f"nbar must be one number for the whole batch, got shape {tuple(nbar.shape)}")
        nbar = float(nbar)
        flat = counts.flatten(1).to(torch.float64)
        best = (flat @ self._log_phi.T).topk(self.starts, dim=1).indices
        theta = self._candidates[best].reshape(-1, self.family.n_parameters)
        repeated = flat.repeat_interleave(self.starts, dim=0)
        theta, nll = self._refine(theta, repeated, nbar)
        choice = nll.reshape(-1, self.starts).argmin(dim=1)
        return theta.reshape(-1, self.starts, self.family.n_parameters)[torch.arange(len(flat)), choice]

    def _nll(self, theta: torch.Tensor, counts: torch.Tensor, nbar: float) -> torch.Tensor:
        log_phi = self.family.phi_unchecked(theta, self.size).flatten(1).clamp_min(1e-300).log()
        return nbar - (counts * log_phi).sum(1)

    def _refine(self, theta: torch.Tensor, counts: torch.Tensor, nbar: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Damped Fisher scoring of every row until its NLL stops falling (or ``iterations`` pass)."""
        damping = torch.full((len(theta),), 1e-3, dtype=torch.float64)
        nll = self._nll(theta, counts, nbar)
        active = torch.ones(len(theta), dtype=torch.bool)
        for _ in range(self.iterations):
            rows = active.nonzero().squeeze(1)
            if len(rows) == 0:
                break
            proposal = self.family.wrap(theta[rows] + self._step(theta[rows], counts[rows], nbar, damping[rows]))
            proposal_nll = self._nll(proposal, counts[rows], nbar)
            gain = nll[rows] - proposal_nll
            better = gain > 0
            theta[rows] = torch.where(better[:, None], proposal, theta[rows])
            nll[rows] = torch.where(better, proposal_nll, nll[rows])
            damping[rows] = torch.where(better, (damping[rows] / 3).clamp_min(1e-6), damping[rows] * 10)
            active[rows] = ~((better & (gain < CONVERGED_NLL_GAIN)) | (damping[rows] > MAX_DAMPING))
        return theta, nll

    def _step(self, theta: torch.Tensor, counts: torch.Tensor, nbar: float, damping: torch.Tensor) -> torch.Tensor:
        """Levenberg-Marquardt-damped Fisher-scoring step ``(F + lambda diag F)^-1 score``."""
        phi = self.family.phi_unchecked(theta, self.size).flatten(1).clamp_min(1e-300)
        jacobian = self.family.jacobian_unchecked(theta, self.size)
        score = torch.einsum("bki,bk->bi", jacobian, counts / phi - nbar)
        fisher = poisson_fisher(phi, jacobian, nbar)
        diagonal = torch.diagonal(fisher, dim1=1, dim2=2).clamp_min(1e-12)
        system = fisher + torch.diag_embed(damping[:, None] * diagonal)
        return torch.linalg.solve(system, score.unsqueeze(-1)).squeeze(-1)
