"""One few-shot model: train it (resuming), sample from it with DDIM, score the samples.

A :class:`ModelTask` is everything that identifies one model (data set, k, variant, seed) plus
where its quantum noise starts in the run's noise bank. :func:`run_task` is one task of the run's
grid (in the driver or a Ray worker); its products live in ``models/<dataset>/k<k>/<variant>/seed<seed>/``
of the run folder: ``metrics.jsonl`` (training loss per epoch) and ``samples.npz`` (uint8 samples),
with checkpoints under ``checkpoints/<task name>/`` (and ``model.json`` there: ``channels``, ``side``); the grid keeps its result in ``tasks/<task name>/``.

Training batches are ``{"x0", "eps"}``: ``x0`` drawn with replacement from the k images, ``eps``
from the epoch's generator (pseudo-random) or read from the noise bank at an offset fixed by
``(epoch, batch)`` (quantum), so a resumed run reads exactly the noise an uninterrupted one would.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from qml_imaging.config import TrainSettings
from qml_imaging.diffusion.ddpm import (
    EpsilonObjective,
    bank_noise,
    ddim_sample,
    torch_noise,
)
from qml_imaging.diffusion.evaluation import FeatureExtractor, LeNetClassifier, fid_kid
from qml_imaging.diffusion.schedules import NoiseSchedule, make_schedule
from qml_imaging.diffusion.tailored import importance_weights, timestep_loss_profile
from qml_imaging.models.diffusion_unet import DiffusionUNet
from qml_imaging.models.inr import parameter_count
from qml_imaging.pipelines.diffusion.config import DiffusionFewShotConfig
from qml_imaging.pipelines.diffusion.data import load_split
from qml_imaging.quantum.noise import NoiseBank
from qml_imaging.quantum.backends import BackendSpec
from qml_imaging.runs import MetricsLog, RunDir, checkpoint_folder, make_folder, register_run_folder, save_arrays_atomic
from qml_imaging.training import Trainer, seed_everything
from qml_imaging.training.artifacts import save_model_arguments
from qml_imaging.training.checkpoints import load_state_file
from qml_imaging.precedence import own_or_shared

IMAGE_SIDE = 28
PROFILE_SEED = 4_000_037
SAMPLING_SEED = 5_000_011
MAIN_PHASE_SEED = 1_000_003


@dataclass(frozen=True)
class ModelTask:
    """One diffusion model of the grid: data set, k training images, variant and seed (its name ``DATASET/kK/VARIANT/seedS``)."""
    dataset: str
    k: int
    variant: str
    seed: int
    noise_offset: int | None = None

    @property
    def name(self) -> str:
        return f"{self.dataset}/k{self.k}/{self.variant}/seed{self.seed}"

    def folder(self, run_path: Path) -> Path:
        """The folder of this model's products: ``<run>/models/<name>``."""
        return register_run_folder(run_path) / "models" / self.name


def training_normals(config: DiffusionFewShotConfig, channels: int, side: int = IMAGE_SIDE) -> int:
    """Normals of every training batch of one model (what ``noise: quantum`` reads from the bank first)."""
    return config.train.epochs * config.batches_per_epoch * config.train.batch_size * channels * side**2


def sampling_normals(config: DiffusionFewShotConfig, channels: int, side: int = IMAGE_SIDE) -> int:
    """Normals of one model's DDIM sampling (the start images, plus each step's noise when ``eta > 0``)."""
    draws_per_sample = 1 + (config.sampling.ddim_steps - 1 if config.sampling.eta > 0 else 0)
    return config.sampling.samples * channels * side**2 * draws_per_sample


def noise_needed(config: DiffusionFewShotConfig, channels: int, noise: str, side: int = IMAGE_SIDE) -> int:
    """Bank normals one model with ``noise`` (pseudo / quantum_sampler / quantum) reads."""
    training = training_normals(config, channels, side) if noise == "quantum" else 0
    return 0 if noise == "pseudo" else training + sampling_normals(config, channels, side)


