"""Figures written as PNG files with matplotlib's non-interactive backend."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402


def image_grid(
    rows: Sequence[Sequence[np.ndarray]],
    path: str | Path,
    *,
    column_titles: Sequence[str] = (),
    row_titles: Sequence[str] = (),
    value_range: tuple[float, float] | None = None,
) -> Path:
    """A grid of grey ``(H, W)`` images, ``rows[i][j]`` in row i, column j."""
    n_rows, n_cols = len(rows), max(len(row) for row in rows)
    figure, axes = plt.subplots(n_rows, n_cols, figsize=(1.9 * n_cols, 1.9 * n_rows), squeeze=False)
    vmin, vmax = value_range if value_range is not None else (None, None)
    for i, row in enumerate(rows):
        for j in range(n_cols):
            axis = axes[i][j]
            axis.set_xticks([])
            axis.set_yticks([])
            if j < len(row):
                axis.imshow(np.asarray(row[j]), cmap="gray", vmin=vmin, vmax=vmax)
            else:
                axis.axis("off")
            if i == 0 and j < len(column_titles):
                axis.set_title(column_titles[j], fontsize=9)
            if j == 0 and i < len(row_titles):
                axis.set_ylabel(row_titles[i], fontsize=9)
    figure.tight_layout()
    return save_figure(figure, path)


def curves(
    series: dict[str, tuple[Sequence[float], Sequence[float]]],
    path: str | Path,
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
    log_y: bool = True,
) -> Path:
    """Line plot of named ``(x, y)`` series."""
    figure, axis = plt.subplots(figsize=(5.5, 3.8))
    for name, (x, y) in series.items():
        axis.plot(x, y, label=name)
    if log_y:
        axis.set_yscale("log")
    return _finish(figure, axis, path, xlabel, ylabel, title)


def scatter(series: dict[str, tuple[Sequence[float], Sequence[float]]], path: str | Path, *, xlabel: str, ylabel: str,
            title: str = "") -> Path:
    """Scatter plot of named ``(x, y)`` point sets."""
    figure, axis = plt.subplots(figsize=(4.8, 4.2))
    for name, (x, y) in series.items():
        axis.plot(x, y, ".", markersize=3, alpha=0.5, label=name)
    return _finish(figure, axis, path, xlabel, ylabel, title)


def _finish(figure: plt.Figure, axis: plt.Axes, path: str | Path, xlabel: str, ylabel: str, title: str) -> Path:
    """Label, add legend and grid, save."""
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return save_figure(figure, path)


def grouped_bars(values: dict[str, dict[str, float]], path: str | Path, *, ylabel: str, title: str = "") -> Path:
    """Bars of ``values[group][series]``: one group of bars per key, one colour per series."""
    groups = list(values)
    series = list(next(iter(values.values())))
    width = 0.8 / len(series)
    figure, axis = plt.subplots(figsize=(1.2 + 1.4 * len(groups), 3.6))
    for index, name in enumerate(series):
        positions = np.arange(len(groups)) + (index - (len(series) - 1) / 2) * width
        axis.bar(positions, [values[g][name] for g in groups], width, label=name)
    axis.set_xticks(np.arange(len(groups)), groups)
    axis.axhline(1.0, color="black", linewidth=0.8)
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return save_figure(figure, path)


def save_figure(figure: plt.Figure, path: str | Path) -> Path:
    """Write ``figure`` to ``path`` as PNG and close it."""
    path = Path(path)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
