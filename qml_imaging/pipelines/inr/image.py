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
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

from qml_imaging.data.catalog import image_key
from qml_imaging.data.datasets import coordinate_grid
from qml_imaging.data.images import load_image
from qml_imaging.grid import Task, run_grid
from qml_imaging.pipelines.inr.config import InrImageConfig
from qml_imaging.pipelines.inr.fitting import (
    VALUE_RANGE,
    executors_for,
    fit_model,
    fit_threads,
    matched_width,
    model_backend_specs,
    quantum_last,
)
from qml_imaging.reporting import figures
from qml_imaging.reporting.stats import mean_std
from qml_imaging.runs import RunDir, write_text_atomic
from qml_imaging.training.distributed import current_process_group
from qml_imaging.training.metrics import mse


def load_target(config: InrImageConfig, entry: str, size: int | str | None = None) -> tuple[torch.Tensor, dict]:
    """Image ``entry`` (a scikit-image name or a file) preprocessed as ``config`` says, at ``size``
    (default ``config.size``): float32 ``(C, H, W)`` in [-1, 1] and its info (source, dtype,
    intensity rule, ``preprocessing`` in words); see :func:`qml_imaging.data.images.load_image`."""
    return load_image(entry, config.size if size is None else size, fit=config.resize, channels=config.channels,
                      intensity=config.intensity, value_range=VALUE_RANGE)


def pixel_values(image: torch.Tensor) -> torch.Tensor:
    """``(C, H, W)`` -> ``(H * W, C)`` in the row-major order of :func:`coordinate_grid`."""
    return image.permute(1, 2, 0).reshape(-1, image.shape[0])


@dataclass
class _Plan:
    """The grid of fits of one run and what their results are read against."""

    tasks: list[Task] = field(default_factory=list)
    keys: list[tuple] = field(default_factory=list)
    """Per task: ``(image, model, seed, width, fine target or None)``."""
    targets: dict[str, torch.Tensor] = field(default_factory=dict)
    interpolation: dict[str, dict[str, float]] = field(default_factory=dict)
    images: dict[str, dict] = field(default_factory=dict)
    widths_by_outputs: dict[int, dict[str, int]] = field(default_factory=dict)


def run(config: InrImageConfig, run_dir: RunDir) -> dict:
    """Run every fit not yet done as one grid (``config.grid``; finished fits are kept, interrupted
    ones resume from their checkpoints); return the summary."""
    plan = _plan(config, str(run_dir.path))
    outcome = run_grid(plan.tasks, config.grid, run_dir.path, label="fits", progress=config.train.progress)
    fits, reconstructions = _collect(plan, outcome.results, outcome.threads)
    summary = _summarise(config, fits, plan.interpolation)
    summary["failed_tasks"] = outcome.failures
    if current_process_group().is_main:
        _write_figures(config, run_dir, plan.targets, reconstructions, summary)
        write_text_atomic(run_dir.path / "table.md", _table(config, summary))
        run_dir.write_report(summary, {"fits": fits, "widths": next(iter(plan.widths_by_outputs.values())),
                                       "images": plan.images})
    return summary


def _plan(config: InrImageConfig, run_path: str) -> _Plan:
    """One task per image x model x seed, each model at the width that meets the budget for the image's channels."""
    plan, backend_specs = _Plan(), model_backend_specs(config.models)  # resolved once; the tasks get the specs
    executors = executors_for(backend_specs)
    for entry in config.images:
        image_name = image_key(entry)
        target, plan.images[image_name] = load_target(config, entry)
        plan.targets[image_name] = target
        channels, height, width = target.shape
        if channels not in plan.widths_by_outputs:
            plan.widths_by_outputs[channels] = {
                name: matched_width(spec, config.parameter_budget, executors, out_features=channels)
                for name, spec in config.models.items()}
        widths = plan.widths_by_outputs[channels]
        coordinates, values, fine = coordinate_grid(height, width), pixel_values(target), None
        if config.superres_size:
            fine, _ = load_target(config, entry, config.superres_size)
            plan.interpolation[image_name] = interpolation_mse(target, fine)
        for model_name, spec in quantum_last(config.models):
            for seed in range(config.seeds):
                fit_name = f"{image_name}/{model_name}/seed{seed}"
                predict_on = {"train": coordinates} if seed == 0 else {}
                if fine is not None:
                    predict_on["fine"] = coordinate_grid(config.superres_size, config.superres_size)
                plan.tasks.append(Task(fit_name, partial(fit_model, spec, widths[model_name], config.train, coordinates,
                                                         values, backend_specs=backend_specs, run_path=run_path,
                                                         fit_name=fit_name, seed=seed, predict_on=predict_on),
                                       threads=fit_threads(config.train, len(values), config.parameter_budget)))
                plan.keys.append((image_name, model_name, seed, widths[model_name], fine))
    return plan


