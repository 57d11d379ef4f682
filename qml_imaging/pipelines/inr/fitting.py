"""Pieces shared by the implicit-neural-representation pipelines (images and signals)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import update_bn
from torch.utils.data import TensorDataset

from qml_imaging.config import TrainSettings
from qml_imaging.models.inr import QIREN, CoordinateMLP, FourierFeatureMLP, Siren, parameter_count, width_for_budget
from qml_imaging.models.specs import InrModelSpec
from qml_imaging.quantum.backends import BackendSpec, backend_spec
from qml_imaging.quantum.executors import Executor
from qml_imaging.quantum.factory import make_executor
from qml_imaging.grid import task_folder, threads_for_work
from qml_imaging.runs import MetricsLog, checkpoint_folder
from qml_imaging.training import Trainer, seed_everything, supervised
from qml_imaging.training.artifacts import save_model_arguments
from qml_imaging.training.metrics import mse, psnr
from qml_imaging.precedence import own_or_shared

VALUE_RANGE = (-1.0, 1.0)
"""Targets (pixels, audio samples) are scaled to this range; PSNR uses its width as data range."""


def model_backend_specs(models: dict[str, InrModelSpec]) -> dict[str, BackendSpec]:
    """The backend spec named by the QIREN models of a comparison, each resolved once (the driver's
    specs travel to the grid tasks): ``{spec.backend: BackendSpec}``."""
    names = {spec.backend for spec in models.values() if spec.kind == "qiren"}
    return {name: backend_spec(name) for name in sorted(names)}


def executors_for(backend_specs: dict[str, BackendSpec]) -> dict[str, Executor]:
    """One executor per backend spec, shared by every model built with them: ``{name: executor}``."""
    return {name: make_executor(spec) for name, spec in backend_specs.items()}


def model_executors(models: dict[str, InrModelSpec]) -> dict[str, Executor]:
    """One executor per backend spec named by ``models``: :func:`executors_for` of :func:`model_backend_specs`."""
    return executors_for(model_backend_specs(models))


def build_model(spec: InrModelSpec, width: int, executors: dict[str, Executor], in_features: int = 2,
                out_features: int = 1) -> nn.Module:
    """The network of ``spec`` with hidden ``width`` (QIREN's width is its qubit count); a QIREN runs
    its circuits on ``executors[spec.backend]`` (see :func:`model_executors`)."""
    if spec.kind == "qiren":
        return QIREN(in_features, out_features, n_qubits=spec.n_qubits, hybrid_layers=spec.hidden_layers,
                     reuploads=spec.reuploads, sublayers=spec.sublayers, entangler=spec.entangler,
                     executor=executors[spec.backend])
    if spec.kind == "siren":
        return Siren(in_features, width, spec.hidden_layers, out_features, omega_0=spec.omega_0)
    if spec.kind == "rff":
        return FourierFeatureMLP(in_features, width, spec.hidden_layers, out_features,
                                 n_frequencies=spec.n_frequencies, sigma=spec.sigma, batch_norm=spec.batch_norm)
    activation = {"relu": nn.ReLU, "tanh": nn.Tanh}[spec.kind]
    return CoordinateMLP(in_features, width, spec.hidden_layers, out_features,
                         activation=activation, batch_norm=spec.batch_norm)


def matched_width(spec: InrModelSpec, budget: int, executors: dict[str, Executor], in_features: int = 2,
                  out_features: int = 1) -> int:
    """Hidden width meeting ``budget``; QIREN's is fixed by its qubits, so its count must already be within 10 %."""
    if spec.kind != "qiren":
        return width_for_budget(partial(build_model, spec, executors=executors, in_features=in_features,
                                        out_features=out_features), budget)
    count = parameter_count(build_model(spec, spec.n_qubits, executors, in_features, out_features))
    if abs(count - budget) > 0.1 * budget:
        raise ValueError(f"QIREN with these settings has {count} parameters, not within 10 % of the budget {budget}; "
                         "set parameter_budget to its count or change n_qubits / hidden_layers / reuploads / sublayers")
    return spec.n_qubits


def quantum_last(models: dict[str, InrModelSpec]) -> list[tuple[str, InrModelSpec]]:
    """``models``' items with the QIREN models last, otherwise in order: the grid runs the short classical fits
    first, so that the long quantum fits, which come after one has taken long, run side by side in worker
    processes (:mod:`qml_imaging.grid`)."""
    return sorted(models.items(), key=lambda item: item[1].kind == "qiren")


def fit_threads(train: TrainSettings, samples: int, parameters: int) -> int:
    """Torch threads of one fit of ``parameters`` parameters to ``samples`` samples (coordinates): chosen from
    its multiply-adds per step, samples per step x parameters (:func:`qml_imaging.grid.threads_for_work`)."""
    return threads_for_work(min(train.batch_size or samples, samples) * parameters)


def recalibrate_batch_norm(model: nn.Module, coordinates: torch.Tensor) -> None:
    """Set BatchNorm running statistics to the exact statistics of the full training grid.

    The models train on the whole grid as one batch, so in training mode BatchNorm normalises with
    that grid's statistics; its running averages lag behind them. Evaluation (eval mode, also on a
    finer grid) should use the statistics the final weights were trained with.
    """
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        device = next(model.parameters()).device
        update_bn([coordinates.to(device)], model)


def predict(model: nn.Module, coordinates: torch.Tensor) -> torch.Tensor:
    """The model's outputs ``(N, C)`` on ``coordinates`` ``(N, d)``, in eval mode without gradients, on CPU."""
    model.eval()
    with torch.no_grad():
        device = next(model.parameters()).device
        return model(coordinates.to(device)).cpu()


def evaluate_fit(model: nn.Module, *, coordinates: torch.Tensor, values: torch.Tensor) -> dict[str, float]:
    """MSE and PSNR of ``model`` on its training coordinates, after BatchNorm recalibration."""
    recalibrate_batch_norm(model, coordinates)
    prediction = predict(model, coordinates)
    return {"mse": mse(prediction, values), "psnr": psnr(prediction, values, data_range=VALUE_RANGE[1] - VALUE_RANGE[0])}


def fit_model(spec: InrModelSpec, width: int, train: TrainSettings, coordinates: torch.Tensor, values: torch.Tensor,
              *, backend_specs: dict[str, BackendSpec], run_path: str | Path, fit_name: str, seed: int,
              predict_on: dict[str, torch.Tensor]) -> dict:
    """One grid task: fit a fresh model of ``spec`` to ``values`` ``(N, C)`` (C outputs, e.g. colours) at
    ``coordinates`` ``(N, d)`` with MSE; return its result as tensors and plain data.

    Runs through the one training loop with the model's own lr, checkpoints under
    ``checkpoints/<fit_name>/`` of the run folder ``run_path`` (with ``model.json``: ``width``, ``in_features``,
    ``out_features``, for :mod:`qml_imaging.pipelines.inr.loading`) and its metrics in the task's folder
    (:func:`qml_imaging.grid.task_folder`). A QIREN gets its own executor of the driver's resolved
    ``backend_specs`` (a sampling backend's random state is the fit's alone, whichever process runs it).
    The result holds ``seconds``, ``final_loss``, ``metrics`` (MSE and PSNR on the training grid),
    ``parameters``, ``lowest_loss`` (``{"value", "epoch"}``: the lowest per-epoch training loss, so a table of
    final values can show where a fit was at its best) and ``predictions``: the fitted model's outputs
    ``(M, C)`` on each grid of ``predict_on``.
    """
    seed_everything(seed)
    executors = executors_for(backend_specs)
    shape = {"width": width, "in_features": coordinates.shape[1], "out_features": values.shape[1]}
    model = build_model(spec, executors=executors, **shape)
    save_model_arguments(checkpoint_folder(run_path, fit_name), shape)
    settings = train.model_copy(update={"lr": own_or_shared(spec.lr, train.lr)})
    trainer = Trainer(
        model, settings,
        objective=supervised(F.mse_loss),
        evaluate=partial(evaluate_fit, coordinates=coordinates, values=values),
        checkpoint_dir=checkpoint_folder(run_path, fit_name),
        metrics=MetricsLog(task_folder(run_path, fit_name) / "metrics.jsonl"), seed=seed, fit_name=fit_name,
    )
    result = trainer.fit(TensorDataset(coordinates, values))
    losses = [r for r in MetricsLog(task_folder(run_path, fit_name) / "metrics.jsonl").records(fit_name)
              if "train_loss" in r]
    lowest = min(losses, key=lambda r: r["train_loss"])
    return {"seconds": result.seconds, "final_loss": result.final_loss, "metrics": result.metrics,
            "lowest_loss": {"value": lowest["train_loss"], "epoch": lowest["epoch"]},
            "parameters": parameter_count(trainer.module),
            "predictions": {name: predict(trainer.eval_model, grid) for name, grid in predict_on.items()}}
