"""Epsilon-prediction training objective and the DDPM and DDIM samplers.

A denoiser is any ``model(x_t, t) -> eps_hat`` with ``x_t`` ``(B, C, H, W)`` and integer steps
``t`` ``(B,)``. Gaussian noise comes from a *noise source* ``noise(shape, device) -> tensor``:
:func:`torch_noise` (pseudo-random) or :func:`bank_noise` (a stored quantum noise bank,
:class:`qml_imaging.quantum.noise.NoiseBank`), for the forward process and the samplers alike.

DDPM (Ho et al. 2020): ``x_{t-1}`` is drawn from the posterior ``q(x_{t-1} | x_t, x0_hat)``: mean
``(sqrt(abar_{t-1}) beta_t x0_hat + sqrt(1 - beta_t) (1 - abar_{t-1}) x_t) / (1 - abar_t)``, variance
``beta_t (1 - abar_{t-1}) / (1 - abar_t)``, with ``x0_hat = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t)``
(unclipped, this is the usual ``(x_t - beta_t / sqrt(1 - abar_t) eps_hat) / sqrt(1 - beta_t)``).
DDIM (Song et al. 2021) on a sub-sequence of ``steps`` timesteps: ``x0_hat = (x_t - sqrt(1 - abar_t)
eps_hat) / sqrt(abar_t)``, ``x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev - sigma^2) eps_hat
+ sigma z`` with ``sigma = eta sqrt((1 - abar_prev) / (1 - abar_t) (1 - abar_t / abar_prev))``.
``clip`` bounds ``x0_hat`` to the data range ``[-1, 1]`` at every step.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from qml_imaging.diffusion.schedules import NoiseSchedule

NoiseSource = Callable[[tuple[int, ...], torch.device], torch.Tensor]


def torch_noise(generator: torch.Generator | None = None) -> NoiseSource:
    """Pseudo-random standard normals (from ``generator``, else the global generator)."""
    def draw(shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
        return torch.randn(shape, generator=generator).to(device)
    return draw


def bank_noise(bank) -> NoiseSource:
    """Standard normals taken in order from a :class:`~qml_imaging.quantum.noise.NoiseBank`."""
    def draw(shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
        return bank.draw(*shape).to(device)
    return draw


class EpsilonObjective:
    """Trainer objective: the mean over the batch of ``w_t |model(x_t, t) - eps|^2 / pixels``.

    Batches are ``x0`` ``(B, C, H, W)``, a tuple whose first item is ``x0`` (e.g. ``(x0, labels)``), or
    ``{"x0": x0, "eps": eps}`` with the noise already drawn (how a batch source makes bank noise
    resumable); without ``eps`` it comes from ``noise``. Timesteps ``t`` are uniform
    over the schedule's steps (``w_t = 1``, the plain eps objective), or drawn with probabilities
    ``p_t`` proportional to ``timestep_weights`` ``(T,)``; then ``w_t = 1 / (T p_t)`` makes the
    expected loss the same as with uniform steps (importance sampling), unless ``reweight`` is False.
    """

    def __init__(self, schedule: NoiseSchedule, noise: NoiseSource | None = None,
                 timestep_weights: torch.Tensor | None = None, reweight: bool = True):
        if timestep_weights is not None and (timestep_weights.shape != (schedule.steps,) or (timestep_weights < 0).any()
                                             or timestep_weights.sum() <= 0):
            raise ValueError(f"timestep_weights must be {schedule.steps} non-negative numbers, not all zero")
        self.schedule = schedule
        self.noise = noise or torch_noise()
        self.probabilities = None if timestep_weights is None else timestep_weights.double() / timestep_weights.sum()
        self.reweight = reweight

    def __call__(self, model: nn.Module, batch) -> torch.Tensor:
        if isinstance(batch, dict):
            x0, eps = batch["x0"], batch.get("eps")
        else:
            x0, eps = (batch[0] if isinstance(batch, (tuple, list)) else batch), None
        if eps is None:
            eps = self.noise(tuple(x0.shape), x0.device).to(x0.dtype)
        if self.probabilities is None:
            t = torch.randint(0, self.schedule.steps, (len(x0),)).to(x0.device)
            return F.mse_loss(model(self.schedule.add_noise(x0, t, eps), t), eps)
        t = torch.multinomial(self.probabilities, len(x0), replacement=True).to(x0.device)
        per_sample = (model(self.schedule.add_noise(x0, t, eps), t) - eps).pow(2).flatten(1).mean(1)
        if not self.reweight:
            return per_sample.mean()
        weights = 1.0 / (self.schedule.steps * self.probabilities.to(x0.device)[t])
        return (weights.to(per_sample.dtype) * per_sample).mean()


def _constants(schedule: NoiseSchedule, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    return schedule.betas.to(device, torch.float32), schedule.alpha_bar.to(device, torch.float32)


@torch.no_grad()
def ddpm_sample(model: nn.Module, schedule: NoiseSchedule, shape: tuple[int, ...], noise: NoiseSource,
                device: torch.device | str = "cpu", clip: bool = True) -> torch.Tensor:
    """Ancestral sampling through all ``schedule.steps`` steps; returns ``x_0`` of ``shape``."""
    device = torch.device(device)
    betas, alpha_bar = _constants(schedule, device)
    x = noise(shape, device)
    for step in reversed(range(schedule.steps)):
        t = torch.full((shape[0],), step, device=device, dtype=torch.long)
        eps = model(x, t)
        x0 = (x - (1 - alpha_bar[step]).sqrt() * eps) / alpha_bar[step].sqrt()
        if clip:
            x0 = x0.clamp(-1.0, 1.0)
        if step == 0:
            return x0
        previous = alpha_bar[step - 1]
        mean = (previous.sqrt() * betas[step] * x0 + (1 - betas[step]).sqrt() * (1 - previous) * x) / (1 - alpha_bar[step])
        variance = betas[step] * (1 - previous) / (1 - alpha_bar[step])
        x = mean + variance.sqrt() * noise(shape, device)
    return x


@torch.no_grad()
def ddim_sample(model: nn.Module, schedule: NoiseSchedule, shape: tuple[int, ...], noise: NoiseSource, steps: int,
                eta: float = 0.0, device: torch.device | str = "cpu", clip: bool = True) -> torch.Tensor:
    """DDIM on ``steps`` evenly spaced timesteps (``eta = 0``: deterministic given the start noise)."""
    if not 1 <= steps <= schedule.steps:
        raise ValueError(f"DDIM steps must be in 1..{schedule.steps}, got {steps}")
    device = torch.device(device)
    _, alpha_bar = _constants(schedule, device)
    times = torch.linspace(schedule.steps - 1, 0, steps).round().long().unique_consecutive().tolist()
    x = noise(shape, device)
    for index, step in enumerate(times):
        t = torch.full((shape[0],), step, device=device, dtype=torch.long)
        eps = model(x, t)
        current = alpha_bar[step]
        x0 = (x - (1 - current).sqrt() * eps) / current.sqrt()
        if clip:
            x0 = x0.clamp(-1.0, 1.0)
            eps = (x - current.sqrt() * x0) / (1 - current).sqrt()
        if index == len(times) - 1:
            return x0
        previous = alpha_bar[times[index + 1]]
        sigma = eta * ((1 - previous) / (1 - current) * (1 - current / previous)).sqrt()
        x = previous.sqrt() * x0 + (1 - previous - sigma**2).clamp_min(0).sqrt() * eps
        if eta > 0:
            x = x + sigma * noise(shape, device)
    return x
