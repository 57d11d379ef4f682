"""``inr_signal``: fit implicit neural representations to a 1-D signal at one parameter budget.

The signal (``n_samples`` values in [-1, 1] on ``t = linspace(-1, 1)``) is a window of a file
(audio, CSV, NPY: ``signal.path`` with ``offset`` (or ``auto``), ``stride`` and ``channel``, see
:func:`qml_imaging.data.signals.load_signal_file`) or the generated default of
:func:`qml_imaging.data.signals.default_signal`; ``details.signal`` of the report states the preprocessing.
Every model is trained on all
samples as one batch with MSE and evaluated by MSE, PSNR and the MSE split into the error below and
above ``cutoff_fraction`` of the Nyquist frequency.

Summary (``report.json``): ``mse``, ``mse_low_band``, ``mse_high_band`` and ``psnr`` as
{model: {"mean", "std", "n"}} over seeds (``std`` null for one seed), ``mse_ratio_vs_<reference>`` as
{model: mean ratio}, ``parameters`` and
``seconds_per_fit``.
"""

from __future__ import annotations

import statistics
from functools import partial

import numpy as np
import torch

from qml_imaging.data.signals import default_signal, load_signal_file
from qml_imaging.grid import Task, run_grid
from qml_imaging.pipelines.inr.config import InrSignalConfig
from qml_imaging.pipelines.inr.fitting import (
    executors_for,
    fit_model,
    fit_threads,
    matched_width,
    model_backend_specs,
    quantum_last,
)
from qml_imaging.reporting import figures
from qml_imaging.reporting.stats import summary_stat
from qml_imaging.runs import RunDir
from qml_imaging.training.distributed import current_process_group
from qml_imaging.training.metrics import band_mse


def load_signal(config: InrSignalConfig) -> tuple[np.ndarray, dict]:
    """The run's signal, float64 ``(n_samples,)`` in [-1, 1], and its preprocessing (see
    :func:`qml_imaging.data.signals.load_signal_file`)."""
    source = config.signal
    if source.file is None:
        return default_signal(source.n_samples), {"source": "generated default", "sample_rate": None,
                                                  "preprocessing": "default_signal(n_samples), peak-normalised"}
    return load_signal_file(source.file, source.n_samples, source.offset, source.stride, source.channel)


def run(config: InrSignalConfig, run_dir: RunDir) -> dict:
    """Run every fit not yet done as one grid (``config.grid``; resuming from checkpoints); return the summary."""
    signal, preprocessing = load_signal(config)
    times = torch.linspace(-1.0, 1.0, len(signal)).unsqueeze(1)
    values = torch.as_tensor(signal, dtype=torch.float32).unsqueeze(1)
    backend_specs = model_backend_specs(config.models)
    executors = executors_for(backend_specs)
    widths = {name: matched_width(spec, config.parameter_budget, executors, in_features=1)
              for name, spec in config.models.items()}
    tasks, keys = [], []
    for model_name, spec in quantum_last(config.models):
        for seed in range(config.seeds):
            fit_name = f"{model_name}/seed{seed}"
            tasks.append(Task(fit_name, partial(fit_model, spec, widths[model_name], config.train, times, values,
                                                backend_specs=backend_specs, run_path=str(run_dir.path),
                                                fit_name=fit_name, seed=seed,
                                                predict_on={"train": times}),
                              threads=fit_threads(config.train, len(values), config.parameter_budget)))
            keys.append((model_name, seed))
    outcome = run_grid(tasks, config.grid, run_dir.path, label="fits", progress=config.train.progress)
    fits, reconstructions = [], {}
    for (model_name, seed), result, threads in zip(keys, outcome.results, outcome.threads, strict=True):
        if result is None:
            continue
        prediction = result["predictions"]["train"]
        low, high = band_mse(prediction, values, config.cutoff_fraction)
        fits.append({"model": model_name, "seed": seed, "width": widths[model_name],
                     "parameters": result["parameters"], "seconds": result["seconds"], "threads": threads,
                     "mse_low_band": low, "mse_high_band": high, **result["metrics"]})
        if seed == 0:
            reconstructions[model_name] = prediction.squeeze(1).numpy()
    summary = _summarise(config, fits)
    summary["failed_tasks"] = outcome.failures
    if current_process_group().is_main:
        series = {"signal": (times.squeeze(1).numpy(), signal)}
        series.update({m: (times.squeeze(1).numpy(), r) for m, r in reconstructions.items()})
        plot = figures.curves(series, xlabel="t", ylabel="amplitude", title="signal and reconstructions (seed 0)",
                              log_y=False)
        figures.save_figure(plot, run_dir.figure_path("reconstructions"))
        run_dir.write_report(summary, {"fits": fits, "widths": widths, "signal": preprocessing})
    return summary


def _summarise(config: InrSignalConfig, fits: list[dict]) -> dict:
    """Per model over seeds; a model whose every fit failed is left out."""
    present = [m for m in config.models if any(f["model"] == m for f in fits)]
    summary: dict = {}
    for key in ("mse", "mse_low_band", "mse_high_band", "psnr"):
        summary[key] = {m: summary_stat([f[key] for f in fits if f["model"] == m]) for m in present}
    if config.reference_model in present:
        reference = summary["mse"][config.reference_model]["mean"]
        summary[f"mse_ratio_vs_{config.reference_model}"] = {m: summary["mse"][m]["mean"] / reference for m in present}
    summary["parameters"] = {m: next(f["parameters"] for f in fits if f["model"] == m) for m in present}
    summary["seconds_per_fit"] = {
        m: statistics.median(f["seconds"] for f in fits if f["model"] == m) for m in present
    }
    return summary
