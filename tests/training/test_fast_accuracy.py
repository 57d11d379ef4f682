"""Accuracy of the fast training step (bf16 autocast + channels_last) per model family: a short training
reaches the loss of float32 eager within the spread over seeds, and the QCRB evaluation does not depend
on the training precision. bf16 is asked for explicitly, so the check runs on CPUs whose default is fp32."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from qml_imaging.config import TrainSettings
from qml_imaging.diffusion.ddpm import EpsilonObjective
from qml_imaging.diffusion.schedules import cosine_schedule
from qml_imaging.models.diffusion_unet import DiffusionUNet
from qml_imaging.models.inr import QIREN
from qml_imaging.models.inr_generator import Discriminator, InrGenerator, matched_width
from qml_imaging.models.specs import InrGeneratorSpec, UNetSpec
from qml_imaging.pipelines.qcrb.config import DenoiserLoss, PhotonRange
from qml_imaging.pipelines.qcrb.denoising import DenoiserObjective, build_unet, denoise, photon_batches, validation_metric
from qml_imaging.training import Trainer, supervised
from qml_imaging.training.gan import PLAYERS, GanObjective, GanPair

SEEDS = (0, 1, 2)
FAST = {"precision": "bf16", "channels_last": True}
PLAIN = {"precision": "fp32", "channels_last": False}
SPEC = UNetSpec(depth=2, base_channels=8, max_channels=8)


def settings(mode: dict, epochs: int = 1, **extra) -> TrainSettings:
    return TrainSettings(device="cpu", progress=False, epochs=epochs, batch_size=8, lr=3e-3, eval_every=1000,
                         **mode, **extra)


def assert_within_seed_noise(run: Callable[[dict, int], float]) -> None:
    """Final losses of the fast and the plain mode over :data:`SEEDS`: their means differ by less than the
    two modes' seed-to-seed ranges together."""
    fast = [run(FAST, seed) for seed in SEEDS]
    plain = [run(PLAIN, seed) for seed in SEEDS]
    assert all(math.isfinite(value) for value in fast + plain)
    spread = (max(fast) - min(fast)) + (max(plain) - min(plain))
    assert abs(sum(fast) / len(fast) - sum(plain) / len(plain)) < spread, (fast, plain)


def sinusoids(count: int, generator: torch.Generator, size: int = 8) -> torch.Tensor:
    """Normalised positive images ``(count, size, size)``: 1 + 0.8 sin of a random plane wave, summing to 1."""
    grid = torch.linspace(0, 1, size)
    frequency, phase = torch.rand(count, 2, generator=generator) * 6, torch.rand(count, 1, 1, generator=generator) * 6
    wave = 1 + 0.8 * torch.sin(frequency[:, 0, None, None] * grid[:, None] + frequency[:, 1, None, None] * grid + phase)
    return wave / wave.sum(dim=(1, 2), keepdim=True)


def large_sinusoids(count: int, generator: torch.Generator) -> torch.Tensor:
    """:func:`sinusoids` of 16x16 pixels (the SSIM term needs at least 11)."""
    return sinusoids(count, generator, 16)


def qcrb_fit(mode: dict, seed: int) -> tuple[Trainer, float]:
    torch.manual_seed(seed)
    evaluate = validation_metric(large_sinusoids, SPEC, images=16)
    trainer = Trainer(build_unet(SPEC), settings(mode), seed=seed, evaluate=evaluate,
                      objective=DenoiserObjective(DenoiserLoss(), data_range=4.0))
    result = trainer.fit(photon_batches(large_sinusoids, PhotonRange(nbar_min=100, nbar_max=4000, batches_per_epoch=12),
                                        8, SPEC))
    return trainer, sum(result.metrics.values())


def test_qcrb_unet_fast_training_matches_fp32_within_seed_noise() -> None:
    assert_within_seed_noise(lambda mode, seed: qcrb_fit(mode, seed)[1])


def test_qcrb_evaluation_is_bit_identical_whatever_the_training_precision() -> None:
    trained, _ = qcrb_fit(FAST, 0)
    counts = torch.poisson(large_sinusoids(6, torch.Generator().manual_seed(3)).double() * 1000)
    assert trained.module.stem[0].weight.is_contiguous()
    fresh = build_unet(SPEC)
    fresh.load_state_dict(trained.module.state_dict())
    after_fast = denoise(trained.module, counts, 1000.0, SPEC)
    assert after_fast.dtype == torch.float64
    assert torch.equal(after_fast, denoise(fresh, counts, 1000.0, SPEC))


def test_diffusion_unet_fast_training_matches_fp32_within_seed_noise() -> None:
    schedule = cosine_schedule(100)
    data = torch.tensor_split(sinusoids(64, torch.Generator().manual_seed(5))[:, None] * 128 - 2, 8)
    held = sinusoids(16, torch.Generator().manual_seed(6))[:, None] * 128 - 2
    steps, noise = torch.arange(16) * 6, torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(7))

    def run(mode: dict, seed: int) -> float:
        torch.manual_seed(seed)
        model = DiffusionUNet(1, (8, 16), bottleneck="quantum", n_qubits=2, quantum_layers=1)
        trainer = Trainer(model, settings(mode, epochs=2), objective=EpsilonObjective(schedule), seed=seed)
        trainer.fit(lambda epoch, generator: iter(data))
        with torch.no_grad():
            return float(F.mse_loss(model(schedule.add_noise(held, steps, noise), steps), noise))

    assert_within_seed_noise(run)


def test_inr_gan_fast_training_matches_fp32_within_seed_noise() -> None:
    spec = InrGeneratorSpec(parameter_budget=1500, features=4, hidden_layers=1, latent_dim=8, style_dim=8,
                            mapping_layers=1, discriminator_channels=4)
    width = matched_width(spec, "rff", side=8)
    real = sinusoids(32, torch.Generator().manual_seed(8))[:, None] * 128 - 1
    latents = torch.randn(30, 2, 8, 8, generator=torch.Generator().manual_seed(9))

    def run(mode: dict, seed: int) -> float:
        torch.manual_seed(seed)
        pair = GanPair(InrGenerator(spec, "rff", width, channels=1, side=8), Discriminator(1, 8, 4))
        trainer = Trainer(pair, settings(mode, epochs=1), objective=GanObjective(r1_gamma=1.0), seed=seed,
                          players={name: {"betas": (0.0, 0.99)} for name in PLAYERS})
        batches = [{"real": real[(8 * i) % 32:(8 * i) % 32 + 8], "latents": latents[i]} for i in range(30)]
        return trainer.fit(lambda epoch, generator: iter(batches)).final_loss

    assert_within_seed_noise(run)


def test_qiren_training_is_untouched_by_the_fast_mode() -> None:
    coordinates = torch.rand(64, 2) * 2 - 1
    targets = torch.sin(3 * coordinates[:, :1]) * coordinates[:, 1:]

    def run(mode: dict) -> tuple[float, dict]:
        torch.manual_seed(0)
        trainer = Trainer(QIREN(2, n_qubits=2, hybrid_layers=1, reuploads=1, sublayers=1), settings(mode, epochs=3),
                          objective=supervised(F.mse_loss))
        losses = trainer.fit(torch.utils.data.TensorDataset(coordinates, targets)).final_loss
        return losses, trainer.precision.describe()

    fast_loss, fast_choices = run(FAST | {"channels_last": "auto"})
    plain_loss, _ = run(PLAIN)
    assert fast_choices["autocast"] == "none" and fast_choices["channels_last"] is False
    assert fast_loss == plain_loss
