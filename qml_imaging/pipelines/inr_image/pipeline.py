"""``inr_image``: fit implicit neural representations to images at one parameter budget.

For each image, model and seed: build the model at the width that meets ``parameter_budget``,
train it on all ``size x size`` pixels (full batch by default) with MSE through the one
training loop, and measure MSE and PSNR of its reconstruction on the same grid.

Summary (``report.json``): ``mse`` and ``psnr`` as {image: {model: [mean, std]}},
``mse_ratio_vs_<reference>`` as {image: {model: mean ratio}}, ``parameters`` as {model: count},
``seconds_per_fit`` as {model: median}.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from qml_imaging.data.datasets import coordinate_grid, load_skimage_image
from qml_imaging.models.inr import CoordinateMLP, FourierFeatureMLP, Siren, parameter_count, width_for_budget
from qml_imaging.pipelines.inr_image.config import InrImageConfig, InrModelSpec
from qml_imaging.reporting import figures
from qml_imaging.reporting.stats import mean_std
from qml_imaging.runs import RunDir
from qml_imaging.training import Trainer, seed_everything, supervised
from qml_imaging.training.distributed import current_process_group
from qml_imaging.training.metrics import mse, psnr

VALUE_RANGE = (-1.0, 1.0)


def build_model(spec: InrModelSpec, width: int, in_features: int = 2, out_features: int = 1) -> nn.Module:
    """The network of ``spec`` with hidden ``width``."""
    if spec.kind == "siren":
        return Siren(in_features, width, spec.hidden_layers, out_features, omega_0=spec.omega_0)
    if spec.kind == "rff":
        return FourierFeatureMLP(in_features, width, spec.hidden_layers, out_features,
                                 n_frequencies=spec.n_frequencies, sigma=spec.sigma, batch_norm=spec.batch_norm)
    activation = {"relu": nn.ReLU, "tanh": nn.Tanh}[spec.kind]
    return CoordinateMLP(in_features, width, spec.hidden_layers, out_features,
                         activation=activation, batch_norm=spec.batch_norm)


def run(config: InrImageConfig, run_dir: RunDir) -> dict:
    """Run every fit (resuming finished or interrupted ones from their checkpoints); return the summary."""
    is_main = current_process_group().is_main
    widths = {name: width_for_budget(partial(build_model, spec), config.parameter_budget)
              for name, spec in config.models.items()}
    fits = []
    reconstructions: dict[str, dict[str, torch.Tensor]] = defaultdict(dict)
    for image_name in config.images:
        target = load_skimage_image(image_name, config.size, value_range=VALUE_RANGE)
        coordinates = coordinate_grid(config.size, config.size)
        values = target.reshape(-1, 1)
        for model_name, spec in config.models.items():
            for seed in range(config.seeds):
                fit_name = f"{image_name}/{model_name}/seed{seed}"
                seed_everything(seed)
                model = build_model(spec, widths[model_name])
                settings = config.train.model_copy(update={"lr": spec.lr or config.train.lr})
                trainer = Trainer(
                    model, settings,
                    objective=supervised(F.mse_loss),
                    evaluate=partial(_evaluate, coordinates=coordinates, values=values),
                    checkpoint_dir=run_dir.checkpoint_dir(fit_name),
                    metrics=run_dir.metrics, seed=seed, fit_name=fit_name,
                )
                result = trainer.fit(TensorDataset(coordinates, values))
                fits.append({"image": image_name, "model": model_name, "seed": seed, "width": widths[model_name],
                             "parameters": parameter_count(model), "seconds": result.seconds,
                             "final_train_loss": result.final_loss, **result.metrics})
                if seed == 0:
                    reconstructions[image_name][model_name] = _predict(trainer.eval_model, coordinates).reshape(
                        config.size, config.size)
    summary = _summarise(config, fits)
    if is_main:
        _write_figures(config, run_dir, reconstructions)
        run_dir.write_report(summary, {"fits": fits, "widths": widths})
    return summary


def _predict(model: nn.Module, coordinates: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        device = next(model.parameters()).device
        return model(coordinates.to(device)).cpu()


def _evaluate(model: nn.Module, *, coordinates: torch.Tensor, values: torch.Tensor) -> dict[str, float]:
    prediction = _predict(model, coordinates)
    return {"mse": mse(prediction, values), "psnr": psnr(prediction, values, data_range=VALUE_RANGE[1] - VALUE_RANGE[0])}


def _summarise(config: InrImageConfig, fits: list[dict]) -> dict:
    by_key: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for fit in fits:
        by_key[fit["image"], fit["model"]].append(fit)
    reference = config.reference_model
    summary: dict = {"mse": {}, "psnr": {}, f"mse_ratio_vs_{reference}": {}}
    for image in config.images:
        summary["mse"][image] = {m: mean_std([f["mse"] for f in by_key[image, m]]) for m in config.models}
        summary["psnr"][image] = {m: mean_std([f["psnr"] for f in by_key[image, m]]) for m in config.models}
        reference_mse = summary["mse"][image][reference][0]
        summary[f"mse_ratio_vs_{reference}"][image] = {
            m: summary["mse"][image][m][0] / reference_mse for m in config.models
        }
    summary["parameters"] = {m: by_key[config.images[0], m][0]["parameters"] for m in config.models}
    summary["seconds_per_fit"] = {
        m: statistics.median(f["seconds"] for f in fits if f["model"] == m) for m in config.models
    }
    return summary


def _write_figures(config: InrImageConfig, run_dir: RunDir, reconstructions: dict[str, dict[str, torch.Tensor]]) -> None:
    rows = []
    for image in config.images:
        truth = load_skimage_image(image, config.size, value_range=VALUE_RANGE)[0]
        rows.append([truth.numpy()] + [reconstructions[image][m].numpy() for m in config.models])
    figures.image_grid(rows, run_dir.figure_path("reconstructions"), column_titles=["ground truth", *config.models],
                       row_titles=config.images, value_range=VALUE_RANGE)
    for image in config.images:
        series = {}
        for model in config.models:
            records = [r for r in run_dir.metrics.records(f"{image}/{model}/seed0") if "train_loss" in r]
            series[model] = ([r["epoch"] for r in records], [r["train_loss"] for r in records])
        figures.curves(series, run_dir.figure_path(f"loss_curves_{image}"), xlabel="epoch",
                       ylabel="training MSE", title=f"{image}, seed 0")
