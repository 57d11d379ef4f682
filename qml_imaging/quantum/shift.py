"""Gradients of sampled circuits: parameter shift or SPSA over gate angles, every shifted circuit of a
batch in one execution, with the shot-noise variance of the weight gradient.

A forward pass that needs gradients runs, for each sample ``b`` with gate angles ``a_b`` ``(G,)``, the
parameter sets ``a_b`` and

- ``parameter-shift``: ``a_b ± (π/2) e_g`` for every angle ``g``; ``J[b, :, g] = (f(a_b + π/2 e_g) - f(a_b - π/2 e_g)) / 2``,
  exact up to shot noise for the rotations of :mod:`qml_imaging.quantum.angles` (Mitarai et al., PRA 98,
  032309 (2018); Schuld et al., PRA 99, 032331 (2019));
- ``spsa``: ``a_b ± c Δ_bs`` for ``S`` random directions ``Δ_bs`` in ``{-1, 1}^G``;
  ``J[b, :, g] = mean_s (f(a_b + c Δ_bs) - f(a_b - c Δ_bs)) Δ_bsg / (2c)`` (Spall, IEEE TAC 37, 332 (1992)),
  ``2S + 1`` circuits per sample instead of ``2G + 1``, biased by ``O(c²)`` and noisier;

all ``B (1 + 2G)`` (or ``B (1 + 2S)``) sets in one call of the runner (one PUB on Aer and EstimatorV2).
The runner returns the mean readouts and their covariance (of the mean, from the shots); backward
turns them into ``dL/d angles`` and the variance of ``dL/d weights`` from shot noise alone,
``Var(g_k) = sum_b sum_g v_bg M_gk²`` with ``M = d angles / d weights`` and ``v_bg`` the variance of
``sum_o (dL/dy_bo) J[b, o, g]`` (independent circuits add; readouts of one circuit are correlated).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from qml_imaging.quantum.angles import AngleForm
from qml_imaging.quantum.backends import BackendSpec
from qml_imaging.random_sources import generator_state, set_generator_state

SHIFT = math.pi / 2


@dataclass(frozen=True)
class Estimate:
    """Mean readouts ``(N, O)`` of ``N`` parameter sets and the covariance of each mean ``(N, O, O)``
    (zeros for exact expectation values), float64."""

    means: np.ndarray
    covariance: np.ndarray


Runner = Callable[[AngleForm, np.ndarray], Estimate]
"""Runs the circuit of a form at parameter sets ``(N, G)`` (radians) in one execution."""


@dataclass(frozen=True)
class GradientRule:
    """``method`` (``parameter-shift`` or ``spsa``), SPSA's perturbation ``step`` (radians) and ``samples``
    (directions per sample), and ``generator`` drawing SPSA's directions."""

    method: str
    step: float
    samples: int
    generator: np.random.Generator

    def parameter_sets(self, angles: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Sets ``(B, K, G)``: the angles, then ``K - 1`` shifted copies (plus half then minus half), and the
        SPSA directions ``(B, S, G)`` (None for parameter shift)."""
        batch, count = angles.shape
        if self.method == "parameter-shift":
            shifts, directions = SHIFT * np.eye(count), None
            shifts = np.broadcast_to(shifts, (batch, count, count))
        else:
            directions = self.generator.choice([-1.0, 1.0], size=(batch, self.samples, count))
            shifts = self.step * directions
        sets = np.concatenate([angles[:, None], angles[:, None] + shifts, angles[:, None] - shifts], axis=1)
        return sets, directions


def gradient_rule(spec: BackendSpec) -> GradientRule:
    """The spec's ``gradient`` and ``spsa`` options, SPSA's directions drawn from a generator seeded by ``seed``."""
    entropy = None if spec.seed is None else [spec.seed, 1]
    return GradientRule(spec.gradient, spec.spsa.step, spec.spsa.samples, np.random.default_rng(entropy))


def generator_states(seeds: np.random.Generator, rule: GradientRule) -> dict:
    """A runner's seed generator ``seeds`` and ``rule``'s, as plain data."""
    return {"runner": generator_state(seeds), "gradient": generator_state(rule.generator)}


def set_generator_states(seeds: np.random.Generator, rule: GradientRule, state: object) -> None:
    """Inverse of :func:`generator_states`; ValueError for anything else."""
    if not isinstance(state, dict) or set(state) != {"runner", "gradient"}:
        raise ValueError(f"expected the state of a sampled executor ({{'runner', 'gradient'}}), got {state!r}")
    set_generator_state(seeds, state["runner"])
    set_generator_state(rule.generator, state["gradient"])


class GradientNoise:
    """Shot-noise variances of a layer's last gradient, written by backward (None before the first),
    float64 in the loss's units squared per radian squared: ``variance`` ``(W,)`` of the weight gradient
    (flattened), ``input_variance`` ``(B, n_inputs)`` of the gradient with respect to the circuit's inputs
    (the angles after ``input_scale``)."""

    def __init__(self) -> None:
        self.variance: torch.Tensor | None = None
        self.input_variance: torch.Tensor | None = None

    def standard_error(self) -> torch.Tensor | None:
        """``sqrt(variance)`` per weight, or None."""
        return None if self.variance is None else self.variance.sqrt()


def sampled_expvals(form: AngleForm, angles: torch.Tensor, runner: Runner, rule: GradientRule,
                    noise: GradientNoise | None = None) -> torch.Tensor:
    """Readouts ``(B, O)`` of ``form`` at ``angles`` ``(B, G)``; differentiable (``rule``) when ``angles`` need
    gradients, in which case backward writes the weight gradient's variance into ``noise``."""
    if not (torch.is_grad_enabled() and angles.requires_grad):
        estimate = runner(form, angles.detach().cpu().double().numpy())
        return torch.as_tensor(estimate.means, dtype=angles.dtype, device=angles.device)
    return _Shifted.apply(angles, form, runner, rule, noise)


class _Shifted(torch.autograd.Function):
    @staticmethod
    def forward(ctx, angles, form, runner, rule, noise):
        values = angles.detach().cpu().double().numpy()
        sets, directions = rule.parameter_sets(values)
        batch, count, _ = sets.shape
        estimate = runner(form, sets.reshape(batch * count, -1))
        means = estimate.means.reshape(batch, count, -1)
        covariance = estimate.covariance.reshape(batch, count, *estimate.covariance.shape[1:])
        ctx.form, ctx.rule, ctx.noise, ctx.dtype = form, rule, noise, angles.dtype
        ctx.parts = (means, covariance, directions)
        return torch.as_tensor(means[:, 0], dtype=angles.dtype, device=angles.device)

    @staticmethod
    def backward(ctx, grad_output):
        means, covariance, directions = ctx.parts
        upstream = grad_output.detach().cpu().double().numpy()
        if directions is None:
            gradient, variance = _shift_terms(means, covariance, upstream)
        else:
            gradient, variance = _spsa_terms(means, covariance, upstream, directions, ctx.rule.step)
        if ctx.noise is not None:
            ctx.noise.variance = torch.as_tensor(variance(ctx.form.weight_matrix.numpy()).sum(0))
            ctx.noise.input_variance = torch.as_tensor(variance(ctx.form.matrix[:, :ctx.form.n_inputs].numpy()))
        grad = torch.as_tensor(gradient, dtype=ctx.dtype, device=grad_output.device)
        return grad, None, None, None, None


def _plus_minus(means: np.ndarray, covariance: np.ndarray, halves: int):
    plus, minus = means[:, 1:1 + halves], means[:, 1 + halves:]
    spread = covariance[:, 1:1 + halves] + covariance[:, 1 + halves:]
    return plus - minus, spread


def _shift_terms(means, covariance, upstream):
    """``dL/d angles`` ``(B, G)`` and a function of ``M = d angles / d z`` ``(G, K)`` giving the variance
    ``(B, K)`` of each sample's contribution to ``dL/dz``."""
    difference, spread = _plus_minus(means, covariance, means.shape[1] // 2)
    gradient = np.einsum("bo,bgo->bg", upstream, difference) / 2
    per_angle = np.einsum("bo,bgop,bp->bg", upstream, spread, upstream) / 4
    return gradient, lambda matrix: per_angle @ matrix**2


def _spsa_terms(means, covariance, upstream, directions, step):
    """As :func:`_shift_terms` for SPSA."""
    samples = directions.shape[1]
    difference, spread = _plus_minus(means, covariance, samples)
    slope = np.einsum("bo,bso->bs", upstream, difference) / (2 * step)
    gradient = np.einsum("bs,bsg->bg", slope, directions) / samples
    per_direction = np.einsum("bo,bsop,bp->bs", upstream, spread, upstream) / (2 * step * samples) ** 2
    return gradient, lambda matrix: np.einsum("bs,bsk->bk", per_direction, (directions @ matrix) ** 2)
