"""``inr_runtime``: a fitted QIREN's image evaluated on IBM Runtime, one Estimator job per quantum layer.

The QIREN of ``fit`` (final checkpoint of an ``inr_image`` run) predicts the chosen pixels twice:
exactly (fast statevector simulator) and through :class:`~qml_imaging.quantum.hardware.HardwareEvaluation`
on ``backend`` (an IBM backend, or a fake one in local testing mode). The run folder holds
``plan.json`` (transpiled circuits and jobs, written before the first submission), the job store
``jobs.json`` with its inputs/results, ``report.json`` and the figure. Interrupted runs continue
with ``qml-imaging hardware fetch RUN_FOLDER`` (or ``qml-imaging run --resume``).

Summary: ``state`` ("complete" or "waiting"), ``jobs``, ``layers``, ``results_recorded``,
``wall_seconds`` (first submission to last result), ``failed_attempts``, and when complete
``mse_vs_exact`` (hardware vs exact prediction), ``mse_vs_image``, ``exact_mse_vs_image`` and
``layer_agreement`` (each layer's results against exact evaluation of its own submitted inputs:
correlation, damping slope, RMSE).
"""

from __future__ import annotations

import json
import sys

import torch

from qml_imaging.pipelines.inr.fitting import VALUE_RANGE, predict
from qml_imaging.pipelines.inr.hardware import (
    evaluation_pixels,
    load_fitted_qiren,
)
from qml_imaging.pipelines.inr.config import InrRuntimeConfig
from qml_imaging.quantum.hardware import HardwareEvaluation
from qml_imaging.quantum.backends import ibm_backend_spec
from qml_imaging.reporting.figures import image_grid, save_figure, scatter
from qml_imaging.runs import RunDir, write_text_atomic
from qml_imaging.training.metrics import mse


def prepare(config: InrRuntimeConfig, run_dir: RunDir, jobs=None) -> tuple[HardwareEvaluation, torch.Tensor]:
    """The evaluation of ``config`` in ``run_dir`` (its ``inputs``: pixels ``(N, 2)``) and the image
    values ``(N, 1)``; ``jobs`` overrides the backend's job service (tests)."""
    source = RunDir.open(config.source_run)
    model, _, grid, grid_values = load_fitted_qiren(source, config.fit)
    coordinates, values = evaluation_pixels(grid, grid_values, config.n_coordinates, config.seed)
    evaluation = HardwareEvaluation(model, coordinates, ibm_backend_spec(config.backend), run_dir.path, jobs=jobs,
                                    log=lambda message: print(message, file=sys.stderr, flush=True))
    return evaluation, values


def run(config: InrRuntimeConfig, run_dir: RunDir, *, wait: bool = True, jobs=None) -> dict:
    """Submit or continue the evaluation; ``wait=False`` returns after the next submission."""
    evaluation, values = prepare(config, run_dir, jobs)
    exact = predict(evaluation.model, evaluation.inputs)
    plan_path = run_dir.path / "plan.json"
    if not plan_path.is_file():
        write_text_atomic(plan_path, json.dumps(evaluation.plan(), indent=1) + "\n")
    plan = json.loads(plan_path.read_text())
    outputs = evaluation.advance(wait=wait)
    summary = {"backend": evaluation.spec.device_name, "local_testing_mode": evaluation.jobs.local,
               "n_coordinates": len(values), "shots": plan["shots"],
               "circuit_executions_unbatched": plan["circuit_executions_unbatched"], **evaluation.summary()}
    if outputs is None:
        summary.update(state="waiting", status=evaluation.status(),
                       next=f"qml-imaging hardware fetch {run_dir.path}")
        run_dir.write_report(summary, {"plan": plan})
        return summary
    summary.update(state="complete", mse_vs_exact=mse(outputs, exact), mse_vs_image=mse(outputs, values),
                   exact_mse_vs_image=mse(exact, values), layer_agreement=evaluation.layer_agreement())
    _figure(config, run_dir, values, exact, outputs)
    run_dir.write_report(summary, {"plan": plan, "source_run": config.source_run, "fit": config.fit})
    return summary


def _figure(config: InrRuntimeConfig, run_dir: RunDir, values: torch.Tensor, exact: torch.Tensor,
            outputs: torch.Tensor) -> None:
    if config.n_coordinates is None:
        side = round(len(values) ** 0.5)
        images = [t.reshape(side, side).numpy() for t in (values, exact, outputs)]
        grid = image_grid([images], column_titles=["image", "exact", config.backend], value_range=VALUE_RANGE)
        save_figure(grid, run_dir.figure_path("reconstruction"))
    points = scatter({config.backend: (exact.flatten().tolist(), outputs.flatten().tolist())},
                     xlabel="exact prediction", ylabel="hardware prediction", title="QIREN pixel values")
    save_figure(points, run_dir.figure_path("hardware_vs_exact"))
