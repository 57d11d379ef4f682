"""Training and applying U-Net denoisers of shot-noise images (error statistics: :mod:`qml_imaging.physics.estimation`).

Scaling: a transmittance ``phi`` (sums to 1, ``K`` pixels) is shown to the network as
``K * phi`` (mean 1). The input is the unbiased shot-noise estimate of that, ``K * n / nbar``, plus,
when conditioned, a constant plane ``log10(nbar) - 2.5`` and, with ``coordinates``, the pixel-centre
coordinates ``x`` and ``y`` in (-1, 1) as two more planes (convolutions alone know position only
through the zero padding). The output ``y`` estimates ``K * phi``, so the image estimate is ``y / K``;
errors are always reported in units of ``phi``.
"""

from __future__ import annotations

from pathlib import Path

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from qml_imaging.config import TrainSettings
from qml_imaging.models.unet import DenoisingUNet
from qml_imaging.physics.shot_noise import check_nbar, shot_noise_counts
from qml_imaging.models.specs import UNetSpec
from qml_imaging.pipelines.qcrb.config import DenoiserExperiment, DenoiserLoss, PhotonRange
from qml_imaging.grid import task_folder, threads_for_work
from qml_imaging.runs import MetricsLog, checkpoint_folder
from qml_imaging.training import FitResult, Trainer, seed_everything
from qml_imaging.training.losses import CompositeImageLoss

PhiSampler = Callable[[int, torch.Generator], torch.Tensor]
"""``(n, generator) -> phi`` of shape ``(n, H, W)``: normalised training images."""

VALIDATION_NBARS = (100.0, 1000.0, 4000.0)


def build_unet(spec: UNetSpec) -> DenoisingUNet:
    """The denoising U-Net of ``spec`` with the input planes it needs."""
    return DenoisingUNet.from_spec(spec, input_planes(spec))


def denoiser_threads(config: DenoiserExperiment) -> int:
    """Torch threads of one U-Net fit, from its size: the multiply-adds of one convolution at the finest level
    (batch x pixels x base_channels² x kernel²; :func:`qml_imaging.grid.threads_for_work`)."""
    spec, batch = config.unet, config.train.batch_size or 1
    return threads_for_work(batch * config.image_size ** 2 * spec.base_channels ** 2 * spec.kernel ** 2)


def input_planes(spec: UNetSpec) -> int:
    """Channels of :func:`network_inputs` for ``spec``."""
    return 1 + int(spec.condition_on_nbar) + 2 * int(spec.coordinates)


def network_inputs(counts: torch.Tensor, nbar: torch.Tensor, spec: UNetSpec) -> torch.Tensor:
    """``(B, C, H, W)`` float32 inputs from counts ``(B, H, W)`` and ``nbar`` ``(B,)`` (see the module docstring)."""
    height, width = counts.shape[-2:]
    nbar = nbar.to(torch.float32)
    scaled = (counts.to(torch.float32) * height * width / nbar[:, None, None]).unsqueeze(1)
    planes = [scaled]
    if spec.condition_on_nbar:
        planes.append((torch.log10(nbar) - 2.5)[:, None, None, None].expand_as(scaled))
    if spec.coordinates:
        rows, columns = ((torch.arange(n, dtype=torch.float32) + 0.5) * 2 / n - 1 for n in (height, width))
        grid = torch.stack(torch.meshgrid(columns, rows, indexing="xy"))
        planes.append(grid.unsqueeze(0).expand(len(scaled), -1, -1, -1))
    return torch.cat(planes, dim=1)