def _collect(plan: _Plan, results: list, threads: list[int]) -> tuple[list[dict], dict[str, dict[str, torch.Tensor]]]:
    """The finished fits' rows (failed ones left out; each with the torch ``threads`` it ran with) and seed 0's
    reconstructions ``(H, W, C)`` per image and model."""
    fits = []
    reconstructions: dict[str, dict[str, torch.Tensor]] = defaultdict(dict)
    for (image_name, model_name, seed, width, fine), result, count in zip(plan.keys, results, threads, strict=True):
        if result is None:
            continue
        fit = {"image": image_name, "model": model_name, "seed": seed, "width": width, "threads": count,
               "parameters": result["parameters"], "seconds": result["seconds"],
               "final_train_loss": result["final_loss"], **result["metrics"]}
        if fine is not None:
            fit["superres_mse"] = mse(result["predictions"]["fine"], pixel_values(fine))
        fits.append(fit)
        if seed == 0:
            _, height, width_px = plan.targets[image_name].shape
            reconstructions[image_name][model_name] = result["predictions"]["train"].reshape(height, width_px, -1)
    return fits, reconstructions


def interpolation_mse(coarse: torch.Tensor, fine: torch.Tensor) -> dict[str, float]:
    """MSE against ``fine`` ``(C, H, W)`` of bilinear and nearest-neighbour upsampling of ``coarse`` ``(C, h, w)``.

    Bilinear uses ``align_corners=True``, matching the ``linspace(-1, 1)`` coordinate grids.
    """
    size = tuple(fine.shape[-2:])
    bilinear = F.interpolate(coarse.unsqueeze(0), size=size, mode="bilinear", align_corners=True)
    nearest = F.interpolate(coarse.unsqueeze(0), size=size, mode="nearest")
    return {"bilinear": mse(bilinear, fine.unsqueeze(0)), "nearest": mse(nearest, fine.unsqueeze(0))}


def _summarise(config: InrImageConfig, fits: list[dict], interpolation: dict[str, dict[str, float]]) -> dict:
    """Per image and model over seeds; a model whose every fit of an image failed is left out of that image."""
    by_key: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for fit in fits:
        by_key[fit["image"], fit["model"]].append(fit)
    reference = config.reference_model
    summary: dict = {"mse": {}, "psnr": {}, f"mse_ratio_vs_{reference}": {}}
    for image in map(image_key, config.images):
        present = [m for m in config.models if by_key[image, m]]
        summary["mse"][image] = {m: mean_std([f["mse"] for f in by_key[image, m]]) for m in present}
        summary["psnr"][image] = {m: mean_std([f["psnr"] for f in by_key[image, m]]) for m in present}
        if reference in present:
            reference_mse = summary["mse"][image][reference][0]
            summary[f"mse_ratio_vs_{reference}"][image] = {
                m: summary["mse"][image][m][0] / reference_mse for m in present
            }
    if config.superres_size:
        summary["superres_mse"] = {}
        for image in map(image_key, config.images):
            row = {m: mean_std([f["superres_mse"] for f in by_key[image, m]]) for m in config.models if by_key[image, m]}
            for method, value in interpolation[image].items():
                row[method] = (value, 0.0)
            summary["superres_mse"][image] = row
    summary["parameters"] = {m: next(f["parameters"] for f in fits if f["model"] == m)
                             for m in config.models if any(f["model"] == m for f in fits)}
    summary["seconds_per_fit"] = {
        m: statistics.median(f["seconds"] for f in fits if f["model"] == m) for m in summary["parameters"]
    }
    return summary


