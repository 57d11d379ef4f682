"""Figures of the few-shot diffusion run: sample grids and FID per variant."""

from __future__ import annotations

import numpy as np

from qml_imaging.pipelines.diffusion.config import DiffusionFewShotConfig
from qml_imaging.pipelines.diffusion.model_task import ModelTask
from matplotlib.figure import Figure

from qml_imaging.reporting.figures import image_grid, save_figure
from qml_imaging.runs import RunDir


def write_figures(config: DiffusionFewShotConfig, run_dir: RunDir, tasks: list[ModelTask], fid: dict) -> None:
    """``samples_<dataset>_k<k>.png`` (training images, then each variant's first seed) and ``fid.png``
    from the summary's ``fid`` {dataset: {k: {variant: {"mean", "std", "n"}}}}."""
    cells = write_sample_figures(config, run_dir, tasks)
    _fid_bars(run_dir, fid, cells)


def write_sample_figures(config: DiffusionFewShotConfig, run_dir: RunDir, tasks: list[ModelTask]) -> list[tuple[str, int]]:
    """``samples_<dataset>_k<k>.png`` per data set and k; returns the (dataset, k) cells drawn."""
    count = config.evaluation.grid_images
    first_seed = config.seeds[0]
    cells = sorted({(t.dataset, t.k) for t in tasks}, key=lambda cell: (cell[0], -cell[1]))
    for dataset, k in cells:
        variants = [t for t in tasks if (t.dataset, t.k, t.seed) == (dataset, k, first_seed)]
        with np.load(variants[0].folder(run_dir.path) / "samples.npz") as stored:
            rows = [list(_grey(stored["training_images"][:count]))]
        titles = [f"training (k={k})"]
        for task in variants:
            with np.load(task.folder(run_dir.path) / "samples.npz") as stored:
                rows.append(list(_grey(stored["samples"][:count])))
            titles.append(task.variant)
        save_figure(image_grid(rows, row_titles=titles, value_range=(0, 255)), run_dir.figure_path(f"samples_{dataset}_k{k}"))
    return cells


def _fid_bars(run_dir: RunDir, fid: dict, cells: list[tuple[str, int]]) -> None:
    """Mean FID per variant (error bars: std over seeds; none where one seed gives no spread), one group per data
    set and k."""
    variants = list(dict.fromkeys(v for by_k in fid.values() for by_variant in by_k.values() for v in by_variant))
    figure = Figure(figsize=(1.5 + 1.8 * len(cells), 3.8))
    axis = figure.subplots()
    width = 0.8 / len(variants)
    for index, variant in enumerate(variants):
        means, errors, positions = [], [], []
        for position, cell in enumerate(cells):
            dataset, k = cell
            if variant in fid[dataset][str(k)]:
                stat = fid[dataset][str(k)][variant]
                positions.append(position + (index - (len(variants) - 1) / 2) * width)
                means.append(stat["mean"])
                errors.append(stat["std"])
        spread = None if None in errors else errors
        axis.bar(positions, means, width, yerr=spread, capsize=2, label=variant)
    axis.set_xticks(np.arange(len(cells)), [f"{d}\nk={k}" for d, k in cells], fontsize=8)
    axis.set_ylabel("FID (classifier features)")
    axis.legend(fontsize=7)
    figure.tight_layout()
    save_figure(figure, run_dir.figure_path("fid"))


def _grey(images: np.ndarray) -> np.ndarray:
    """``(N, C, H, W)`` uint8 -> ``(N, H, W)`` for one channel or ``(N, H, W, 3)`` for colour."""
    return images[:, 0] if images.shape[1] == 1 else images.transpose(0, 2, 3, 1)