class DenoiserObjective:
    """Loss of a batch ``(inputs, targets, nbar)``: see :class:`DenoiserLoss`; targets are ``K * phi``."""

    def __init__(self, loss: DenoiserLoss, data_range: float):
        self.loss = loss
        self.data_range = data_range
        self.composite = CompositeImageLoss(mse_weight=loss.mse, ssim_weight=loss.ssim, gdl_weight=loss.gdl,
                                            data_range=data_range)

    def __call__(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        inputs, targets, nbar = batch
        weights = nbar / nbar.mean() if self.loss.mse_weighting == "nbar" else None
        return self.composite(model(inputs), targets, weights)


def photon_batches(sampler: PhiSampler, photons: PhotonRange, batch_size: int, spec: UNetSpec):
    """Batch source for :class:`Trainer`: fresh images and shot noise every step, nbar log-uniform."""
    log_low, log_high = math.log(photons.nbar_min), math.log(photons.nbar_max)

    def batches(epoch: int, generator: torch.Generator):
        for _ in range(photons.batches_per_epoch):
            phi = sampler(batch_size, generator)
            nbar = torch.exp(log_low + (log_high - log_low) * torch.rand(batch_size, generator=generator, dtype=torch.float64))
            counts = shot_noise_counts(phi.to(torch.float64), nbar, generator)
            pixels = phi.shape[-1] * phi.shape[-2]
            yield (network_inputs(counts, nbar, spec), (pixels * phi).unsqueeze(1).to(torch.float32),
                   nbar.to(torch.float32))

    return batches


def validation_metric(sampler: PhiSampler, spec: UNetSpec, images: int = 96, seed: int = 12345) -> Callable[[nn.Module], dict]:
    """Evaluator: total squared error over the SQL (``nbar * sum_k err_k^2``) of fixed noisy images per nbar."""
    generator = torch.Generator().manual_seed(seed)
    phi = sampler(images, generator).to(torch.float64)
    cases = []
    for nbar in VALIDATION_NBARS:
        nbars = torch.full((images,), nbar, dtype=torch.float64)
        cases.append((nbar, shot_noise_counts(phi, nbars, generator)))

    def evaluate(model: nn.Module) -> dict[str, float]:
        metrics = {}
        for nbar, counts in cases:
            estimate = denoise(model, counts, nbar, spec)
            metrics[f"mse_over_sql@{nbar:g}"] = float(nbar * (estimate - phi).pow(2).sum(dim=(1, 2)).mean())
        return metrics

    return evaluate


def train_denoiser(name: str, loss: DenoiserLoss, config: DenoiserExperiment, sampler: PhiSampler,
                   run_path: str | Path, data_range: float) -> tuple[Trainer, FitResult]:
    """Train one U-Net of ``config.unet`` with ``loss`` through the one training loop (resumable), with
    checkpoints under ``checkpoints/<name>/`` of the run folder ``run_path`` and metrics in the grid
    task ``name``'s folder (:func:`qml_imaging.grid.task_folder`)."""
    settings: TrainSettings = config.train
    if settings.batch_size is None:
        raise ValueError("train.batch_size must be set for denoiser training (images are generated per batch)")
    seed_everything(config.seed)
    trainer = Trainer(build_unet(config.unet), settings, objective=DenoiserObjective(loss, data_range),
                      evaluate=validation_metric(sampler, config.unet), checkpoint_dir=checkpoint_folder(run_path, name),
                      metrics=MetricsLog(task_folder(run_path, name) / "metrics.jsonl"), seed=config.seed, fit_name=name)
    result = trainer.fit(photon_batches(sampler, config.training, settings.batch_size, config.unet))
    return trainer, result


@torch.no_grad()
def denoise(model: nn.Module, counts: torch.Tensor, nbar: float, spec: UNetSpec, chunk: int = 250) -> torch.Tensor:
    """Image estimates ``phi_hat`` ``(B, H, W)`` (float64) from counts ``(B, H, W)`` taken with ``nbar`` photons."""
    check_nbar(nbar)
    model.eval()
    device = next(model.parameters()).device
    pixels = counts.shape[-1] * counts.shape[-2]
    outputs = []
    for part in counts.split(chunk):
        nbars = torch.full((len(part),), float(nbar), dtype=torch.float64)
        outputs.append(model(network_inputs(part, nbars, spec).to(device)).squeeze(1).cpu())
    return torch.cat(outputs).to(torch.float64) / pixels


def upsample_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """``(N, H, W)`` images resized to ``(N, size, size)`` with antialiased bilinear interpolation."""
    return F.interpolate(images.unsqueeze(1), size=(size, size), mode="bilinear", antialias=True,
                         align_corners=False).squeeze(1)
