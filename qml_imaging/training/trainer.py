"""The one training loop of qml-imaging.

:class:`Trainer` fits any ``nn.Module``. What differs between experiments is handed to it:

* the **data**: a ``torch.utils.data.Dataset`` (shuffled each epoch by a generator seeded from
  ``(seed, epoch)``) or a *batch source*, a callable ``(epoch, generator) -> iterable of batches``
  for data generated afresh every epoch (it must draw its randomness from ``generator``);
* the **objective**: ``objective(model, batch) -> scalar loss tensor``
  (:func:`supervised` builds one from a ``loss(prediction, target)``);
* the **evaluation**: ``evaluate(model) -> {name: float}``, run on the EMA weights when EMA is on.

**Several players** (a GAN's generator and discriminator): ``players={name: optimizer options}`` gives
each sub-module ``getattr(model, name)`` its own optimizer (``settings.optimizer`` with ``settings.lr``
and ``weight_decay``, updated by the options, e.g. ``{"lr": 2e-3, "betas": (0.0, 0.99)}``) and scheduler.
The objective is then called ``objective(model, batch, step)`` and calls ``step(name, loss)`` for each
player in the order it wants (zero that player's gradients, backward, clip, optimizer step: still the
only place an optimizer steps); it returns the scalar loss logged as ``train_loss``, and each player's
mean loss is logged as ``train_loss/<name>``. The EMA (when on) averages the whole model after every
batch. Checkpoints then hold ``optimizer`` and ``scheduler`` as ``{name: state}``. Several players
under ``torchrun`` are refused (DistributedDataParallel wraps one module and one backward per step).

Checkpoints are taken at epoch boundaries and hold model, optimizer, scheduler, EMA, gradient
scaler, every global RNG state and the state of every *random source* (a generator an object keeps for
itself: a sub-module's, such as a sampled backend's behind a quantum layer, the objective's, or one
handed over as ``random_sources={name: object}``; see :mod:`qml_imaging.random_sources`), so a run
killed at any moment and resumed from its last checkpoint ends with the same numbers as an
uninterrupted one (on CPU; CUDA kernels may differ in the last bits; ``tests/test_exact_resume.py``).
Checkpoints are loaded with ``weights_only=True`` (see :mod:`qml_imaging.training.checkpoints`), and a
damaged ``last.pt`` falls back to ``previous.pt``. When a fit starts (afresh or resumed), its records
in ``metrics.jsonl`` past the epoch it starts from are dropped, so every epoch is logged exactly once
even after a kill before the first checkpoint.

**BatchNorm and a last batch of one sample.** BatchNorm cannot normalise a batch of one sample in
training mode (torch stops with "Expected more than 1 value per channel"). When the model has
BatchNorm layers and a data set's shard leaves a remainder of exactly one sample, that sample joins
the batch before it (one batch of ``batch_size + 1``), so every sample is still used in every epoch
and nothing is dropped; without BatchNorm, batches are as requested. A data set of a single sample
per process with a BatchNorm model is refused with a clear error. Batch sources make their own
batches: a one-sample batch from one stops with an error naming the fit and the batch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, Dataset, TensorDataset
from tqdm.auto import tqdm

from qml_imaging.config import TrainSettings
from qml_imaging.random_sources import capture_sources, find_random_sources, restore_sources
from qml_imaging.runs import MetricsLog
from qml_imaging.training import distributed
from qml_imaging.training.callbacks import Callback
from qml_imaging.training.checkpoints import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from qml_imaging.training.gradient_noise import gradient_noise
from qml_imaging.training.live_logs import live_sinks
from qml_imaging.training.precision import StepPrecision, autocast_dtype, uses_channels_last

Objective = Callable[..., torch.Tensor]
Evaluator = Callable[[nn.Module], dict[str, float]]
BatchSource = Callable[[int, torch.Generator], Iterable[Any]]


def supervised(loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Objective:
    """Objective for ``(inputs, targets)`` batches: ``loss(model(inputs), targets)``."""

    def objective(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        inputs, targets = batch
        return loss(model(inputs), targets)

    return objective


@dataclass
class FitResult:
    """What a finished fit returns.

    ``metrics`` is the last evaluation (empty without an evaluator); ``seconds`` is the training
    wall time summed over every session of the fit, resumed ones included.
    """

    epochs: int
    final_loss: float
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    resumed_from_epoch: int | None = None


class Trainer:
    """Fit ``model`` with ``settings``; see the module docstring for the data/objective/evaluate contract."""

    def __init__(
        self,
        model: nn.Module,
        settings: TrainSettings,
        *,
        objective: Objective,
        evaluate: Evaluator | None = None,
        checkpoint_dir: str | Path | None = None,
        metrics: MetricsLog | None = None,
        seed: int = 0,
        fit_name: str = "fit",
        players: dict[str, dict[str, Any]] | None = None,
        callbacks: Sequence[Callback] = (),
        random_sources: dict[str, Any] | None = None,
    ):
        self.settings = settings
        self.objective = objective
        self.evaluate_fn = evaluate
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.metrics = metrics
        self.seed = seed
        self.fit_name = fit_name
        self.group = distributed.current_process_group()
        self.device = _select_device(settings.device, self.group)
        self.module = model.to(self.device)
        self.model: nn.Module = (
            DistributedDataParallel(self.module, device_ids=[self.device.index] if self.device.type == "cuda" else None)
            if self.group.is_distributed
            else self.module
        )
        self.players = dict(players) if players is not None else None
        self.optimizers = self._player_optimizers() if self.players is not None else {
            "model": _make_optimizer(self.module, settings)}
        self.schedulers = {name: _make_scheduler(optimizer, settings) for name, optimizer in self.optimizers.items()}
        self.optimizer = next(iter(self.optimizers.values()))
        self.scheduler = next(iter(self.schedulers.values()))
        self.ema = (
            AveragedModel(self.module, multi_avg_fn=get_ema_multi_avg_fn(settings.ema_decay), use_buffers=True)
            if settings.ema_decay is not None
            else None
        )
        self.autocast_dtype = autocast_dtype(settings.precision, self.device)
        self.precision = StepPrecision(self.module, self.device, self.autocast_dtype,
                                       uses_channels_last(settings.channels_last, self.module))
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.autocast_dtype == torch.float16)
        self.random_sources = find_random_sources(self.module, objective, random_sources)
        sinks = live_sinks(settings.logging, metrics.path.parent, fit_name) if metrics is not None else []
        self.callbacks: list[Callback] = [*sinks, *callbacks]

    def _player_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One optimizer per player (a sub-module named in ``players``, with its options); ValueError naming the
        fit for no players, players that are not sub-modules, or several players under torchrun."""
        if not self.players:
            raise ValueError(f"{self.fit_name}: players must name at least one sub-module")
        if self.group.is_distributed:
            raise ValueError(f"{self.fit_name}: a fit with several players (optimizers) cannot run under torchrun")
        missing = [name for name in self.players if not isinstance(getattr(self.module, name, None), nn.Module)]
        if missing:
            raise ValueError(f"{self.fit_name}: players {missing} are not sub-modules of {type(self.module).__name__}")
        return {name: _make_optimizer(getattr(self.module, name), self.settings, options)
                for name, options in self.players.items()}

    @property
    def eval_model(self) -> nn.Module:
        """The weights evaluation uses: the EMA average when EMA is on, else the trained module."""
        return self.ema.module if self.ema is not None else self.module

    def fit(self, data: Dataset | BatchSource) -> FitResult:
        """Train for ``settings.epochs`` epochs, resuming from ``checkpoint_dir`` when it holds a checkpoint."""
        if callable(data) and not isinstance(data, Dataset):
            batches = data
        else:
            batches = _dataset_batches(data, self.settings, self.seed, merge_single=_has_batchnorm(self.module),
                                       fit_name=self.fit_name)
        start_epoch, seconds, last_loss, last_metrics = self._resume()
        resumed_from = start_epoch if start_epoch > 0 else None
        if self.metrics is not None and self.group.is_main:
            # Records past the starting epoch come from a session that died before its next checkpoint
            # (or before its first one): they will be produced again.
            self.metrics.truncate(self.fit_name, after_epoch=start_epoch)
        if start_epoch == 0:
            torch.manual_seed(self.seed + 7919 * self.group.rank)
        for callback in self._main_callbacks():
            callback.on_fit_start(self, start_epoch)
        with self.precision.fit_layout():
            last_loss, last_metrics, seconds = self._run_epochs(batches, start_epoch, seconds, last_loss, last_metrics)
        result = FitResult(self.settings.epochs, last_loss, last_metrics, seconds, resumed_from)
        for callback in self._main_callbacks():
            callback.on_fit_end(self, result)
        return result

    def _run_epochs(self, batches: BatchSource, start_epoch: int, seconds: float, last_loss: float,
                    last_metrics: dict[str, float]) -> tuple[float, dict[str, float], float]:
        """Epochs ``start_epoch ..`` to the end: train, log, evaluate and checkpoint; the last loss and
        metrics and the summed training seconds."""
        bar = tqdm(total=self.settings.epochs, initial=start_epoch, desc=self.fit_name, mininterval=0.5,
                   disable=not (self.settings.progress and self.group.is_main), leave=False)
        for epoch in range(start_epoch, self.settings.epochs):
            started = time.perf_counter()
            generator = torch.Generator().manual_seed(_epoch_seed(self.seed, epoch, self.group.rank))
            last_loss, player_losses = self._train_epoch(batches(epoch, generator), epoch, bar)
            for scheduler in self.schedulers.values():
                scheduler.step()
            seconds += time.perf_counter() - started
            done = epoch + 1
            self._log({"epoch": done, "train_loss": last_loss, "lr": self.optimizer.param_groups[0]["lr"],
                       **{f"train_loss/{name}": value for name, value in player_losses.items()},
                       **gradient_noise(self.module)})
            if self.evaluate_fn is not None and (done % self.settings.eval_every == 0 or done == self.settings.epochs):
                last_metrics = self._evaluate()
                self._log({"epoch": done, **{f"eval/{k}": v for k, v in last_metrics.items()}}, evaluation=True)
            if done % self.settings.checkpoint_every == 0 or done == self.settings.epochs:
                self._save(done, seconds, last_loss, last_metrics)
            bar.update(1)
        bar.close()
        return last_loss, last_metrics, seconds

    def _train_epoch(self, batches: Iterable[Any], epoch: int, bar: tqdm) -> tuple[float, dict[str, float]]:
        self.model.train()
        total, count = 0.0, 0
        player_totals = dict.fromkeys(self.players or (), 0.0)

        def step(name: str, loss: torch.Tensor) -> None:
            if name not in self.optimizers or self.players is None:
                raise ValueError(f"{self.fit_name}: step({name!r}) names no player; players: {list(self.players or ())}")
            self._check_finite(loss, epoch, name)
            self._step(self.optimizers[name], getattr(self.module, name), loss)
            player_totals[name] += loss.item()

        for batch in batches:
            batch = _to_device(batch, self.device)
            with self.precision.autocast():
                try:
                    loss = self.objective(self.model, batch, step) if self.players else self.objective(self.model, batch)
                except ValueError as error:
                    if "Expected more than 1 value per channel" not in str(error):
                        raise
                    raise ValueError(
                        f"{self.fit_name}: a training batch of epoch {epoch + 1} holds one sample, which the "
                        f"model's BatchNorm layers cannot normalise ({error}); use batches of at least 2 samples"
                    ) from error
            self._check_finite(loss, epoch)
            if self.players is None:
                self._step(self.optimizer, self.module, loss)
            self.scaler.update()
            if self.ema is not None:
                self.ema.update_parameters(self.module)
            total += loss.item()
            count += 1
            bar.set_postfix(loss=f"{loss.item():.4g}", refresh=False)
        if count == 0:
            raise ValueError(f"{self.fit_name}: epoch {epoch + 1} produced no batches")
        return distributed.mean_over_ranks(total / count), {name: value / count for name, value in player_totals.items()}

    def _check_finite(self, loss: torch.Tensor, epoch: int, player: str | None = None) -> None:
        if not torch.isfinite(loss):
            which = f"the {player} loss" if player else "loss"
            raise FloatingPointError(
                f"{self.fit_name}: {which} became {loss.item()} in epoch {epoch + 1}; lower the learning rate "
                f"(lr = {self.settings.lr:g}: train.lr, or the model's own lr where it sets one) or set train.grad_clip"
            )

    def _step(self, optimizer: torch.optim.Optimizer, module: nn.Module, loss: torch.Tensor) -> None:
        """Zero ``optimizer``'s gradients, backward ``loss``, clip ``module``'s gradients, step: the only step."""
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.settings.grad_clip is not None:
            self.scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(module.parameters(), self.settings.grad_clip)
        self.scaler.step(optimizer)

    def _evaluate(self) -> dict[str, float]:
        metrics: dict[str, float] = {}
        if self.group.is_main:
            model = self.eval_model
            was_training = model.training
            model.eval()
            with torch.no_grad():
                metrics = {k: float(v) for k, v in self.evaluate_fn(model).items()}
            model.train(was_training)
        return distributed.broadcast_object(metrics)

    def _log(self, record: dict[str, Any], *, evaluation: bool = False) -> None:
        """Append ``record`` to ``metrics.jsonl`` (the source of truth), then hand it to the callbacks
        (``on_evaluation`` for an evaluation's record, else ``on_epoch_end``)."""
        record = {"fit": self.fit_name, **record}
        if self.metrics is not None and self.group.is_main:
            self.metrics.append(record)
        for callback in self._main_callbacks():
            if evaluation:
                callback.on_evaluation(self, record)
            else:
                callback.on_epoch_end(self, record)

    def _main_callbacks(self) -> list[Callback]:
        """The callbacks on the main process; none on the other ranks of a ``torchrun`` group."""
        return self.callbacks if self.group.is_main else []

    def _save(self, epoch: int, seconds: float, loss: float, metrics: dict[str, float]) -> None:
        if self.checkpoint_dir is None:
            return
        rng_states = distributed.gather_objects(capture_rng_state())
        source_states = distributed.gather_objects(capture_sources(self.random_sources))
        if self.group.is_main:
            save_checkpoint(
                self.checkpoint_dir,
                {
                    "epoch": epoch,
                    "seconds": seconds,
                    "train_loss": loss,
                    "metrics": metrics,
                    "model": self.module.state_dict(),
                    "optimizer": self._states(self.optimizers),
                    "scheduler": self._states(self.schedulers),
                    "ema": self.ema.state_dict() if self.ema is not None else None,
                    "scaler": self.scaler.state_dict(),
                    "rng": rng_states,
                    "random_sources": source_states,
                    "settings": self.settings.model_dump(),
                },
            )
            for callback in self._main_callbacks():
                callback.on_checkpoint(self, epoch, self.checkpoint_dir)
        distributed.barrier()

    def _states(self, objects: dict[str, Any]) -> dict[str, Any]:
        """``{name: state}`` with several players, else the one object's state (the single-player format)."""
        if self.players is None:
            return next(iter(objects.values())).state_dict()
        return {name: item.state_dict() for name, item in objects.items()}

    def _resume(self) -> tuple[int, float, float, dict[str, float]]:
        state = load_checkpoint(self.checkpoint_dir, self.device) if self.checkpoint_dir is not None else None
        if state is None:
            return 0, 0.0, math.nan, {}
        self.module.load_state_dict(state["model"])
        for key, objects in (("optimizer", self.optimizers), ("scheduler", self.schedulers)):
            stored = state[key] if self.players is not None else {"model": state[key]}
            for name, item in objects.items():
                item.load_state_dict(stored[name])
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"])
        self.scaler.load_state_dict(state["scaler"])
        rng_states = state["rng"]
        if len(rng_states) == self.group.world_size:
            restore_rng_state(rng_states[self.group.rank])
            restore_sources(self.random_sources, state.get("random_sources", [{}] * len(rng_states))[self.group.rank])
        return state["epoch"], state["seconds"], state["train_loss"], state["metrics"]


