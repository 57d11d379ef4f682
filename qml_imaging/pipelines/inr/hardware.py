"""``inr_hardware``: evaluate a fitted QIREN's circuits on other backends and compare with exact simulation.

Loads one QIREN fit of an ``inr_image`` run with :func:`~qml_imaging.training.artifacts.load_model`
(EMA weights when the run used EMA; BatchNorm statistics of its full training grid, as in ``inr_image``'s evaluation), predicts a seeded random
subset of its pixels with the exact fast simulator, then again with every quantum layer switched to
each backend in ``backends`` (shots, device noise models, IBM hardware). No training happens here.

Summary: ``mse_vs_exact`` {backend: MSE between its and the exact prediction}, ``mse_vs_image``
{backend or "fast": MSE against the image}, ``seconds`` {backend: evaluation wall time},
``n_coordinates``.
"""

from __future__ import annotations

import time

import torch

from qml_imaging.models.inr import QIREN
from qml_imaging.pipelines.inr.config import InrHardwareConfig
from qml_imaging.pipelines.inr.fitting import predict
from qml_imaging.quantum.backends import backend_spec
from qml_imaging.quantum.factory import make_executor
from qml_imaging.runs import RunDir
from qml_imaging.training.artifacts import load_model
from qml_imaging.training.metrics import mse


def load_fitted_qiren(source: RunDir, fit: str) -> tuple[QIREN, str, torch.Tensor, torch.Tensor]:
    """The QIREN of ``fit`` (IMAGE/MODEL/seedN) of an ``inr_image`` run, through
    :func:`qml_imaging.training.artifacts.load_model` (final or EMA weights, BatchNorm statistics of the
    full training grid, on the backend it was fitted with), its image name, and the training grid's
    coordinates ``(N, 2)`` and values ``(N, C)``."""
    if source.config.experiment != "inr_image":
        raise ValueError(f"{source.path} is a {source.config.experiment!r} run; expected an inr_image run")
    trained = load_model(source.path, fit)
    if not isinstance(trained.model, QIREN):
        raise ValueError(f"fit {fit!r} is not a QIREN fit of {source.path}; its models: {dict(source.config.models)}")
    return trained.model, fit.split("/")[0], trained.inputs, trained.targets


def evaluation_pixels(coordinates: torch.Tensor, values: torch.Tensor, n_coordinates: int | None,
                      seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The training grid's coordinates ``(N, 2)`` and values ``(N, C)``: all pixels in raster order
    (``n_coordinates`` None) or a ``seed``-ed random subset of ``n_coordinates``."""
    if n_coordinates is not None and n_coordinates < len(coordinates):
        chosen = torch.randperm(len(coordinates), generator=torch.Generator().manual_seed(seed))[:n_coordinates]
        coordinates, values = coordinates[chosen], values[chosen]
    return coordinates, values


def run(config: InrHardwareConfig, run_dir: RunDir) -> dict:
    """Re-evaluate a fitted QIREN on every backend of ``config.backends``; return the summary (MSE against the exact simulation and the image, seconds)."""
    source = RunDir.open(config.source_run)
    model, _, grid, grid_values = load_fitted_qiren(source, config.fit)
    coordinates, values = evaluation_pixels(grid, grid_values, config.n_coordinates, config.seed)
    exact = predict(model, coordinates)
    summary = {"n_coordinates": len(coordinates), "mse_vs_exact": {}, "mse_vs_image": {"fast": mse(exact, values)},
               "seconds": {}}
    for backend in config.backends:
        executor = make_executor(backend_spec(backend))
        for layer in model.quantum_layers():
            layer.use_executor(executor)
        started = time.perf_counter()
        prediction = predict(model, coordinates)
        summary["seconds"][backend] = time.perf_counter() - started
        summary["mse_vs_exact"][backend] = mse(prediction, exact)
        summary["mse_vs_image"][backend] = mse(prediction, values)
    run_dir.write_report(summary, {"source_run": str(source.path), "fit": config.fit})
    return summary
