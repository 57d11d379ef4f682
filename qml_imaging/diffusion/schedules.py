"""Variance schedules of the forward process ``q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I)``.

Timesteps are ``t = 0 .. T-1``; ``betas[t]`` is the variance added at step ``t`` and
``alpha_bar[t] = prod_{s <= t} (1 - betas[s])``.

- ``linear`` (Ho et al. 2020): ``betas`` linear from ``beta_start`` to ``beta_end``, scaled by
  ``1000 / T`` so that any ``T`` spans the same noise levels as the 1000-step original.
- ``cosine`` (Nichol & Dhariwal 2021): ``alpha_bar(t) = f(t) / f(0)`` with
  ``f(t) = cos^2(((t / T) + s) / (1 + s) * pi / 2)``, ``s = 0.008``, betas clipped at 0.999.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class NoiseSchedule:
    """``betas`` ``(T,)`` float64 in (0, 1) and what follows from them."""

    name: str
    betas: torch.Tensor

    def __post_init__(self) -> None:
        betas = self.betas
        if betas.ndim != 1 or len(betas) < 2:
            raise ValueError(f"betas must be a 1-D tensor of at least 2 steps, got shape {tuple(betas.shape)}")
        if not torch.isfinite(betas).all() or (betas <= 0).any() or (betas >= 1).any():
            raise ValueError(f"betas must lie in (0, 1); got min {betas.min().item():g}, max {betas.max().item():g}")

    @property
    def steps(self) -> int:
        return len(self.betas)

    @property
    def alpha_bar(self) -> torch.Tensor:
        return torch.cumprod(1.0 - self.betas, dim=0)

    def add_noise(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise`` for per-sample steps ``t`` ``(B,)``."""
        alpha_bar = self.alpha_bar.to(x0.device)[t].to(x0.dtype).reshape(-1, *([1] * (x0.ndim - 1)))
        return alpha_bar.sqrt() * x0 + (1.0 - alpha_bar).sqrt() * noise


def linear_schedule(steps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> NoiseSchedule:
    """Ho et al. (2020): ``steps`` betas linear from ``beta_start`` to ``beta_end`` (float64), the same as diffusers'
    ``beta_schedule="linear"`` at 1000 steps. Deliberate difference: for other step counts both ends are scaled by
    ``1000 / steps`` (end capped at 0.999), as improved-diffusion's ``get_named_beta_schedule`` does, so that a short
    schedule reaches the same noise level; diffusers keeps the ends as given."""
    scale = 1000.0 / steps
    return NoiseSchedule("linear", torch.linspace(scale * beta_start, min(scale * beta_end, 0.999), steps,
                                                  dtype=torch.float64))


def cosine_schedule(steps: int, offset: float = 0.008) -> NoiseSchedule:
    """Nichol & Dhariwal (2021), eq. 17: ``beta_t = 1 - abar(t + 1) / abar(t)`` with
    ``abar(t) = cos^2((t / T + s) / (1 + s) pi / 2)``, ``s = offset``, clipped to at most 0.999, as diffusers'
    ``betas_for_alpha_bar(alpha_transform_type="cosine")``; also clipped to at least 1e-8 (the first beta is
    otherwise ~4e-5 and only round-off can make one zero, which :class:`NoiseSchedule` refuses)."""
    grid = torch.arange(steps + 1, dtype=torch.float64) / steps
    f = torch.cos((grid + offset) / (1 + offset) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    betas = (1.0 - alpha_bar[1:] / alpha_bar[:-1]).clamp(1e-8, 0.999)
    return NoiseSchedule("cosine", betas)


SCHEDULES: dict[str, Callable[[int], NoiseSchedule]] = {"linear": linear_schedule, "cosine": cosine_schedule}


def make_schedule(name: str, steps: int) -> NoiseSchedule:
    """The schedule ``name`` with ``steps`` steps."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown noise schedule {name!r}; expected one of {sorted(SCHEDULES)}")
    if steps < 2:
        raise ValueError(f"a schedule needs at least 2 steps, got {steps}")
    return SCHEDULES[name](steps)
