"""``inr_image``: fit implicit neural representations to images at one parameter budget.

For each image, model and seed: build the model at the width that meets ``parameter_budget``,
train it on all ``size x size`` pixels (full batch by default) with MSE through the one
training loop, and measure MSE and PSNR of its reconstruction on the same grid.

With ``superres_size`` set, every fitted model is also evaluated on the finer grid against the
image loaded at that size, beside bilinear and nearest-neighbour upsampling of the training image.

Summary (``report.json``): ``mse`` (the fitted model, after its last epoch), ``lowest_train_mse`` (each
fit's lowest per-epoch training loss) and ``psnr`` as {image: {model: {"mean", "std", "n"}}} over seeds
(``std`` null for one seed), ``mse_ratio_vs_<reference>`` as {image: {model: mean ratio}}, ``parameters``
as {model: count}, ``seconds_per_fit`` as {model: median}, and ``superres_mse`` as {image: {model:
{"mean", "std", "n"}, "bilinear": value, "nearest": value}} when super-resolution is on. ``table.md``
holds the same numbers as a table; the figures (:mod:`qml_imaging.pipelines.inr.image_figures`) show
seed 0's reconstructions with their MSE, the super-resolution panels beside the upsampled image, and the
loss curves with the last epoch (the table's) and the lowest marked.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from functools import partial

import torch
import torch.nn.functional as F

from qml_imaging.data.catalog import image_key
from qml_imaging.data.datasets import coordinate_grid
from qml_imaging.data.images import check_contrast, load_image
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
from qml_imaging.pipelines.inr.image_figures import Targets, write_figures
from qml_imaging.reporting.stats import format_stat, summary_stat
from qml_imaging.runs import RunDir, write_text_atomic
from qml_imaging.training.distributed import current_process_group
from qml_imaging.training.metrics import mse


def load_target(config: InrImageConfig, entry: str, size: int | str | None = None) -> tuple[torch.Tensor, dict]:
    """Image ``entry`` (a scikit-image name or a file) preprocessed as ``config`` says, at ``size``
    (default ``config.size``): float32 ``(C, H, W)`` in [-1, 1] and its info (source, dtype,
    intensity rule and scale, ``preprocessing`` in words); see :func:`qml_imaging.data.images.load_image`.
    ``ValueError`` naming the file for a constant or nearly constant image
    (:func:`~qml_imaging.data.images.check_contrast`)."""
    target, info = load_image(entry, config.size if size is None else size, fit=config.resize,
                              channels=config.channels, intensity=config.intensity, value_range=VALUE_RANGE)
    check_contrast(info)
    return target, info


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
    fine_targets: dict[str, torch.Tensor] = field(default_factory=dict)
    upsampled: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    """Per image: bilinear and nearest upsampling of the target to the super-resolution size, ``(C, H, W)``."""
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
        write_figures(config, run_dir, Targets(plan.targets, plan.fine_targets, plan.upsampled), reconstructions,
                      summary)
        write_text_atomic(run_dir.path / "table.md", _table(config, summary, fits))
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
            plan.fine_targets[image_name] = fine
            plan.upsampled[image_name] = upsampled(target, tuple(fine.shape[-2:]))
            plan.interpolation[image_name] = {method: mse(image, fine)
                                              for method, image in plan.upsampled[image_name].items()}
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


def _collect(plan: _Plan, results: list, threads: list[int]) -> tuple[list[dict], dict[str, dict[str, dict]]]:
    """The finished fits' rows (failed ones left out; each with the torch ``threads`` it ran with) and seed 0's
    reconstructions per image and model: ``{"train": (H, W, C)}``, with ``"fine"`` at the super-resolution size."""
    fits = []
    reconstructions: dict[str, dict[str, dict]] = defaultdict(dict)
    for (image_name, model_name, seed, width, fine), result, count in zip(plan.keys, results, threads, strict=True):
        if result is None:
            continue
        fit = {"image": image_name, "model": model_name, "seed": seed, "width": width, "threads": count,
               "parameters": result["parameters"], "seconds": result["seconds"],
               "final_train_loss": result["final_loss"], "lowest_train_mse": result["lowest_loss"]["value"],
               "lowest_train_mse_epoch": result["lowest_loss"]["epoch"], **result["metrics"]}
        if fine is not None:
            fit["superres_mse"] = mse(result["predictions"]["fine"], pixel_values(fine))
        fits.append(fit)
        if seed == 0:
            _, height, width_px = plan.targets[image_name].shape
            shown = {"train": result["predictions"]["train"].reshape(height, width_px, -1)}
            if fine is not None:
                shown["fine"] = result["predictions"]["fine"].reshape(*fine.shape[1:], -1)
            reconstructions[image_name][model_name] = shown
    return fits, reconstructions


def upsampled(coarse: torch.Tensor, size: tuple[int, int]) -> dict[str, torch.Tensor]:
    """Bilinear (``align_corners=True``, matching the ``linspace(-1, 1)`` coordinate grids) and nearest-neighbour
    upsampling of ``coarse`` ``(C, h, w)`` to ``size`` (H, W): ``{"bilinear": (C, H, W), "nearest": (C, H, W)}``
    (``torch.nn.functional.interpolate``)."""
    batch = coarse.unsqueeze(0)
    return {"bilinear": F.interpolate(batch, size=size, mode="bilinear", align_corners=True)[0],
            "nearest": F.interpolate(batch, size=size, mode="nearest")[0]}


def interpolation_mse(coarse: torch.Tensor, fine: torch.Tensor) -> dict[str, float]:
    """MSE against ``fine`` ``(C, H, W)`` of bilinear and nearest-neighbour upsampling of ``coarse`` ``(C, h, w)``
    (:func:`upsampled`)."""
    return {method: mse(image, fine) for method, image in upsampled(coarse, tuple(fine.shape[-2:])).items()}


def _summarise(config: InrImageConfig, fits: list[dict], interpolation: dict[str, dict[str, float]]) -> dict:
    """Per image and model over seeds; a model whose every fit of an image failed is left out of that image."""
    by_key: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for fit in fits:
        by_key[fit["image"], fit["model"]].append(fit)
    reference = config.reference_model
    keys = ("mse", "lowest_train_mse", "psnr") + (("superres_mse",) if config.superres_size else ())
    summary: dict = {key: {} for key in keys} | {f"mse_ratio_vs_{reference}": {}}
    for image in map(image_key, config.images):
        present = [m for m in config.models if by_key[image, m]]
        for key in keys:
            summary[key][image] = {m: summary_stat([f[key] for f in by_key[image, m]]) for m in present}
        if reference in present:
            reference_mse = summary["mse"][image][reference]["mean"]
            summary[f"mse_ratio_vs_{reference}"][image] = {
                m: summary["mse"][image][m]["mean"] / reference_mse for m in present}
        if config.superres_size:
            summary["superres_mse"][image].update(interpolation[image])
    summary["parameters"] = {m: next(f["parameters"] for f in fits if f["model"] == m)
                             for m in config.models if any(f["model"] == m for f in fits)}
    summary["seconds_per_fit"] = {
        m: statistics.median(f["seconds"] for f in fits if f["model"] == m) for m in summary["parameters"]
    }
    return summary


def _table(config: InrImageConfig, summary: dict, fits: list[dict]) -> str:
    """Markdown table: model x image with the final MSE, the lowest training MSE (with seed 0's epoch), PSNR,
    the ratio to the reference, parameters, seconds per fit and the super-resolution MSE; a caption below."""
    reference, fine = config.reference_model, config.superres_size
    lines = [f"| image | model | MSE | lowest training MSE (epoch) | PSNR (dB) | MSE / {reference} | parameters "
             "| s per fit |" + (f" MSE at {fine}x{fine} |" if fine else ""),
             "|---|---|---|---|---|---|---|---|" + ("---|" if fine else "")]
    epochs = {(f["image"], f["model"]): f["lowest_train_mse_epoch"] for f in fits if f["seed"] == 0}
    for image in map(image_key, config.images):
        ratios = summary[f"mse_ratio_vs_{reference}"].get(image, {})
        for model, stat in summary["mse"][image].items():
            epoch = f" ({epochs[image, model]})" if (image, model) in epochs else ""
            cells = [image, model, format_stat(stat), format_stat(summary["lowest_train_mse"][image][model]) + epoch,
                     format_stat(summary["psnr"][image][model], ".2f"), f"{ratios[model]:.3f}" if model in ratios else "-",
                     str(summary["parameters"][model]), f"{summary['seconds_per_fit'][model]:.1f}"]
            cells += [format_stat(summary["superres_mse"][image][model])] if fine else []
            lines.append("| " + " | ".join(cells) + " |")
        for method in ("bilinear", "nearest") if fine else ():
            lines.append(f"| {image} | {method} | | | | | | | {summary['superres_mse'][image][method]:.3g} |")
    seeds = f"mean ± std over {config.seeds} seeds" if config.seeds > 1 else "seed 0 (one seed: no spread)"
    caption = (f"MSE: the fitted model after its last epoch ({config.train.epochs}), on the training grid;"
               f" lowest training MSE: the lowest per-epoch training loss (in brackets its epoch, seed 0)."
               f" Values: {seeds}.")
    return "\n".join(lines) + "\n\n" + caption + "\n"
