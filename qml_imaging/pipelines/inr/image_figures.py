"""The figures of an ``inr_image`` run (seed 0), written beside ``table.md`` and on the same footing.

* ``reconstructions.png``: per image, the target and each model's reconstruction, every panel titled with
  its MSE; with super-resolution, a second row: the target at the finer size, each model on the finer grid
  and the bilinear and nearest-neighbour upsampling of the training image, each with its MSE against the
  finer target (so "no model beats bilinear" is visible in the figure, not only in the table);
* ``loss_curves_<image>.png``: the training MSE per epoch, each model's last epoch (the value the table's
  MSE column reports, up to the last step) and lowest epoch marked;
* ``mse_relative_to_<reference>.png``: every model's mean MSE over the reference model's, per image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from qml_imaging.data.catalog import image_key
from qml_imaging.pipelines.inr.fitting import VALUE_RANGE
from qml_imaging.reporting import figures
from qml_imaging.runs import RunDir
from qml_imaging.training.metrics import mse

if TYPE_CHECKING:
    from qml_imaging.pipelines.inr.config import InrImageConfig


@dataclass
class Targets:
    """What the reconstructions are shown against, per image: the target ``(C, H, W)``, the target at the
    super-resolution size and its bilinear and nearest upsampling (empty without super-resolution)."""

    coarse: dict[str, torch.Tensor]
    fine: dict[str, torch.Tensor]
    upsampled: dict[str, dict[str, torch.Tensor]]


def write_figures(config: InrImageConfig, run_dir: RunDir, plan: Targets, reconstructions: dict[str, dict[str, dict]],
                  summary: dict) -> None:
    """Write the run's three kinds of figures (module docstring) for seed 0's fits; a failed fit's panel is blank
    and its curve absent, and the bars are left out unless every fit of every image finished."""
    names = [image_key(entry) for entry in config.images]
    rows, titles = [], []
    for image in names:
        for row, row_titles in _image_rows(config, plan, image, reconstructions[image]):
            rows.append(row)
            titles.append(row_titles)
    row_names = [f"{image}, {height}x{width}" for image in names
                 for height, width in [tuple(plan.coarse[image].shape[-2:])]
                 + ([tuple(plan.fine[image].shape[-2:])] if config.superres_size else [])]
    grid = figures.image_grid(rows, panel_titles=titles, row_titles=row_names, value_range=(0.0, 1.0))
    figures.save_figure(grid, run_dir.figure_path("reconstructions"))
    for image in names:
        series: dict[str, tuple[Sequence[float], Sequence[float]]] = {}
        for model in config.models:
            records = [r for r in run_dir.metrics.records(f"{image}/{model}/seed0") if "train_loss" in r]
            if records:
                series[model] = ([r["epoch"] for r in records], [r["train_loss"] for r in records])
        losses = figures.curves(series, xlabel="epoch", ylabel="training MSE", title=f"{image}, seed 0",
                                mark_last_and_lowest=True)
        figures.save_figure(losses, run_dir.figure_path(f"loss_curves_{image}"))
    reference = config.reference_model
    ratios = summary[f"mse_ratio_vs_{reference}"]
    if len(ratios) < len(names) or any(len(row) < len(config.models) for row in ratios.values()):
        return  # some fits failed: no complete set of bars
    bars = figures.grouped_bars(ratios, ylabel=f"MSE / MSE of {reference}",
                                title=f"Reconstruction MSE relative to {reference} "
                                      + (f"(mean over {config.seeds} seeds)" if config.seeds > 1 else "(seed 0)"))
    figures.save_figure(bars, run_dir.figure_path(f"mse_relative_to_{reference}"))


def _image_rows(config: InrImageConfig, plan: Targets, image: str,
                shown: dict[str, dict]) -> list[tuple[list[np.ndarray], list[str]]]:
    """One image's rows of panels and their titles: the training grid, then (with super-resolution) the finer grid."""
    target = plan.coarse[image].permute(1, 2, 0)
    row, titles = [_display(target)], ["target"]
    for model in config.models:
        picture = shown.get(model, {}).get("train")
        row.append(_display(picture if picture is not None else torch.zeros_like(target)))
        titles.append(f"{model}\nMSE {mse(picture, target):.3g}" if picture is not None else f"{model}\n(failed)")
    rows = [(row, titles)]
    if config.superres_size:
        fine = plan.fine[image]
        fine_hwc = fine.permute(1, 2, 0)
        row, titles = [_display(fine_hwc)], ["target"]
        for model in config.models:
            picture = shown.get(model, {}).get("fine")
            row.append(_display(picture if picture is not None else torch.zeros_like(fine_hwc)))
            titles.append(f"{model}\nMSE {mse(picture, fine_hwc):.3g}" if picture is not None else f"{model}\n(failed)")
        for method, picture in plan.upsampled[image].items():
            row.append(_display(picture.permute(1, 2, 0)))
            titles.append(f"{method}\nMSE {mse(picture, fine):.3g}")
        rows.append((row, titles))
    return rows


def _display(image: torch.Tensor) -> np.ndarray:
    """``(H, W, C)`` in ``VALUE_RANGE`` -> ``(H, W)`` (grey) or ``(H, W, 3)`` in [0, 1] for a figure."""
    low, high = VALUE_RANGE
    shown = ((image - low) / (high - low)).clamp(0.0, 1.0)
    return (shown[..., 0] if shown.shape[-1] == 1 else shown).numpy()