def run_task(config: DiffusionFewShotConfig, run_path: str | Path, task: ModelTask,
             bottleneck: BackendSpec | None = None) -> dict:
    """Train (resuming from its checkpoints), sample and score ``task``'s model; return its result (plain data).
    A quantum bottleneck runs on the executor of ``bottleneck`` (the resolved ``unet.backend``; None: ``fast``).

    One task of the run's grid (:func:`qml_imaging.grid.run_grid`), which keeps the result.
    """
    run_path = Path(run_path)
    variant = config.variants[task.variant]
    split = load_split(config.datasets[task.dataset], config.split, config.evaluation.scores)
    images = split.fewshot(task.k, task.seed)
    bank = _bank(str(run_path / "noise_bank.npz")) if variant.noise != "pseudo" else None
    folder = make_folder(task.folder(run_path))

    seed_everything(task.seed)
    model = DiffusionUNet.from_spec(config.unet, split.channels, variant.bottleneck, bottleneck, side=split.side)
    save_model_arguments(checkpoint_folder(run_path, task.name), {"channels": split.channels, "side": split.side})
    schedule_name = own_or_shared(variant.schedule, config.diffusion.schedule)
    base = config.tailored.base if schedule_name == "tailored" else schedule_name
    schedule = make_schedule(base, config.diffusion.timesteps)
    batches = batch_source(config, images, bank if variant.noise == "quantum" else None, task.noise_offset)
    trainer, seconds, profile = _train(config, RunDir(run_path, config), task, model, schedule, schedule_name,
                                       images, batches, MetricsLog(folder / "metrics.jsonl"))

    denoiser = trainer.eval_model.eval()
    if bank is not None:
        start = task.noise_offset + (training_normals(config, split.channels, split.side)
                                     if variant.noise == "quantum" else 0)
        sampling_noise = bank_noise(NoiseBank(bank.samples[start:], bank.provenance))
    else:
        sampling_noise = torch_noise(torch.Generator().manual_seed(SAMPLING_SEED + task.seed))
    started = time.perf_counter()
    samples = _sample(denoiser, schedule, config, split.channels, sampling_noise, split.side)
    sampling_seconds = time.perf_counter() - started
    save_arrays_atomic(folder / "samples.npz", samples=_to_uint8(samples), training_images=_to_uint8(images))

    scores = fid_kid(split.reference, samples, feature_extractor(run_path, task.dataset),
                     config.evaluation.kid_subset_size, config.evaluation.kid_subsets) if config.evaluation.scores else {}
    result = {
        **asdict(task), "bottleneck": variant.bottleneck, "noise": variant.noise, "schedule": schedule_name,
        **scores, "nearest_training_distance": nearest_distance(samples, images),
        "parameters": parameter_count(model), "bottleneck_parameters": parameter_count(model.bottleneck),
        "training_seconds": seconds, "sampling_seconds": sampling_seconds, "samples": len(samples),
        "final_train_loss": trainer_loss(trainer), "image_side": split.side, "channels": split.channels,
        "timestep_profile": profile,
    }
    return result


def _train(config, run_dir, task, model, schedule, schedule_name, images, batches, metrics):
    """Fit with uniform timesteps, or (tailored) a pilot then importance-sampled timesteps."""
    settings = config.train
    if schedule_name != "tailored":
        trainer = Trainer(model, settings, objective=EpsilonObjective(schedule), metrics=metrics, seed=task.seed,
                          checkpoint_dir=run_dir.checkpoint_dir(task.name), fit_name=task.name)
        return trainer, trainer.fit(batches).seconds, None
    pilot_epochs = tailored_pilot_epochs(config)
    pilot = Trainer(model, _with_epochs(settings, pilot_epochs), objective=EpsilonObjective(schedule),
                    metrics=metrics, seed=task.seed, checkpoint_dir=run_dir.checkpoint_dir(f"{task.name}/pilot"),
                    fit_name=f"{task.name}/pilot")
    pilot_seconds = pilot.fit(batches).seconds
    started = time.perf_counter()
    profile = timestep_loss_profile(pilot.eval_model.eval(), schedule, images, config.tailored.bins,
                                    config.tailored.repeats, torch.Generator().manual_seed(PROFILE_SEED + task.seed))
    profile_seconds = time.perf_counter() - started
    weights = importance_weights(profile, schedule.steps, config.tailored.uniform_share)
    main = Trainer(model, _with_epochs(settings, settings.epochs - pilot_epochs),
                   objective=EpsilonObjective(schedule, timestep_weights=weights), metrics=metrics,
                   seed=task.seed + MAIN_PHASE_SEED, checkpoint_dir=run_dir.checkpoint_dir(f"{task.name}/main"),
                   fit_name=f"{task.name}/main")
    main_seconds = main.fit(lambda epoch, generator: batches(epoch + pilot_epochs, generator)).seconds
    return main, pilot_seconds + profile_seconds + main_seconds, profile.tolist()


def tailored_pilot_epochs(config: DiffusionFewShotConfig) -> int:
    """Epochs of the tailored schedule's pilot fit: ``tailored.pilot_fraction`` of ``train.epochs``, at least one,
    leaving at least one for the main fit."""
    epochs = config.train.epochs
    return min(max(1, round(config.tailored.pilot_fraction * epochs)), epochs - 1)


def _with_epochs(settings: TrainSettings, epochs: int) -> TrainSettings:
    return settings.model_copy(update={"epochs": epochs})


