"""Figures of the QCRB pipelines: error against photon number with limit lines, bias and variance maps."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from qml_imaging.physics.bounds import heisenberg_total, sql_total


def error_vs_nbar(nbars: np.ndarray, measured: dict[str, list[float]], bounds: dict[str, list[float]]) -> Figure:
    """Log-log total squared error against nbar: measured estimators (markers) and limits (lines, SQL and HL included)."""
    figure = Figure(figsize=(5.5, 4.0))
    axis = figure.subplots()
    dense = np.geomspace(nbars.min() / 1.5, nbars.max() * 1.5, 100)
    axis.plot(dense, [float(sql_total(n)) for n in dense], "k--", label="SQL 1/N")
    axis.plot(dense, [float(heisenberg_total(n)) for n in dense], "k:", label="HL 1/N²")
    for name, values in bounds.items():
        axis.plot(nbars, values, "-", color="grey", linewidth=2, label=name)
    for name, values in measured.items():
        axis.plot(nbars, values, "o-", label=name)
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("mean photons per image N")
    axis.set_ylabel("total squared error of phi")
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def bias_variance_maps(rows: list[dict]) -> Figure:
    """One row per (estimator, nbar): its bias map and variance map."""
    figure = Figure(figsize=(4.6, 2.1 * len(rows)))
    axes = figure.subplots(len(rows), 2, squeeze=False)
    for (bias_axis, variance_axis), row in zip(axes, rows, strict=True):
        bias = row["bias_map"].numpy()
        limit = np.abs(bias).max() or 1.0
        shown = bias_axis.imshow(bias, cmap="RdBu", vmin=-limit, vmax=limit)
        figure.colorbar(shown, ax=bias_axis, fraction=0.046)
        shown = variance_axis.imshow(row["variance_map"].numpy(), cmap="magma")
        figure.colorbar(shown, ax=variance_axis, fraction=0.046)
        bias_axis.set_ylabel(f"{row['estimator']}\nN={row['nbar']:g}", fontsize=8)
        for axis in (bias_axis, variance_axis):
            axis.set_xticks([])
            axis.set_yticks([])
    axes[0][0].set_title("bias", fontsize=9)
    axes[0][1].set_title("variance", fontsize=9)
    figure.tight_layout()
    return figure
