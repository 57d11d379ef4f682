"""``inr_image``: fit implicit neural representations to images at one parameter budget.

For each image, model and seed: build the model at the width that meets ``parameter_budget``,
train it on all ``size x size`` pixels (full batch by default) with MSE through the one
training loop, and measure MSE and PSNR of its reconstruction on the same grid.

With ``superres_size`` set, every fitted model is also evaluated on the finer grid against the
image loaded at that size, beside bilinear and nearest-neighbour upsampling of the training image.

Summary (``report.json``): ``mse`` and ``psnr`` as {image: {model: [mean, std]}},
``mse_ratio_vs_<reference>`` as {image: {model: mean ratio}}, ``parameters`` as {model: count},
``seconds_per_fit`` as {model: median}, and ``superres_mse`` as {image: {model or interpolation:
[mean, std]}} when super-resolution is on. ``table.md`` holds the same numbers as a table.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import update_bn
from torch.utils.data import TensorDataset

from qml_imaging.data.datasets import coordinate_grid, load_skimage_image
from qml_imaging.models.inr import QIREN, CoordinateMLP, FourierFeatureMLP, Siren, parameter_count, width_for_budget
from qml_imaging.pipelines.inr_image.config import InrImageConfig, InrModelSpec
from qml_imaging.reporting import figures
from qml_imaging.reporting.stats import mean_std
from qml_imaging.runs import RunDir
from qml_imaging.training import Trainer, seed_everything, supervised
from qml_imaging.training.distributed import current_process_group
from qml_imaging.training.metrics import mse, psnr

VALUE_RANGE = (-1.0, 1.0)


def build_model(spec: InrModelSpec, width: int, in_features: int = 2, out_features: int = 1) -> nn.Module:
    """The network of ``spec`` with hidden ``width`` (QIREN's width is its qubit count)."""
    if spec.kind == "qiren":
        return QIREN(in_features, out_features, n_qubits=spec.n_qubits, hybrid_layers=spec.hidden_layers,
                     reuploads=spec.reuploads, sublayers=spec.sublayers, backend=spec.backend)
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
    widths = {name: _width(spec, config.parameter_budget) for name, spec in config.models.items()}
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
                fit = {"image": image_name, "model": model_name, "seed": seed, "width": widths[model_name],
                       "parameters": parameter_count(model), "seconds": result.seconds,
                       "final_train_loss": result.final_loss, **result.metrics}
                if config.superres_size:
                    fit["superres_mse"] = _superres_mse(trainer.eval_model, image_name, config.superres_size)
                fits.append(fit)
                if seed == 0:
                    reconstructions[image_name][model_name] = _predict(trainer.eval_model, coordinates).reshape(
                        config.size, config.size)
    summary = _summarise(config, fits)
    if is_main:
        _write_figures(config, run_dir, reconstructions, summary)
        (run_dir.path / "table.md").write_text(_table(config, summary))
        run_dir.write_report(summary, {"fits": fits, "widths": widths})
    return summary


def _superres_mse(model: nn.Module, image_name: str, size: int) -> float:
    """MSE of ``model`` on the ``size x size`` grid against the image loaded at that size."""
    fine = load_skimage_image(image_name, size, value_range=VALUE_RANGE).reshape(-1, 1)
    return mse(_predict(model, coordinate_grid(size, size)), fine)


def interpolation_mse(image_name: str, size: int, superres_size: int) -> dict[str, float]:
    """MSE of bilinear and nearest-neighbour upsampling of the ``size`` image to ``superres_size``."""
    coarse = load_skimage_image(image_name, size, value_range=VALUE_RANGE).unsqueeze(0)
    fine = load_skimage_image(image_name, superres_size, value_range=VALUE_RANGE).unsqueeze(0)
    bilinear = F.interpolate(coarse, size=(superres_size, superres_size), mode="bilinear", align_corners=True)
    nearest = F.interpolate(coarse, size=(superres_size, superres_size), mode="nearest")
    return {"bilinear": mse(bilinear, fine), "nearest": mse(nearest, fine)}


def _width(spec: InrModelSpec, budget: int) -> int:
    """Hidden width meeting ``budget``; QIREN's is fixed by its qubits, so its count must already be within 10 %."""
    if spec.kind != "qiren":
        return width_for_budget(partial(build_model, spec), budget)
    count = parameter_count(build_model(spec, spec.n_qubits))
    if abs(count - budget) > 0.1 * budget:
        raise ValueError(f"QIREN with these settings has {count} parameters, not within 10 % of the budget {budget}; "
                         "set parameter_budget to its count or change n_qubits / hidden_layers / reuploads / sublayers")
    return spec.n_qubits


def recalibrate_batch_norm(model: nn.Module, coordinates: torch.Tensor) -> None:
    """Set BatchNorm running statistics to the exact statistics of the full training grid.

    The models train on the whole grid as one batch, so in training mode BatchNorm normalises with
    that grid's statistics; its running averages lag behind them. Evaluation (eval mode, also on a
    finer grid) should use the statistics the final weights were trained with.
    """
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        device = next(model.parameters()).device
        update_bn([coordinates.to(device)], model)


def _predict(model: nn.Module, coordinates: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        device = next(model.parameters()).device
        return model(coordinates.to(device)).cpu()


def _evaluate(model: nn.Module, *, coordinates: torch.Tensor, values: torch.Tensor) -> dict[str, float]:
    recalibrate_batch_norm(model, coordinates)
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
    if config.superres_size:
        summary["superres_mse"] = {}
        for image in config.images:
            row = {m: mean_std([f["superres_mse"] for f in by_key[image, m]]) for m in config.models}
            for method, value in interpolation_mse(image, config.size, config.superres_size).items():
                row[method] = (value, 0.0)
            summary["superres_mse"][image] = row
    summary["parameters"] = {m: by_key[config.images[0], m][0]["parameters"] for m in config.models}
    summary["seconds_per_fit"] = {
        m: statistics.median(f["seconds"] for f in fits if f["model"] == m) for m in config.models
    }
    return summary


def _table(config: InrImageConfig, summary: dict) -> str:
    """Markdown table: model x image with MSE, PSNR, ratio to the reference, parameters, seconds per fit."""
    reference = config.reference_model
    lines = [f"| image | model | MSE | PSNR (dB) | MSE / {reference} | parameters | s per fit |"
             + (f" MSE at {config.superres_size}x{config.superres_size} |" if config.superres_size else ""),
             "|---|---|---|---|---|---|---|" + ("---|" if config.superres_size else "")]
    for image in config.images:
        for model in config.models:
            mse_mean, mse_std = summary["mse"][image][model]
            psnr_mean, psnr_std = summary["psnr"][image][model]
            line = (f"| {image} | {model} | {mse_mean:.3g} ± {mse_std:.2g} | {psnr_mean:.2f} ± {psnr_std:.2f} | "
                    f"{summary[f'mse_ratio_vs_{reference}'][image][model]:.3f} | {summary['parameters'][model]} | "
                    f"{summary['seconds_per_fit'][model]:.1f} |")
            if config.superres_size:
                value, spread = summary["superres_mse"][image][model]
                line += f" {value:.3g} ± {spread:.2g} |"
            lines.append(line)
        if config.superres_size:
            for method in ("bilinear", "nearest"):
                lines.append(f"| {image} | {method} | | | | | | {summary['superres_mse'][image][method][0]:.3g} |")
    return "\n".join(lines) + "\n"


def _write_figures(config: InrImageConfig, run_dir: RunDir, reconstructions: dict[str, dict[str, torch.Tensor]],
                   summary: dict) -> None:
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
    reference = config.reference_model
    ratios = {image: summary[f"mse_ratio_vs_{reference}"][image] for image in config.images}
    figures.grouped_bars(ratios, run_dir.figure_path(f"mse_relative_to_{reference}"),
                         ylabel=f"MSE / MSE of {reference}", title=f"representation error relative to {reference}")
