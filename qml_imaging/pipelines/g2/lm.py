"""L-M fits of many histograms as one grid: in this process, or split into chunks of pixels on Ray."""

from __future__ import annotations

import os
from functools import partial

from typing import TYPE_CHECKING

import numpy as np

from qml_imaging.config import GridSettings
from qml_imaging.physics.array_checks import as_array
from qml_imaging.physics.delay_axis import DelayAxis
from qml_imaging.physics.g2_fit import G2Fit, fit_g2

if TYPE_CHECKING:
    import torch


def fit_g2_grid(grid: GridSettings, histograms: np.ndarray | torch.Tensor, axis: DelayAxis = DelayAxis(), *,
                baseline: np.ndarray | torch.Tensor | None = None, zero_delay_ns: float | str = "fit",
                jitter_ns: float | str = 0.0, sampling: str = "bin") -> G2Fit:
    """:func:`~qml_imaging.physics.g2_fit.fit_g2` of every histogram ``(B, bins)`` (``baseline`` ``(B,)``).

    ``grid.executor: local`` fits them in this process in one call; ``ray`` splits them into
    ``grid.tasks_at_once`` (default: the cores) chunks, one Ray task each, and joins the chunks in
    order (pixels are independent fits, so the values are the same). A chunk that still fails after
    ``grid.max_retries`` retries raises ``RuntimeError`` with its error. The grid runner is imported
    only for Ray, so a local fit of a lab file loads no training code (and no torch). Arrays or tensors
    in, :class:`~qml_imaging.physics.g2_fit.G2Fit` (NumPy arrays) out.
    """
    if grid.executor == "local" or len(histograms) < 2:
        return fit_g2(histograms, axis, baseline=baseline, zero_delay_ns=zero_delay_ns, jitter_ns=jitter_ns,
                      sampling=sampling)
    from qml_imaging.grid import Task, run_grid

    histograms = as_array(histograms)
    baseline = None if baseline is None else as_array(baseline)
    parts = min(len(histograms), grid.tasks_at_once or os.cpu_count() or 1)
    chunks = np.array_split(np.arange(len(histograms)), parts)
    tasks = [Task(f"lm/chunk{i}", partial(fit_g2, histograms[c], axis, zero_delay_ns=zero_delay_ns, jitter_ns=jitter_ns,
                                          sampling=sampling, baseline=None if baseline is None else baseline[c]))
             for i, c in enumerate(chunks)]
    outcome = run_grid(tasks, grid, label="L-M fits", progress=False)
    outcome.raise_failures()
    return G2Fit.concat(outcome.results)