def batch_source(config: DiffusionFewShotConfig, images: torch.Tensor, bank: NoiseBank | None, offset: int | None):
    """The Trainer's batch source: ``batches_per_epoch`` batches ``(x0, eps)`` of random training images and noise (Gaussian, or read from the noise bank at ``offset``)."""
    batch_size, per_epoch = config.train.batch_size, config.batches_per_epoch
    shape = (batch_size, *images.shape[1:])
    size = int(np.prod(shape))

    def batches(epoch: int, generator: torch.Generator):
        for index in range(per_epoch):
            x0 = images[torch.randint(len(images), (batch_size,), generator=generator)]
            if bank is None:
                eps = torch.randn(shape, generator=generator)
            else:
                eps = bank.window(offset + (epoch * per_epoch + index) * size, *shape)
            yield {"x0": x0, "eps": eps}

    return batches


def _sample(model, schedule: NoiseSchedule, config: DiffusionFewShotConfig, channels: int, noise,
            side: int = IMAGE_SIDE, samples: int | None = None, steps: int | None = None, eta: float | None = None,
            batch_size: int | None = None) -> torch.Tensor:
    """``samples`` (default ``config.sampling.samples``) DDIM samples ``(N, C, side, side)`` in [-1, 1];
    each DDIM step evaluates the model once per batch of ``batch_size`` images."""
    device = next(model.parameters()).device
    total = config.sampling.samples if samples is None else samples
    per_batch = batch_size or config.sampling.batch_size
    batches = []
    for start in range(0, total, per_batch):
        count = min(per_batch, total - start)
        batches.append(ddim_sample(model, schedule, (count, channels, side, side), noise,
                                   steps or config.sampling.ddim_steps,
                                   config.sampling.eta if eta is None else eta, device).cpu())
    return torch.cat(batches)


def sample_images(trained, n: int, *, steps: int | None = None, eta: float | None = None, seed: int = 0,
                  batch_size: int | None = None) -> np.ndarray:
    """``n`` DDIM samples of a loaded model (:func:`qml_imaging.training.artifacts.load_model`) as float32
    ``(n, C, S, S)`` in [-1, 1], from pseudo-random start noise seeded by ``seed``; the run's schedule,
    ``sampling.ddim_steps`` and ``eta`` unless given. All ``n`` images form one batch unless ``batch_size``
    is given, so a quantum bottleneck is one executor call (one job on IBM) per DDIM step and batch."""
    config = trained.config
    steps = config.sampling.ddim_steps if steps is None else steps
    if not 1 <= steps <= config.diffusion.timesteps:
        raise ValueError(f"--steps must be in 1..{config.diffusion.timesteps} (the run's diffusion.timesteps), got {steps}")
    if eta is not None and not 0 <= eta <= 1:
        raise ValueError(f"eta must be in [0, 1], got {eta}")
    variant = config.variants[trained.extras["task"].variant]
    schedule_name = own_or_shared(variant.schedule, config.diffusion.schedule)
    base = config.tailored.base if schedule_name == "tailored" else schedule_name
    schedule = make_schedule(base, config.diffusion.timesteps)
    noise = torch_noise(torch.Generator().manual_seed(seed))
    images = _sample(trained.model.eval(), schedule, config, trained.extras["channels"], noise, trained.extras["side"],
                     samples=n, steps=steps, eta=eta, batch_size=batch_size or n)
    return images.numpy().astype(np.float32)


def trainer_loss(trainer) -> float | None:
    """The last logged training loss of ``trainer``'s fit (None when none was logged)."""
    if trainer.metrics is None:
        return None
    losses = [r["train_loss"] for r in trainer.metrics.records(trainer.fit_name) if "train_loss" in r]
    return losses[-1] if losses else None


def nearest_distance(samples: torch.Tensor, training: torch.Tensor) -> float:
    """Median over ``samples`` of the RMS pixel distance to the nearest training image (0: a copy)."""
    distances = torch.cdist(samples.flatten(1).double(), training.flatten(1).double())
    return float(distances.min(dim=1).values.median() / np.sqrt(samples[0].numel()))


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


@lru_cache(maxsize=2)
def _bank(path: str) -> NoiseBank:
    return NoiseBank.load(path)


@lru_cache(maxsize=8)
def _stored_extractor(path: str) -> FeatureExtractor:
    stored = load_state_file(path)
    classifier = LeNetClassifier(stored["in_channels"], stored["classes"])
    classifier.load_state_dict(stored["state_dict"])
    return FeatureExtractor(classifier, stored["feature_scale"])


def feature_network_path(run_path: str | Path, dataset: str) -> Path:
    """The file of the feature classifier trained for ``dataset``: ``<run>/feature_nets/<dataset>.pt``."""
    return Path(run_path) / "feature_nets" / f"{dataset}.pt"


def feature_extractor(run_path: str | Path, dataset: str) -> FeatureExtractor:
    """The FID/KID feature extractor of ``dataset``, from the classifier the run trained and saved."""
    return _stored_extractor(str(feature_network_path(run_path, dataset)))
