"""The training steps ``training_throughput.py`` times, each built through the package's Trainer (see there)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import torch

from qml_imaging.config import TrainSettings
from qml_imaging.diffusion.ddpm import EpsilonObjective
from qml_imaging.diffusion.schedules import cosine_schedule
from qml_imaging.models.diffusion_unet import DiffusionUNet
from qml_imaging.models.inr_generator import Discriminator, InrGenerator, matched_width
from qml_imaging.models.specs import InrGeneratorSpec, UNetSpec
from qml_imaging.pipelines.qcrb.config import DenoiserLoss
from qml_imaging.pipelines.qcrb.denoising import DenoiserObjective, build_unet, input_planes
from qml_imaging.training import Trainer
from qml_imaging.training.gan import PLAYERS, GanObjective, GanPair

Workload = str
WORKLOADS: tuple[Workload, ...] = ("qcrb_unet", "diffusion_none", "diffusion_classical", "diffusion_quantum",
                                   "gan_rff", "gan_qiren")
BATCH = 32
QCRB_UNET = UNetSpec(depth=5, base_channels=16, max_channels=128, first_kernel=5, kernel=3, res_blocks=1, dropout=0.0)


@dataclass
class BuiltStep:
    """One workload's training step (``step()``) and the fast-step choices its Trainer made."""

    step: Callable[[], None]
    choices: str


VARIANTS: dict[str, tuple[str, bool | str]] = {
    "fp32": ("fp32", False), "channels_last": ("fp32", True), "bf16": ("bf16", False),
    "bf16+channels_last": ("bf16", True), "default": ("auto", "auto")}
"""Variant name -> (train.precision, train.channels_last)."""


def _model_and_objective(workload: Workload, r1_gamma: float = 1.0) -> tuple[torch.nn.Module, Any, Any, dict | None]:
    """A freshly seeded model, its objective, one batch and the players (None for one optimizer)."""
    torch.manual_seed(0)
    if workload == "qcrb_unet":
        inputs = torch.rand(BATCH, input_planes(QCRB_UNET), 32, 32) * 2
        batch = (inputs, torch.rand(BATCH, 1, 32, 32) * 2, torch.exp(torch.rand(BATCH) * 4.6 + 3.7))
        objective = DenoiserObjective(DenoiserLoss(mse=1.0, ssim=1.0, gdl=1.0, mse_weighting="nbar"), 8.0)
        return build_unet(QCRB_UNET), objective, batch, None
    if workload.startswith("diffusion_"):
        model = DiffusionUNet(1, (16, 32, 64), bottleneck=workload.removeprefix("diffusion_"))
        return model, EpsilonObjective(cosine_schedule(1000)), torch.rand(BATCH, 1, 28, 28) * 2 - 1, None
    spec = InrGeneratorSpec()
    embedding = workload.removeprefix("gan_")
    generator = InrGenerator(spec, embedding, matched_width(spec, embedding), channels=1, side=28)
    pair = GanPair(generator, Discriminator(1, 28, spec.discriminator_channels))
    batch = {"real": torch.rand(BATCH, 1, 28, 28) * 2 - 1, "latents": torch.randn(2, BATCH, spec.latent_dim)}
    return pair, GanObjective(r1_gamma), batch, {name: {"betas": (0.0, 0.99)} for name in PLAYERS}


def build(workload: Workload, variant: str, stack: ExitStack, r1_gamma: float = 1.0) -> BuiltStep:
    """The step of ``workload`` in ``variant`` (a key of :data:`VARIANTS`; ``default``: the config defaults);
    the model's layout is held for the life of ``stack``. ``r1_gamma``: the GAN's R1 weight."""
    model, objective, batch, players = _model_and_objective(workload, r1_gamma)
    precision, channels_last = VARIANTS[variant]
    settings = TrainSettings(device="cpu", progress=False, batch_size=BATCH, precision=precision,
                             channels_last=channels_last)
    trainer = Trainer(model, settings, objective=objective, players=players)
    stack.enter_context(trainer.precision.fit_layout())

    def player_step(name: str, loss: torch.Tensor) -> None:
        optimizer = trainer.optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def step() -> None:
        with trainer.precision.autocast():
            if players is not None:
                objective(trainer.model, batch, player_step)
                return
            loss = objective(trainer.model, batch)
        player_step("model", loss)

    choices = trainer.precision.describe()
    return BuiltStep(step, f"autocast {choices['autocast']}, channels_last {choices['channels_last']}")


def compiled_step_cost(repeats: int) -> dict[str, float]:
    """Seconds to compile the QCRB U-Net (``torch.compile``, float32) and its eager and compiled step times;
    ``break_even_steps``: steps after which the compiled run is ahead (inf when it is not faster)."""
    model, objective, batch, _ = _model_and_objective("qcrb_unet")
    optimizer = torch.optim.Adam(model.parameters())
    compiled = torch.compile(model)

    def step(network: torch.nn.Module) -> float:
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        objective(network, batch).backward()
        optimizer.step()
        return time.perf_counter() - started

    eager = statistics.median(step(model) for _ in range(repeats))
    compile_seconds = step(compiled)
    step(compiled)
    fast = statistics.median(step(compiled) for _ in range(repeats))
    gain = eager - fast
    return {"compile_s": compile_seconds, "eager_ms": eager * 1e3, "compiled_ms": fast * 1e3,
            "break_even_steps": compile_seconds / gain if gain > 0 else float("inf")}
