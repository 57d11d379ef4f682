"""Figures as :class:`matplotlib.figure.Figure` objects, built without pyplot.

Nothing here selects a matplotlib backend or registers a figure with pyplot's figure manager: a
notebook keeps its own backend (inline plots stay on) and displays a returned figure as it is, and a
pipeline writes it to PNG with :func:`save_figure` (Agg canvas, atomic write). Figures built this
way are freed by the garbage collector; there is no ``plt.close`` to call.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure


def image_grid(
    rows: Sequence[Sequence[np.ndarray]],
    *,
    column_titles: Sequence[str] = (),
    row_titles: Sequence[str] = (),
    value_range: tuple[float, float] | None = None,
) -> Figure:
    """A grid of images: ``rows[i][j]`` (grey ``(H, W)`` or colour ``(H, W, 3)``) in row i, column j.

    ``value_range`` (vmin, vmax) is shared by all grey images; ``None`` scales each one to its own
    range. Rows shorter than the longest leave their last cells blank.
    """
    n_rows, n_cols = len(rows), max(len(row) for row in rows)
    figure = Figure(figsize=(1.9 * n_cols, 1.9 * n_rows))
    axes = figure.subplots(n_rows, n_cols, squeeze=False)
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
    return figure


def curves(
    series: dict[str, tuple[Sequence[float], Sequence[float]]],
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
    log_y: bool = True,
) -> Figure:
    """Line plot of named ``(x, y)`` series; a logarithmic y axis unless ``log_y`` is false."""
    figure = Figure(figsize=(5.5, 3.8))
    axis = figure.subplots()
    for name, (x, y) in series.items():
        axis.plot(x, y, label=name)
    if log_y:
        axis.set_yscale("log")
    return _finish(figure, axis, xlabel, ylabel, title)


def scatter(series: dict[str, tuple[Sequence[float], Sequence[float]]], *, xlabel: str, ylabel: str,
            title: str = "") -> Figure:
    """Scatter plot of named ``(x, y)`` point sets."""
    figure = Figure(figsize=(4.8, 4.2))
    axis = figure.subplots()
    for name, (x, y) in series.items():
        axis.plot(x, y, ".", markersize=3, alpha=0.5, label=name)
    return _finish(figure, axis, xlabel, ylabel, title)


def _finish(figure: Figure, axis: Axes, xlabel: str, ylabel: str, title: str) -> Figure:
    """Label, add legend and grid, lay out."""
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def grouped_bars(values: dict[str, dict[str, float]], *, ylabel: str, title: str = "") -> Figure:
    """Bars of ``values[group][series]``: one group of bars per key, one colour per series, a line at 1."""
    groups = list(values)
    series = list(next(iter(values.values())))
    width = 0.8 / len(series)
    figure = Figure(figsize=(1.2 + 1.4 * len(groups), 3.6))
    axis = figure.subplots()
    for index, name in enumerate(series):
        positions = np.arange(len(groups)) + (index - (len(series) - 1) / 2) * width
        axis.bar(positions, [values[g][name] for g in groups], width, label=name)
    axis.set_xticks(np.arange(len(groups)), groups)
    axis.axhline(1.0, color="black", linewidth=0.8)
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def save_figure(figure: Figure, path: str | Path) -> Path:
    """Write ``figure`` to ``path`` as a 120 dpi PNG, atomically; returns ``path``."""
    from qml_imaging.runs import atomic_replace

    path = Path(path)
    with atomic_replace(path) as temporary, open(temporary, "wb") as handle:
        figure.savefig(handle, dpi=120, format="png")
    return path
