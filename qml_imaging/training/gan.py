"""Adversarial training through the one :class:`~qml_imaging.training.Trainer` (its several-players mode).

:class:`GanPair` holds ``generator`` and ``discriminator`` as sub-modules, so the Trainer gives each
its optimizer, checkpoints both with their optimizers, and keeps one EMA of the pair (the generator's
average is what is sampled). :class:`GanObjective` is one step of each player per batch:

* discriminator: non-saturating logistic loss ``softplus(D(G(z1))) + softplus(-D(x))`` plus the R1
  penalty ``gamma / 2 * E ||grad_x D(x)||^2`` on real images (Goodfellow et al. 2014; Mescheder et
  al. 2018, eq. 9; the StyleGAN2 recipe);
* generator: ``softplus(-D(G(z2)))`` (the non-saturating loss).

Batches are ``{"real": (B, C, H, W), "latents": (2, B, latent_dim)}``: the latents come with the batch
(drawn from the epoch's generator by :func:`gan_batches`), so a resumed fit draws exactly what an
uninterrupted one would. A generator with ``embed()`` (the INR generator) computes its coordinate
features once per batch; the discriminator step does not change the generator, so both steps use them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

PLAYERS = ("discriminator", "generator")


class GanPair(nn.Module):
    """``generator`` (``z (B, latent_dim) -> images``) and ``discriminator`` (``images -> logits (B,)``)."""

    def __init__(self, generator: nn.Module, discriminator: nn.Module):
        super().__init__()
        self.generator = generator
        self.discriminator = discriminator

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        """Generated images for ``latents``."""
        return self.generator(latents)


class GanObjective:
    """Non-saturating GAN loss with R1 penalty ``r1_gamma`` (see the module docstring); returns the
    generator loss, steps ``discriminator`` then ``generator`` through the Trainer's ``step``."""

    def __init__(self, r1_gamma: float):
        if not r1_gamma >= 0:
            raise ValueError(f"r1_gamma must be >= 0, got {r1_gamma}")
        self.r1_gamma = r1_gamma

    def __call__(self, model: GanPair, batch: dict, step: Callable[[str, torch.Tensor], None]) -> torch.Tensor:
        generator, discriminator = model.generator, model.discriminator
        real, latents = batch["real"], batch["latents"]
        features = generator.embed() if hasattr(generator, "embed") else None
        with torch.no_grad():
            fake = generator(latents[0], None if features is None else features.detach())
        real = real.detach().requires_grad_(self.r1_gamma > 0)
        real_logits = discriminator(real)
        loss = F.softplus(discriminator(fake)).mean() + F.softplus(-real_logits).mean()
        if self.r1_gamma > 0:
            (gradient,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
            loss = loss + self.r1_gamma / 2 * gradient.pow(2).flatten(1).sum(1).mean()
        step("discriminator", loss)

        discriminator.requires_grad_(False)
        try:
            generator_loss = F.softplus(-discriminator(generator(latents[1], features))).mean()
        finally:
            discriminator.requires_grad_(True)
        step("generator", generator_loss)
        return generator_loss.detach()


def gan_batches(images: torch.Tensor, batch_size: int, batches_per_epoch: int, latent_dim: int):
    """A batch source ``(epoch, generator) -> batches`` for :class:`GanObjective`: each batch holds
    ``batch_size`` real images drawn with replacement from ``images`` ``(N, C, H, W)`` and two latent
    draws ``(2, batch_size, latent_dim)``, all from the epoch's ``generator``."""
    if batch_size < 1 or batches_per_epoch < 1 or len(images) < 1:
        raise ValueError(f"gan_batches needs images and positive sizes, got {len(images)} images, "
                         f"batch_size {batch_size}, batches_per_epoch {batches_per_epoch}")

    def batches(epoch: int, generator: torch.Generator) -> Iterator[dict]:
        del epoch
        for _ in range(batches_per_epoch):
            chosen = torch.randint(len(images), (batch_size,), generator=generator)
            yield {"real": images[chosen], "latents": torch.randn(2, batch_size, latent_dim, generator=generator)}

    return batches
