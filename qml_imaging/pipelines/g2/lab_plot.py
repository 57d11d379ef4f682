"""``g2 fit --plot``: one figure per histogram with the counts, the fitted model and the deviance residuals.

Built as a :class:`matplotlib.figure.Figure` (no pyplot state, no backend change) and saved atomically by
:func:`qml_imaging.reporting.figures.save_figure`. The model drawn is the fit's expected count per bin
(:func:`qml_imaging.physics.g2_model.binned_curve` times the baseline); residuals are the signed Poisson
deviance residuals (:func:`qml_imaging.physics.g2_search.deviance_residuals`), about N(0, 1) for a good fit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from qml_imaging.data.histograms import HbtHistograms
from qml_imaging.physics.g2_model import binned_curve, subpoints_for
from qml_imaging.physics.g2_search import deviance_residuals
from qml_imaging.reporting.figures import save_figure


def fitted_counts(data: HbtHistograms, row: dict) -> np.ndarray:
    """``(K,)`` expected counts per bin of a row of :func:`~qml_imaging.pipelines.g2.lab.fit_histograms`."""
    centres, width = data.axis.centres().numpy(), data.axis.width_ns
    t1 = max(row["t1_ns"], 1e-9)
    curve = binned_curve(centres, width, subpoints_for(width, t1), row["zero_delay_ns"], row["a1"], t1, row["a2"],
                         row["t2_ns"] if row["t2_ns"] > 0 else 1.0, row["jitter_ns"])
    return row["baseline"] * curve


def fit_figure(data: HbtHistograms, row: dict) -> Figure:
    """Counts and fit (top), deviance residuals (bottom) of histogram ``row["row"]``, against delay in ns."""
    counts = data.counts[row["row"]]
    centres = data.axis.centres().numpy()
    expected = fitted_counts(data, row)
    figure = Figure(figsize=(7.0, 5.0))
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": (3, 1)})
    top.step(centres, counts, where="mid", color="0.5", linewidth=0.8, label="counts")
    top.plot(centres, expected, color="C3", linewidth=1.2, label="fit")
    top.set_ylabel("coincidences per bin")
    top.legend(loc="lower right")
    verdict = f"g2(0) = {row['g2']:.3f} ± {row['sigma']:.3f}" if not row["status"] else f"refused: {row['status'][:70]}…"
    top.set_title(f"{Path(data.source).name}[{row['row']}]: {verdict}", fontsize=9)
    bottom.plot(centres, deviance_residuals(np.maximum(expected, 1e-300), counts), ".", markersize=2, color="C0")
    bottom.axhline(0.0, color="0.3", linewidth=0.8)
    bottom.set_xlabel("delay (ns)")
    bottom.set_ylabel("deviance residual")
    figure.tight_layout()
    return figure


def plot_rows(data: HbtHistograms, rows: list[dict], folder: Path) -> list[Path]:
    """Save :func:`fit_figure` of every row as ``folder/<file stem>_<row>.png`` (the folder is created)."""
    folder.mkdir(parents=True, exist_ok=True)
    return [save_figure(fit_figure(data, row), folder / f"{Path(data.source).stem}_{row['row']}.png") for row in rows]