def _select_device(choice: str, group: distributed.ProcessGroup) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but no CUDA GPU is visible; use 'auto' or 'cpu'")
    if choice == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", group.local_rank)


def _make_optimizer(module: nn.Module, settings: TrainSettings, options: dict[str, Any] | None = None
                    ) -> torch.optim.Optimizer:
    optimizer_class = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "adamax": torch.optim.Adamax}
    keywords = {"lr": settings.lr, "weight_decay": settings.weight_decay, **(options or {})}
    return optimizer_class[settings.optimizer](module.parameters(), **keywords)


def _make_scheduler(optimizer: torch.optim.Optimizer, settings: TrainSettings) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-epoch schedule: optional linear warm-up, then constant / cosine / step / exponential."""
    lr_scheduler = torch.optim.lr_scheduler
    remaining = max(settings.epochs - settings.warmup_epochs, 1)
    main = {
        "constant": lambda: lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0),
        "cosine": lambda: lr_scheduler.CosineAnnealingLR(optimizer, T_max=remaining),
        "step": lambda: lr_scheduler.StepLR(optimizer, step_size=settings.step_size, gamma=settings.gamma),
        "exponential": lambda: lr_scheduler.ExponentialLR(optimizer, gamma=settings.gamma),
    }[settings.lr_schedule]()
    if settings.warmup_epochs == 0:
        return main
    warmup = lr_scheduler.LinearLR(
        optimizer, start_factor=1.0 / (settings.warmup_epochs + 1), total_iters=settings.warmup_epochs
    )
    return lr_scheduler.SequentialLR(optimizer, [warmup, main], milestones=[settings.warmup_epochs])


def _epoch_seed(seed: int, epoch: int, rank: int) -> int:
    return (seed * 1_000_003 + epoch * 7919 + rank * 104_729) % 2**63


def _has_batchnorm(module: nn.Module) -> bool:
    return any(isinstance(layer, nn.modules.batchnorm._BatchNorm) for layer in module.modules())


def _dataset_batches(dataset: Dataset, settings: TrainSettings, seed: int, *, merge_single: bool = False,
                     fit_name: str = "fit") -> BatchSource:
    """Turn a dataset into a batch source: a seeded shuffle per epoch, sharded over data-parallel ranks.

    With ``merge_single`` (a model with BatchNorm), a last batch of one sample joins the batch before it.
    """
    group = distributed.current_process_group()
    size = len(dataset)
    shard = size // group.world_size
    if shard == 0:
        raise ValueError(f"data set of {size} samples cannot be split over {group.world_size} processes")
    if merge_single and shard == 1:
        raise ValueError(
            f"{fit_name}: the data set gives {shard} sample per process ({size} samples, {group.world_size} "
            "processes), but the model's BatchNorm layers need at least 2 samples per training batch"
        )
    batch_size = settings.batch_size or shard
    starts = list(range(0, shard, batch_size))
    if merge_single and len(starts) > 1 and shard - starts[-1] == 1:
        starts.pop()  # the last sample joins the batch before it
    bounds = list(zip(starts, [*starts[1:], shard], strict=True))

    def batches(epoch: int, generator: torch.Generator) -> Iterator[Any]:
        # The shuffle must be the same on every rank so that the shards partition the data.
        order = torch.randperm(size, generator=torch.Generator().manual_seed(_epoch_seed(seed, epoch, 0)))
        indices = order[group.rank * shard : (group.rank + 1) * shard]
        if isinstance(dataset, TensorDataset):
            for start, stop in bounds:
                chunk = indices[start:stop]
                yield tuple(tensor[chunk] for tensor in dataset.tensors)
        elif len(bounds) == len(range(0, shard, batch_size)):
            # DataLoader draws a worker seed from its generator; give it ours so the global RNG is untouched.
            yield from DataLoader(dataset, batch_size=batch_size, sampler=indices.tolist(), generator=generator)
        else:
            chunks = [indices[start:stop].tolist() for start, stop in bounds]
            yield from DataLoader(dataset, batch_sampler=chunks, generator=generator)

    return batches


def _to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor in a (nested) tuple, list or dict to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_device(item, device) for item in batch)
    if isinstance(batch, dict):
        return {key: _to_device(value, device) for key, value in batch.items()}
    return batch
