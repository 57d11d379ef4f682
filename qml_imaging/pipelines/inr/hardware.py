"""``inr_hardware``: evaluate a fitted QIREN's circuits on other backends and compare with exact simulation.

Loads the final checkpoint of one QIREN fit from an ``inr_image`` run (BatchNorm statistics set
to those of its full training grid, as in ``inr_image``'s evaluation), predicts a seeded random
subset of its pixels with the exact fast simulator, then again with every quantum layer switched to
each backend in ``backends`` (shots, device noise models, IBM hardware). No training happens here.

Summary: ``mse_vs_exact`` {backend: MSE between its and the exact prediction}, ``mse_vs_image``
{backend or "fast": MSE against the image}, ``seconds`` {backend: evaluation wall time},
``n_coordinates``.
"""

from __future__ import annotations

import time

import torch

from qml_imaging.data.datasets import coordinate_grid, load_skimage_image
from qml_imaging.models.inr import QIREN
from qml_imaging.pipelines.inr.fitting import VALUE_RANGE, build_model, model_executors, predict, recalibrate_batch_norm
from qml_imaging.pipelines.inr.config import InrHardwareConfig
from qml_imaging.quantum.factory import make_executor
from qml_imaging.runs import RunDir
from qml_imaging.training.checkpoints import load_checkpoint
from qml_imaging.training.metrics import mse


def load_fitted_qiren(source: RunDir, fit: str) -> tuple[QIREN, str]:
    """The QIREN of ``fit`` (IMAGE/MODEL/seedN) with its final weights, on the backend it was fitted
    with, and its image name."""
    if source.config.experiment != "inr_image":
        raise ValueError(f"{source.path} is a {source.config.experiment!r} run; expected an inr_image run")
    image, model_name, _ = (fit.split("/") + ["", "", ""])[:3]
    spec = source.config.models.get(model_name)
    if spec is None or spec.kind != "qiren" or image not in source.config.images:
        raise ValueError(f"fit {fit!r} is not a QIREN fit of {source.path}; its models: {dict(source.config.models)}")
    state = load_checkpoint(source.checkpoint_dir(fit))
    if state is None or state["epoch"] < source.config.train.epochs:
        raise ValueError(f"fit {fit!r} of {source.path} has not finished; finish it with `qml-imaging run --resume`")
    model = build_model(spec, spec.n_qubits, model_executors({model_name: spec}))
    model.load_state_dict(state["model"])
    recalibrate_batch_norm(model, coordinate_grid(source.config.size, source.config.size))
    return model, image


def evaluation_pixels(source: RunDir, image: str, n_coordinates: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordinates ``(N, 2)`` and image values ``(N, 1)`` of the source run's grid: all pixels in
    raster order (``n_coordinates`` None) or a ``seed``-ed random subset of ``n_coordinates``."""
    size = source.config.size
    coordinates = coordinate_grid(size, size)
    values = load_skimage_image(image, size, value_range=VALUE_RANGE).reshape(-1, 1)
    if n_coordinates is not None and n_coordinates < len(coordinates):
        chosen = torch.randperm(len(coordinates), generator=torch.Generator().manual_seed(seed))[:n_coordinates]
        coordinates, values = coordinates[chosen], values[chosen]
    return coordinates, values


def run(config: InrHardwareConfig, run_dir: RunDir) -> dict:
    source = RunDir.open(config.source_run)
    model, image = load_fitted_qiren(source, config.fit)
    coordinates, values = evaluation_pixels(source, image, config.n_coordinates, config.seed)
    exact = predict(model, coordinates)
    summary = {"n_coordinates": len(coordinates), "mse_vs_exact": {}, "mse_vs_image": {"fast": mse(exact, values)},
               "seconds": {}}
    for backend in config.backends:
        executor = make_executor(backend)
        for layer in model.quantum_layers():
            layer.use_backend(executor)
        started = time.perf_counter()
        prediction = predict(model, coordinates)
        summary["seconds"][backend] = time.perf_counter() - started
        summary["mse_vs_exact"][backend] = mse(prediction, exact)
        summary["mse_vs_image"][backend] = mse(prediction, values)
    run_dir.write_report(summary, {"source_run": str(source.path), "fit": config.fit})
    return summary