def _table(config: InrImageConfig, summary: dict) -> str:
    """Markdown table: model x image with MSE, PSNR, ratio to the reference, parameters, seconds per fit."""
    reference = config.reference_model
    lines = [f"| image | model | MSE | PSNR (dB) | MSE / {reference} | parameters | s per fit |"
             + (f" MSE at {config.superres_size}x{config.superres_size} |" if config.superres_size else ""),
             "|---|---|---|---|---|---|---|" + ("---|" if config.superres_size else "")]
    for image in map(image_key, config.images):
        ratios = summary[f"mse_ratio_vs_{reference}"].get(image, {})
        for model in summary["mse"][image]:
            mse_mean, mse_std = summary["mse"][image][model]
            psnr_mean, psnr_std = summary["psnr"][image][model]
            ratio = f"{ratios[model]:.3f}" if model in ratios else "-"
            line = (f"| {image} | {model} | {mse_mean:.3g} ± {mse_std:.2g} | {psnr_mean:.2f} ± {psnr_std:.2f} | "
                    f"{ratio} | {summary['parameters'][model]} | "
                    f"{summary['seconds_per_fit'][model]:.1f} |")
            if config.superres_size:
                value, spread = summary["superres_mse"][image][model]
                line += f" {value:.3g} ± {spread:.2g} |"
            lines.append(line)
        if config.superres_size:
            for method in ("bilinear", "nearest"):
                lines.append(f"| {image} | {method} | | | | | | {summary['superres_mse'][image][method][0]:.3g} |")
    return "\n".join(lines) + "\n"


def _write_figures(config: InrImageConfig, run_dir: RunDir, targets: dict[str, torch.Tensor],
                   reconstructions: dict[str, dict[str, torch.Tensor]],
                   summary: dict) -> None:
    names = [image_key(entry) for entry in config.images]
    rows = []
    for image in names:
        blank = torch.zeros_like(targets[image].permute(1, 2, 0))  # a model whose fit failed
        shown = [targets[image].permute(1, 2, 0)] + [reconstructions[image].get(m, blank) for m in config.models]
        rows.append([_display(picture) for picture in shown])
    grid = figures.image_grid(rows, column_titles=["ground truth", *config.models], row_titles=names,
                              value_range=(0.0, 1.0))
    figures.save_figure(grid, run_dir.figure_path("reconstructions"))
    for image in names:
        series = {}
        for model in config.models:
            records = [r for r in run_dir.metrics.records(f"{image}/{model}/seed0") if "train_loss" in r]
            series[model] = ([r["epoch"] for r in records], [r["train_loss"] for r in records])
        losses = figures.curves(series, xlabel="epoch", ylabel="training MSE", title=f"{image}, seed 0")
        figures.save_figure(losses, run_dir.figure_path(f"loss_curves_{image}"))
    reference = config.reference_model
    ratios = summary[f"mse_ratio_vs_{reference}"]
    if len(ratios) < len(names) or any(len(row) < len(config.models) for row in ratios.values()):
        return  # some fits failed: no complete set of bars
    bars = figures.grouped_bars(ratios, ylabel=f"MSE / MSE of {reference}",
                                title=f"representation error relative to {reference}")
    figures.save_figure(bars, run_dir.figure_path(f"mse_relative_to_{reference}"))


def _display(image: torch.Tensor) -> np.ndarray:
    """``(H, W, C)`` in ``VALUE_RANGE`` -> ``(H, W)`` (grey) or ``(H, W, 3)`` in [0, 1] for a figure."""
    low, high = VALUE_RANGE
    shown = ((image - low) / (high - low)).clamp(0.0, 1.0)
    return (shown[..., 0] if shown.shape[-1] == 1 else shown).numpy()
