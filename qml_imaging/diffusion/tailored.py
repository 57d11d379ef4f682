"""The ``tailored`` few-shot schedule: cosine noise levels, timesteps importance-sampled by a pilot's loss.

With k = 10-100 training images the training budget is a few hundred steps, and the eps loss is
far from uniform over timesteps, so uniform ``t`` spends most steps where the gradient says little.
The tailored schedule keeps the base schedule's betas (cosine by default) and changes where the
training steps go:

1. **Pilot.** The first ``pilot_fraction`` of training draws ``t`` uniformly.
2. **Profile.** The pilot model's eps loss is measured in ``bins`` equal-width timestep bins
   (every training image, ``repeats`` noise draws and uniform ``t`` within the bin):
   ``L_b = E |eps_hat - eps|^2 / pixels``.
3. **Importance sampling.** The rest of training draws ``t`` with
   ``p_t = (1 - u) L_b(t) / sum_s L_b(s) + u / T`` (``u = uniform_share`` keeps every step visited)
   and weights each sample's loss by ``1 / (T p_t)``: the expected objective is the uniform one,
   its gradient variance lower (p proportional to the loss is the variance-minimising choice when
   the per-step loss varies little within a step).
"""

from __future__ import annotations

import torch
from torch import nn

from qml_imaging.diffusion.schedules import NoiseSchedule


@torch.no_grad()
def timestep_loss_profile(model: nn.Module, schedule: NoiseSchedule, images: torch.Tensor, bins: int, repeats: int,
                          generator: torch.Generator, batch_size: int = 256) -> torch.Tensor:
    """Mean eps loss ``(bins,)`` of ``model`` on ``images`` ``(N, C, H, W)`` in equal-width timestep bins."""
    if not 1 <= bins <= schedule.steps:
        raise ValueError(f"bins must be in 1..{schedule.steps}, got {bins}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    edges = torch.linspace(0, schedule.steps, bins + 1)
    device = next(iter(model.parameters()), torch.empty(0)).device
    x0 = images.repeat(repeats, 1, 1, 1)
    profile = torch.empty(bins, dtype=torch.float64)
    for index in range(bins):
        low, high = int(edges[index]), max(int(edges[index + 1]), int(edges[index]) + 1)
        losses = []
        for chunk in x0.split(batch_size):
            t = torch.randint(low, high, (len(chunk),), generator=generator)
            eps = torch.randn(chunk.shape, generator=generator)
            x_t = schedule.add_noise(chunk, t, eps)
            predicted = model(x_t.to(device), t.to(device)).cpu()
            losses.append((predicted - eps).pow(2).flatten(1).mean(1))
        profile[index] = torch.cat(losses).double().mean()
    return profile


def importance_weights(profile: torch.Tensor, steps: int, uniform_share: float) -> torch.Tensor:
    """Sampling probabilities ``(steps,)`` of the tailored schedule from a loss ``profile`` ``(bins,)``."""
    if profile.ndim != 1 or len(profile) > steps or not torch.isfinite(profile).all() or (profile <= 0).any():
        raise ValueError(f"profile must be 1..{steps} positive finite losses, got {profile.tolist()}")
    if not 0 < uniform_share <= 1:
        raise ValueError(f"uniform_share must be in (0, 1], got {uniform_share}")
    bin_of_step = torch.div(torch.arange(steps) * len(profile), steps, rounding_mode="floor")
    per_step = profile.double()[bin_of_step]
    return (1 - uniform_share) * per_step / per_step.sum() + uniform_share / steps
