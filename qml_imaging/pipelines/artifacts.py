"""A trained model as an artifact: :func:`load_model` turns a run folder into the ``nn.Module`` it trained.

``load_model(run_dir, fit=None)`` returns a :class:`TrainedModel`: the network rebuilt from the run's
``config.yaml`` with the weights of its final checkpoint (the EMA weights when the run trained with
``train.ema_decay``, which is also what the run evaluated), in eval mode, with the run's config and the
preprocessing of its data. Checkpoints are read only through
:func:`qml_imaging.training.checkpoints.load_checkpoint` (``weights_only``: nothing is unpickled).

Kinds of run and their fits (``fit=None`` takes the first):

* ``inr_image``: ``IMAGE/MODEL/seedN``. BatchNorm statistics are recomputed on the full training grid,
  as the run did before every evaluation; :meth:`TrainedModel.render` evaluates it on any grid.
* ``inr_signal``: ``MODEL/seedN``; :meth:`TrainedModel.render` evaluates it at any number of samples.
* ``diffusion_fewshot``: ``DATASET/kK/VARIANT/seedS``; :meth:`TrainedModel.sample` draws images.
* ``qiren_generation``: ``EMBEDDING/seedS``; the model is the (EMA) generator, :meth:`TrainedModel.sample` draws images.
* ``g2_regression``: ``cnn``.
* ``g2_measured``: ``cnn_by_emitter`` or ``cnn_leaky`` (the CNN of each split it trained; the first
  split by default, ``by_emitter`` where trained).

Errors: FileNotFoundError (not a run folder), :class:`~qml_imaging.runs.RunFolderError` (a kind of run
that has no model), ValueError (an unknown or unfinished fit), and the checkpoint errors of
:mod:`qml_imaging.training.checkpoints`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from qml_imaging.config import ExperimentConfig
from qml_imaging.data.catalog import SKIMAGE_IMAGES, image_key
from qml_imaging.data.datasets import coordinate_grid
from qml_imaging.quantum.layer import QuantumLayer
from qml_imaging.runs import RunDir, RunFolderError
from qml_imaging.training.checkpoints import load_checkpoint

MAX_RENDER_POINTS = 4096 * 4096
"""The most coordinates :meth:`TrainedModel.render` evaluates in one call."""
KINDS = ("inr_image", "inr_signal", "diffusion_fewshot", "qiren_generation", "g2_regression", "g2_measured")


@dataclass
class TrainedModel:
    """A trained network with what it needs to be used.

    ``model``: the ``nn.Module`` in eval mode (EMA weights when ``ema``); ``config``: the run's config;
    ``fit``: which fit of the run; ``preprocessing``: how its data was prepared (plain data, for
    reports); ``metrics``: the last evaluation stored in the checkpoint; ``inputs`` / ``targets``:
    the training grid and values of an INR (``(N, d)``, ``(N, C)``), None otherwise (``targets`` is
    also None when the training image or signal file has moved: the grid then comes from the run's
    ``report.json``).
    """

    model: nn.Module
    config: ExperimentConfig
    fit: str
    run_dir: Path
    ema: bool
    preprocessing: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    inputs: torch.Tensor | None = None
    targets: torch.Tensor | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def quantum_layers(self) -> list[QuantumLayer]:
        return [module for module in self.model.modules() if isinstance(module, QuantumLayer)]

    def use_backend(self, backend) -> None:
        """Run every quantum layer on ``backend`` (a backend spec name, YAML path or executor); weights unchanged."""
        from qml_imaging.quantum.factory import make_executor

        executor = backend if not isinstance(backend, (str, Path, dict)) else make_executor(backend)
        for layer in self.quantum_layers():
            layer.use_backend(executor)

    def render(self, size: int | tuple[int, int]) -> np.ndarray:
        """Evaluate a fitted INR on a finer or coarser grid.

        Images (``inr_image``): ``size`` is the side of a square grid or ``(height, width)``; returns
        float32 ``(H, W, C)`` in the run's value range ([-1, 1]) on ``coordinate_grid(H, W)``, the
        grid convention of training (pixel centres on ``linspace(-1, 1)``), so the training size
        reproduces the run's own evaluation. Signals (``inr_signal``): ``size`` samples on
        ``linspace(-1, 1)``, float32 ``(size,)``. Raises ValueError for other runs, sizes < 1 or more than ``MAX_RENDER_POINTS`` points.
        """
        from qml_imaging.pipelines.inr.fitting import predict

        kind = self.config.experiment
        if kind == "inr_image":
            height, width = (size, size) if isinstance(size, int) else tuple(size)
            if min(height, width) < 1:
                raise ValueError(f"render size must be positive, got {size}")
            if height * width > MAX_RENDER_POINTS:
                raise ValueError(f"render size {height}x{width} is {height * width:,} points; at most "
                                 f"{MAX_RENDER_POINTS:,} (4096x4096) are evaluated at once")
            output = predict(self.model, coordinate_grid(height, width))
            return output.reshape(height, width, -1).numpy().astype(np.float32)
        if kind == "inr_signal":
            if not isinstance(size, int) or not 2 <= size <= MAX_RENDER_POINTS:
                raise ValueError(f"a signal renders at 2 to {MAX_RENDER_POINTS:,} samples, got {size}")
            return predict(self.model, torch.linspace(-1.0, 1.0, size).unsqueeze(1))[:, 0].numpy().astype(np.float32)
        raise ValueError(f"{self.run_dir} is a {kind!r} run; render needs an inr_image or inr_signal run")

    def sample(self, n: int, *, steps: int | None = None, eta: float | None = None, seed: int = 0,
               batch_size: int | None = None) -> np.ndarray:
        """``n`` new images of a diffusion or generation run, float32 ``(n, C, S, S)`` in [-1, 1]. Diffusion:
        DDIM from pseudo-random start noise drawn with ``seed``; ``steps`` and ``eta`` default to the run's
        ``sampling``. Generation: the generator on latents drawn with ``seed`` (``steps`` and ``eta`` must be None),
        clipped to the data range [-1, 1] (the generator's output layer is unbounded), as the run's own sample grids."""
        if self.config.experiment == "qiren_generation":
            if steps is not None or eta is not None:
                raise ValueError("--steps and --eta are DDIM settings; a qiren_generation generator takes neither")
            from qml_imaging.pipelines.generation.pipeline import generate

            return generate(self.model, n, batch_size or n, seed).clamp(-1.0, 1.0).numpy().astype(np.float32)
        if self.config.experiment != "diffusion_fewshot":
            raise ValueError(f"{self.run_dir} is a {self.config.experiment!r} run; sample needs a diffusion_fewshot "
                             "or qiren_generation run")
        from qml_imaging.pipelines.diffusion.model_task import sample_images

        return sample_images(self, n, steps=steps, eta=eta, seed=seed, batch_size=batch_size)


def load_model(run_dir: str | Path, fit: str | None = None, *, backend=None) -> TrainedModel:
    """The trained model of ``fit`` in ``run_dir`` (see the module docstring); ``backend`` switches its
    quantum layers to another backend spec (a name such as ``aer_shots``, or a YAML path)."""
    run = RunDir.open(run_dir, check_files=False)
    kind = run.config.experiment
    loaders = {"inr_image": _load_inr_image, "inr_signal": _load_inr_signal,
               "diffusion_fewshot": _load_diffusion, "qiren_generation": _load_generator, "g2_regression": _load_g2,
               "g2_measured": _load_g2_measured}
    if kind not in loaders:
        raise RunFolderError(f"{str(run.path)!r} is a {kind!r} run; load_model reads {', '.join(KINDS)} runs")
    trained = loaders[kind](run, fit)
    trained.model.eval()
    if backend is not None:
        trained.use_backend(backend)
    return trained


def final_weights(run: RunDir, fit: str, checkpoint: str, epochs: int) -> tuple[dict[str, torch.Tensor], bool, dict]:
    """``(state_dict, ema, metrics)`` of the finished fit whose checkpoints are in ``checkpoint``: the
    EMA weights when the fit kept an EMA, else the model's. Raises ValueError for a missing or unfinished fit."""
    state = load_checkpoint(run.checkpoint_dir(checkpoint))
    if state is None:
        raise ValueError(f"fit {fit!r} of {run.path} has no checkpoint; finish it with "
                         f"`qml-imaging run --resume {run.path}`")
    if state["epoch"] < epochs:
        raise ValueError(f"fit {fit!r} of {run.path} has not finished (epoch {state['epoch']} of {epochs}); "
                         f"finish it with `qml-imaging run --resume {run.path}`")
    ema = state.get("ema")
    if ema is not None:
        return {k.removeprefix("module."): v for k, v in ema.items() if k.startswith("module.")}, True, \
            dict(state.get("metrics") or {})
    return state["model"], False, dict(state.get("metrics") or {})


def _split_fit(run: RunDir, fit: str, parts: int, example: str) -> list[str]:
    pieces = fit.split("/")
    if len(pieces) != parts or not all(pieces):
        raise ValueError(f"fit {fit!r} of {run.path} is not of the form {example}")
    return pieces


def _model_spec(run: RunDir, fit: str, model_name: str, seed: str):
    spec = run.config.models.get(model_name)
    if spec is None or not seed.startswith("seed") or not seed[4:].isdigit() or int(seed[4:]) >= run.config.seeds:
        raise ValueError(f"fit {fit!r} is not a fit of {run.path}; its models: {list(run.config.models)}, "
                         f"seeds 0..{run.config.seeds - 1}")
    return spec


def _load_inr_image(run: RunDir, fit: str | None) -> TrainedModel:
    from qml_imaging.pipelines.inr.fitting import build_model, matched_width, model_executors, recalibrate_batch_norm
    from qml_imaging.pipelines.inr.image import load_target, pixel_values

    config = run.config
    keys = {image_key(entry): entry for entry in config.images}
    fit = fit or f"{next(iter(keys))}/{next(iter(config.models))}/seed0"
    image, model_name, seed = _split_fit(run, fit, 3, "IMAGE/MODEL/seedN")
    spec = _model_spec(run, fit, model_name, seed)
    if image not in keys:
        raise ValueError(f"fit {fit!r} is not a fit of {run.path}; its images: {list(keys)}")
    entry, targets = keys[image], None
    if entry in SKIMAGE_IMAGES or Path(entry).is_file():
        target, info = load_target(config, entry)
        (channels, height, width), targets = target.shape, pixel_values(target)
    else:  # the image moved: its grid as the run recorded it
        info = _recorded_data(run, "images", entry)[image]
        channels = info["channels"]
        height, width = info["shape"][:2] if config.size == "native" else (config.size, config.size)
    executors = model_executors({model_name: spec})
    width_of_model = matched_width(spec, config.parameter_budget, executors, out_features=channels)
    model = build_model(spec, width_of_model, executors, out_features=channels)
    weights, ema, metrics = final_weights(run, fit, fit, config.train.epochs)
    model.load_state_dict(weights)
    coordinates = coordinate_grid(height, width)
    recalibrate_batch_norm(model, coordinates)
    preprocessing = {**info, "grid": [height, width], "value_range": [-1.0, 1.0],
                     "coordinates": "pixel centres on linspace(-1, 1) per axis, (row, column), row-major"}
    return TrainedModel(model.eval(), config, fit, run.path, ema, preprocessing, metrics, coordinates,
                        targets, {"model_kind": spec.kind})


def _load_inr_signal(run: RunDir, fit: str | None) -> TrainedModel:
    from qml_imaging.pipelines.inr.fitting import build_model, matched_width, model_executors, recalibrate_batch_norm
    from qml_imaging.pipelines.inr.signal import load_signal

    config = run.config
    fit = fit or f"{next(iter(config.models))}/seed0"
    model_name, seed = _split_fit(run, fit, 2, "MODEL/seedN")
    spec = _model_spec(run, fit, model_name, seed)
    source, targets = config.signal.file, None
    if source is None or Path(source).is_file():
        signal, info = load_signal(config)
        n_samples, targets = len(signal), torch.as_tensor(signal, dtype=torch.float32).unsqueeze(1)
    else:  # the signal file moved: its length and rate as the run recorded them
        info, n_samples = _recorded_data(run, "signal", source), config.signal.n_samples
    executors = model_executors({model_name: spec})
    model = build_model(spec, matched_width(spec, config.parameter_budget, executors, in_features=1), executors,
                        in_features=1)
    weights, ema, metrics = final_weights(run, fit, fit, config.train.epochs)
    model.load_state_dict(weights)
    times = torch.linspace(-1.0, 1.0, n_samples).unsqueeze(1)
    recalibrate_batch_norm(model, times)
    preprocessing = {**info, "value_range": [-1.0, 1.0], "coordinates": "t = linspace(-1, 1, n_samples)"}
    return TrainedModel(model.eval(), config, fit, run.path, ema, preprocessing, metrics, times, targets,
                        {"model_kind": spec.kind})


def _recorded_data(run: RunDir, key: str, missing: str) -> dict:
    """``details[key]`` of the run's ``report.json``: how the run prepared data that is no longer at
    ``missing``. Raises FileNotFoundError when the run has no report (it did not finish)."""
    report = run.path / "report.json"
    try:
        return json.loads(report.read_text())["details"][key]
    except (OSError, ValueError, KeyError) as error:
        raise FileNotFoundError(f"{missing!r}, the data of {run.path}, no longer exists and the run's report.json, "
                                f"which records its size, cannot be read ({type(error).__name__}); put the file "
                                f"back at that path, or restore report.json, to load the model") from None


def _load_diffusion(run: RunDir, fit: str | None) -> TrainedModel:
    from qml_imaging.models.diffusion_unet import DiffusionUNet
    from qml_imaging.pipelines.diffusion.data import load_split
    from qml_imaging.pipelines.diffusion.pipeline import plan_tasks

    config = run.config
    tasks = {task.name: task for task in plan_tasks(config)}
    fit = fit or next(iter(tasks))
    if fit not in tasks:
        raise ValueError(f"fit {fit!r} is not a model of {run.path}; its models: {list(tasks)}")
    task = tasks[fit]
    variant = config.variants[task.variant]
    split = load_split(config.datasets[task.dataset], config.split, config.evaluation.scores)
    schedule = variant.schedule or config.diffusion.schedule
    model = DiffusionUNet.from_spec(config.unet, split.channels, variant.bottleneck, side=split.side)
    if schedule == "tailored":
        pilot = min(max(1, round(config.tailored.pilot_fraction * config.train.epochs)), config.train.epochs - 1)
        weights, ema, metrics = final_weights(run, fit, f"{fit}/main", config.train.epochs - pilot)
    else:
        weights, ema, metrics = final_weights(run, fit, fit, config.train.epochs)
    model.load_state_dict(weights)
    preprocessing = {"dataset": config.datasets[task.dataset].model_dump(mode="json"), "channels": split.channels,
                     "image_side": split.side, "value_range": [-1.0, 1.0],
                     "schedule": schedule if schedule != "tailored" else f"tailored ({config.tailored.base} base)",
                     "timesteps": config.diffusion.timesteps}
    return TrainedModel(model.eval(), config, fit, run.path, ema, preprocessing, metrics,
                        extras={"task": task, "channels": split.channels, "side": split.side})


def _load_generator(run: RunDir, fit: str | None) -> TrainedModel:
    from qml_imaging.pipelines.generation.pipeline import build_pair

    config = run.config
    fits = [f"{embedding}/seed{seed}" for embedding in config.embeddings for seed in config.seeds]
    fit = fit or fits[0]
    if fit not in fits:
        raise ValueError(f"fit {fit!r} is not a model of {run.path}; its models: {fits}")
    weights, ema, metrics = final_weights(run, fit, fit, config.train.epochs)
    width, channels = weights["generator.layers.0.weight"].shape[0], weights["generator.output.weight"].shape[0]
    pair = build_pair(config, fit.split("/")[0], width, channels, config.data.size)
    pair.load_state_dict(weights)
    preprocessing = {"data": config.data.model_dump(mode="json"), "channels": channels, "image_side": config.data.size,
                     "value_range": [-1.0, 1.0], "latent_dim": config.generator.latent_dim}
    return TrainedModel(pair.generator.eval(), config, fit, run.path, ema, preprocessing, metrics,
                        extras={"channels": channels, "side": config.data.size})


def _load_g2(run: RunDir, fit: str | None) -> TrainedModel:
    from qml_imaging.pipelines.g2.regression import build_cnn

    fit = fit or "cnn"
    if fit != "cnn":
        raise ValueError(f"a g2_regression run has one model, 'cnn'; got fit {fit!r}")
    model = build_cnn(run.config)
    weights, ema, metrics = final_weights(run, fit, "cnn", run.config.train.epochs)
    model.load_state_dict(weights)
    return TrainedModel(model.eval(), run.config, fit, run.path, ema, {"input": "HBT histogram, see g2_regression"},
                        metrics)


def _load_g2_measured(run: RunDir, fit: str | None) -> TrainedModel:
    from qml_imaging.models.g2_cnn import G2CNN

    splits = run.config.protocol.splits
    fits = [f"cnn_{split}" for split in ("by_emitter", "leaky") if split in splits]
    fit = fit or fits[0]
    if fit not in fits:
        raise ValueError(f"fit {fit!r} is not a model of {run.path}; its models: {fits}")
    weights, ema, metrics = final_weights(run, fit, fit, run.config.train.epochs)
    model = G2CNN.from_spec(run.config.cnn, _input_bins(weights, run.config.cnn))
    model.load_state_dict(weights)
    return TrainedModel(model.eval(), run.config, fit, run.path, ema,
                        {"input": "measured HBT histogram on the run's delay axis, see g2_measured"}, metrics)


def _input_bins(weights: dict[str, torch.Tensor], cnn) -> int:
    """The histogram length a G2CNN's first dense layer implies: it has ``filters * ((bins - 3 (kernel - 1)) // 2) + 1``
    inputs (:class:`qml_imaging.models.g2_cnn.G2CNN`)."""
    first = next(v for k, v in weights.items() if k.startswith("regressor.") and k.endswith("weight"))
    per_filter = (first.shape[1] - 1) // cnn.filters
    return 2 * per_filter + 3 * (cnn.kernel - 1)
