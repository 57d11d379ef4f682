"""Figures as :class:`matplotlib.figure.Figure` objects, built without pyplot.

Nothing here selects a matplotlib backend or registers a figure with pyplot's figure manager: a
notebook keeps its own backend (inline plots stay on) and displays a returned figure as it is, and a
pipeline writes it to PNG with :func:`save_figure` (Agg canvas, atomic write). Figures built this
way are freed by the garbage collector; there is no ``plt.close`` to call.
"""

from __future__ import annotations

import textwrap
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
    panel_titles: Sequence[Sequence[str]] = (),
    colorbars: bool = False,
    cmap: str = "gray",
    panel_ranges: Sequence[Sequence[tuple[float, float] | None]] = (),
) -> Figure:
    """A grid of images: ``rows[i][j]`` (grey ``(H, W)`` or colour ``(H, W, 3)``) in row i, column j.

    ``value_range`` (vmin, vmax) is shared by all grey images; ``None`` scales each one to its own
    range. ``panel_titles[i][j]`` titles one panel (over ``column_titles``, which title the first row);
    ``colorbars`` gives every grey panel its own colour bar (maps of quantities: their values read off);
    ``cmap`` is the colour map of grey images (a matplotlib name); ``panel_ranges[i][j]`` sets one panel's
    (vmin, vmax) over ``value_range`` (maps of one quantity side by side on one scale).
    Rows shorter than the longest leave their last cells blank.
    """
    n_rows, n_cols = len(rows), max(len(row) for row in rows)
    width = 2.4 if colorbars else 1.9
    figure = Figure(figsize=(width * n_cols, 2.1 * n_rows), layout="constrained")
    axes = figure.subplots(n_rows, n_cols, squeeze=False)
    for i, row in enumerate(rows):
        for j in range(n_cols):
            axis = axes[i][j]
            axis.set_xticks([])
            axis.set_yticks([])
            if j >= len(row):
                axis.axis("off")
                continue
            shown_range = panel_ranges[i][j] if i < len(panel_ranges) and j < len(panel_ranges[i]) else value_range
            _show(figure, axis, np.asarray(row[j]), shown_range, colorbars, cmap)
            title = _title(i, j, panel_titles, column_titles)
            if title:
                axis.set_title(title, fontsize=8)
            if j == 0 and i < len(row_titles):
                axis.set_ylabel(row_titles[i], fontsize=9)
    return figure


def _show(figure: Figure, axis: Axes, image: np.ndarray, value_range: tuple[float, float] | None,
          colorbar: bool, cmap: str) -> None:
    """One panel: grey images in ``cmap`` (over ``value_range`` or their own), with a colour bar when asked."""
    vmin, vmax = value_range if value_range is not None else (None, None)
    shown = axis.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax)
    if colorbar and image.ndim == 2:
        bar = figure.colorbar(shown, ax=axis, fraction=0.046, pad=0.03)
        bar.ax.tick_params(labelsize=7)


def _title(i: int, j: int, panel_titles: Sequence[Sequence[str]], column_titles: Sequence[str]) -> str:
    """Panel (i, j)'s own title, else its column's title on the first row, else none."""
    if i < len(panel_titles) and j < len(panel_titles[i]):
        return panel_titles[i][j]
    return column_titles[j] if i == 0 and j < len(column_titles) else ""


def curves(
    series: dict[str, tuple[Sequence[float], Sequence[float]]],
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
    log_y: bool = True,
    mark_last_and_lowest: bool = False,
) -> Figure:
    """Line plot of named ``(x, y)`` series; a logarithmic y axis unless ``log_y`` is false.

    ``mark_last_and_lowest`` marks each series' last point (a dot: the value a table of final results
    reports) and its lowest (a triangle), in the series' colour, with both markers named in the legend.
    """
    figure = Figure(figsize=(6.0, 4.0), layout="constrained")
    axis = figure.subplots()
    for name, (x, y) in series.items():
        (line,) = axis.plot(x, y, label=name, linewidth=1.2)
        if mark_last_and_lowest and len(y):
            lowest = int(np.argmin(y))
            axis.plot([x[-1]], [y[-1]], "o", color=line.get_color(), markersize=5)
            axis.plot([x[lowest]], [y[lowest]], "v", color=line.get_color(), markersize=6)
    if mark_last_and_lowest:
        axis.plot([], [], "o", color="grey", label="last epoch")
        axis.plot([], [], "v", color="grey", label="lowest")
    if log_y:
        axis.set_yscale("log")
    return _finish(figure, axis, xlabel, ylabel, title)


def scatter(series: dict[str, tuple[Sequence[float], Sequence[float]]], *, xlabel: str, ylabel: str,
            title: str = "") -> Figure:
    """Scatter plot of named ``(x, y)`` point sets."""
    figure = Figure(figsize=(4.8, 4.2), layout="constrained")
    axis = figure.subplots()
    for name, (x, y) in series.items():
        axis.plot(x, y, ".", markersize=3, alpha=0.5, label=name)
    return _finish(figure, axis, xlabel, ylabel, title)


def _finish(figure: Figure, axis: Axes, xlabel: str, ylabel: str, title: str) -> Figure:
    """Label, add the legend (outside the axes, right, so it covers no data) and grid."""
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_title(title, fontsize=10)
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    axis.grid(alpha=0.3)
    return figure


def grouped_bars(values: dict[str, dict[str, float]], *, ylabel: str, title: str = "") -> Figure:
    """Bars of ``values[group][series]``: one group of bars per key, one colour per series, a line at 1,
    each bar labelled with its value; the legend sits outside the axes (right) and the title wraps to the
    figure's width, so neither covers nor loses anything."""
    groups = list(values)
    series = list(next(iter(values.values())))
    width = 0.8 / len(series)
    figure = Figure(figsize=(2.6 + 0.5 * len(groups) * len(series), 3.8), layout="constrained")
    axis = figure.subplots()
    for index, name in enumerate(series):
        positions = np.arange(len(groups)) + (index - (len(series) - 1) / 2) * width
        bars = axis.bar(positions, [values[g][name] for g in groups], width, label=name)
        axis.bar_label(bars, fmt="%.2g", fontsize=7, padding=1)
    axis.set_xticks(np.arange(len(groups)), groups)
    axis.axhline(1.0, color="black", linewidth=0.8)
    axis.set_ylabel(ylabel)
    axis.margins(y=0.12)
    characters = max(20, int(figure.get_figwidth() * 11))
    axis.set_title(textwrap.fill(title, characters), fontsize=10)
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    return figure


def save_figure(figure: Figure, path: str | Path) -> Path:
    """Write ``figure`` to ``path`` as a 120 dpi PNG, atomically; returns ``path``."""
    from qml_imaging.runs import atomic_replace

    path = Path(path)
    with atomic_replace(path) as temporary, open(temporary, "wb") as handle:
        figure.savefig(handle, dpi=120, format="png")
    return path
