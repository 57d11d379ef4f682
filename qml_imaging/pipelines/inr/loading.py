"""Loaders of fitted INRs (``inr_image``: fits ``IMAGE/MODEL/seedN``; ``inr_signal``: ``MODEL/seedN``), by registry.

Each rebuilds the model from the run's config and the ``model.json`` its fit stored (hidden width, input and
output features; :func:`qml_imaging.pipelines.inr.fitting.fit_model`), loads the final (EMA) weights and
recomputes the BatchNorm statistics on the full training grid, as the run did before every evaluation.
The training grid comes from the image or signal file, or from the run's ``report.json`` when the file has
moved (``targets`` is then None). :meth:`render` evaluates the model on any grid.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from qml_imaging.data.catalog import SKIMAGE_IMAGES, image_key
from qml_imaging.data.datasets import coordinate_grid
from qml_imaging.limits import MAX_RENDER_POINTS  # the most coordinates one render evaluates (4096 x 4096)
from qml_imaging.models.specs import InrModelSpec
from qml_imaging.pipelines.inr.fitting import build_model, model_executors, predict, recalibrate_batch_norm
from qml_imaging.pipelines.inr.image import load_target, pixel_values
from qml_imaging.pipelines.inr.signal import load_signal
from qml_imaging.runs import RunDir
from qml_imaging.training.artifacts import TrainedModel, final_weights, load_weights, model_arguments, recorded_data



class InrImageModel(TrainedModel):
    """A fitted image INR; :meth:`render` evaluates it on any grid."""

    def render(self, size: int | tuple[int, int]) -> np.ndarray:
        """The image on a ``size x size`` (or ``(height, width)``) grid: float32 ``(H, W, C)`` in the run's value
        range ([-1, 1]) on ``coordinate_grid(H, W)``, the grid convention of training (pixel centres on
        ``linspace(-1, 1)``), so the training size reproduces the run's own evaluation. Raises ValueError for
        sizes < 1 or more than ``MAX_RENDER_POINTS`` points."""
        height, width = (size, size) if isinstance(size, int) else tuple(size)
        if min(height, width) < 1:
            raise ValueError(f"render size must be positive, got {size}")
        if height * width > MAX_RENDER_POINTS:
            raise ValueError(f"render size {height}x{width} is {height * width:,} points; at most "
                             f"{MAX_RENDER_POINTS:,} (4096x4096) are evaluated at once")
        output = predict(self.model, coordinate_grid(height, width))
        return output.reshape(height, width, -1).numpy().astype(np.float32)


class InrSignalModel(TrainedModel):
    """A fitted signal INR; :meth:`render` evaluates it at any number of samples."""

    def render(self, size: int | tuple[int, int]) -> np.ndarray:
        """The signal at ``size`` samples on ``linspace(-1, 1)``, float32 ``(size,)``; ValueError for a grid
        shape or a count outside 2..``MAX_RENDER_POINTS``."""
        if not isinstance(size, int) or not 2 <= size <= MAX_RENDER_POINTS:
            raise ValueError(f"a signal renders at 2 to {MAX_RENDER_POINTS:,} samples, got {size}")
        return predict(self.model, torch.linspace(-1.0, 1.0, size).unsqueeze(1))[:, 0].numpy().astype(np.float32)


def load_image_fit(run: RunDir, fit: str | None) -> InrImageModel:
    """The fit ``IMAGE/MODEL/seedN`` (default: the first image, model and seed 0) of an ``inr_image`` run."""
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
        (height, width), targets = target.shape[1:], pixel_values(target)
    else:  # the image moved: its grid as the run recorded it
        info = recorded_data(run, "images", entry)[image]
        height, width = info["shape"][:2] if config.size == "native" else (config.size, config.size)
    coordinates = coordinate_grid(height, width)
    preprocessing = {**info, "grid": [height, width], "value_range": [-1.0, 1.0],
                     "coordinates": "pixel centres on linspace(-1, 1) per axis, (row, column), row-major"}
    return InrImageModel(config=config, fit=fit, run_dir=run.path, preprocessing=preprocessing, inputs=coordinates,
                         targets=targets, extras={"model_kind": spec.kind}, **_fitted(run, fit, spec, coordinates))


def load_signal_fit(run: RunDir, fit: str | None) -> InrSignalModel:
    """The fit ``MODEL/seedN`` (default: the first model, seed 0) of an ``inr_signal`` run."""
    config = run.config
    fit = fit or f"{next(iter(config.models))}/seed0"
    model_name, seed = _split_fit(run, fit, 2, "MODEL/seedN")
    spec = _model_spec(run, fit, model_name, seed)
    source, targets = config.signal.file, None
    if source is None or Path(source).is_file():
        signal, info = load_signal(config)
        n_samples, targets = len(signal), torch.as_tensor(signal, dtype=torch.float32).unsqueeze(1)
    else:  # the signal file moved: its length and rate as the run recorded them
        info, n_samples = recorded_data(run, "signal", source), config.signal.n_samples
    times = torch.linspace(-1.0, 1.0, n_samples).unsqueeze(1)
    preprocessing = {**info, "value_range": [-1.0, 1.0], "coordinates": "t = linspace(-1, 1, n_samples)"}
    return InrSignalModel(config=config, fit=fit, run_dir=run.path, preprocessing=preprocessing, inputs=times,
                          targets=targets, extras={"model_kind": spec.kind}, **_fitted(run, fit, spec, times))


def _fitted(run: RunDir, fit: str, spec: InrModelSpec, coordinates: torch.Tensor) -> dict:
    """``{model, ema, metrics}``: the model of ``fit`` built from its ``model.json``, with its final weights and
    BatchNorm statistics recomputed on ``coordinates``."""
    model = build_model(spec, executors=model_executors({fit: spec}), **model_arguments(run, fit))
    weights, ema, metrics = final_weights(run, fit, fit, run.config.train.epochs)
    load_weights(model, weights, run, fit)
    recalibrate_batch_norm(model, coordinates)
    return {"model": model.eval(), "ema": ema, "metrics": metrics}


def _split_fit(run: RunDir, fit: str, parts: int, example: str) -> list[str]:
    pieces = fit.split("/")
    if len(pieces) != parts or not all(pieces):
        raise ValueError(f"fit {fit!r} of {run.path} is not of the form {example}")
    return pieces


def _model_spec(run: RunDir, fit: str, model_name: str, seed: str) -> InrModelSpec:
    spec = run.config.models.get(model_name)
    if spec is None or not seed.startswith("seed") or not seed[4:].isdigit() or int(seed[4:]) >= run.config.seeds:
        raise ValueError(f"fit {fit!r} is not a fit of {run.path}; its models: {list(run.config.models)}, "
                         f"seeds 0..{run.config.seeds - 1}")
    return spec
