"""``qcrb_parametric``: U-Net denoisers and the MLE on one image family, against the QCRB.

Each entry of ``denoisers`` trains one U-Net on images of ``family`` with random parameters and
``nbar`` log-uniform over the training range. Then, at the config's ``theta`` and every ``nbar``
of the evaluation grid, ``realisations`` shot-noise images are estimated by every U-Net and by the
multi-start Poisson MLE, and their total squared error is split into bias² and variance, and
into its part along the family's tangent space (where an efficient estimator's error lies) and the
orthogonal rest, and divided by the total QCRB ``Tr(J F^-1 J^T)``. Grid points outside the training
range are flagged.

Summary (``report.json``): ``mse_over_qcrb`` {estimator: {nbar: ratio}}; ``bias2_over_qcrb``,
``variance_over_qcrb``, ``tangent_over_qcrb`` and ``orthogonal_over_qcrb`` alike; ``qcrb_total``
{nbar: bound}, ``sql_total`` {nbar: 1/nbar}, ``out_of_training_range`` (nbars), ``parameters`` and
``training_seconds`` per U-Net.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from qml_imaging.grid import Task, run_grid
from qml_imaging.models.inr import parameter_count
from qml_imaging.physics.bounds import heisenberg_total, sql_total, total_bound
from qml_imaging.physics.estimation import error_statistics, tangent_split
from qml_imaging.physics.mle import PoissonMLE
from qml_imaging.physics.parametric import get_family
from qml_imaging.physics.shot_noise import shot_noise_counts
from qml_imaging.pipelines.qcrb.config import QcrbParametricConfig
from qml_imaging.pipelines.qcrb.denoising import denoiser_threads, denoise, train_denoiser
from qml_imaging.pipelines.qcrb.figures import bias_variance_maps, error_vs_nbar
from qml_imaging.reporting import figures
from qml_imaging.runs import RunDir
from qml_imaging.training.distributed import current_process_group

EVALUATION_SEED_OFFSET = 1_000_003
SPLITS = ("mse", "bias2", "variance", "tangent", "orthogonal")


def run(config: QcrbParametricConfig, run_dir: RunDir) -> dict:
    """Train the U-Nets (resuming from checkpoints), evaluate them and the MLE; return the summary."""
    family = get_family(config.family)
    theta = family.check(torch.tensor(config.theta))
    size = config.image_size

    def sampler(n: int, generator: torch.Generator) -> torch.Tensor:
        return family.phi(family.sample(n, generator), size).to(torch.float32)

    data_range = _target_range(family.phi(family.sample(4096, torch.Generator().manual_seed(1)), size))
    tasks = [Task(name, fit_and_evaluate, (config, name, sampler, data_range, str(run_dir.path)),
                  threads=denoiser_threads(config)) for name in config.denoisers]
    outcome = run_grid(tasks, config.grid, run_dir.path, label="denoisers", progress=config.train.progress)
    if not current_process_group().is_main:
        return {}
    done = {task.name: result for task, result in zip(tasks, outcome.results, strict=True) if result is not None}
    training = {name: result["training"] for name, result in done.items()}
    rows = [row for result in done.values() for row in result["rows"]]
    examples: dict = {}
    for result in done.values():
        for nbar, shown in result["examples"].items():
            examples.setdefault(nbar, {}).update(shown)
    truth = family.phi(theta, size)[0]
    estimators = {}
    if config.mle.enabled:
        mle = PoissonMLE(family, size, candidates=config.mle.candidates, starts=config.mle.starts,
                         iterations=config.mle.iterations, seed=config.seed)
        estimators["mle"] = lambda counts, nbar: family.phi(mle.fit(counts, nbar), size)
    jacobian = family.jacobian(theta, size)[0]
    mle_rows, mle_examples = evaluate(config, truth, jacobian, estimators)
    rows += mle_rows
    for nbar, shown in mle_examples.items():
        examples.setdefault(nbar, {}).update(shown)
    summary = _summarise(config, rows, training)
    summary["failed_tasks"] = outcome.failures
    _figures(config, run_dir, rows, examples, truth)
    run_dir.write_report(summary, {"rows": [{k: v for k, v in r.items() if not k.endswith("_map")} for r in rows],
                                   "training": training, "family": family.description,
                                   "parameter_names": [p.name for p in family.parameters]})
    return summary


def fit_and_evaluate(config: QcrbParametricConfig, name: str, sampler, data_range: float, run_path: str) -> dict:
    """One grid task: train the U-Net ``name`` of ``config.denoisers`` on the family's images from
    ``sampler`` and evaluate it at the config's theta (rank 0 only under torchrun); return
    ``training`` (seconds, parameters, final loss, validation), its ``rows`` and ``examples`` (see :func:`evaluate`)."""
    family = get_family(config.family)
    theta = family.check(torch.tensor(config.theta))
    trainer, result = train_denoiser(name, config.denoisers[name], config, sampler, run_path, data_range)
    rows, examples = [], {}
    if current_process_group().is_main:
        truth = family.phi(theta, config.image_size)[0]
        model = trainer.eval_model
        rows, examples = evaluate(config, truth, family.jacobian(theta, config.image_size)[0],
                                  {name: lambda counts, nbar: denoise(model, counts, nbar, config.unet)})
    return {"training": {"seconds": result.seconds, "parameters": parameter_count(trainer.module),
                         "final_loss": result.final_loss, "validation": result.metrics},
            "rows": rows, "examples": examples}


def evaluate(config: QcrbParametricConfig, truth: torch.Tensor, jacobian: torch.Tensor,
             estimators: dict) -> tuple[list[dict], dict]:
    """One row per (estimator, nbar): totals, bias², variance, tangent and orthogonal parts, their
    ratios to the QCRB, seconds and maps; ``jacobian`` ``(H * W, P)`` is the family's at ``truth``."""
    rows, examples = [], {}
    realisations = config.evaluation.realisations
    for index, nbar in enumerate(config.evaluation.nbars):
        generator = torch.Generator().manual_seed(config.seed + EVALUATION_SEED_OFFSET + index)
        counts = shot_noise_counts(truth.expand(realisations, -1, -1).contiguous(), nbar, generator)
        bound = float(total_bound(truth.flatten()[None], jacobian[None], nbar)[0])
        examples[nbar] = {"counts": counts[0]}
        for name, estimate in estimators.items():
            started = time.perf_counter()
            estimates = estimate(counts, nbar)
            seconds = time.perf_counter() - started
            stats = error_statistics(estimates, truth) | tangent_split(estimates, truth, jacobian)
            examples[nbar][name] = estimates[0]
            rows.append({
                "estimator": name, "nbar": nbar, "qcrb_total": bound, "seconds": seconds,
                "in_training_range": config.training.nbar_min <= nbar <= config.training.nbar_max,
                **{key: float(stats[key]) for key in SPLITS},
                **{f"{key}_over_qcrb": float(stats[key]) / bound for key in SPLITS},
                "mse_over_sql": float(stats["mse"] * nbar),
                **{f"{key}_map": stats[f"{key}_map"] for key in ("bias", "variance")},
            })
    return rows, examples


def _target_range(phi: torch.Tensor) -> float:
    """SSIM data range for targets ``K * phi``: their spread over a large sample of the family."""
    scaled = phi * phi.shape[-1] * phi.shape[-2]
    return float(scaled.max() - scaled.min())


def _summarise(config: QcrbParametricConfig, rows: list[dict], training: dict) -> dict:
    def table(key: str) -> dict:
        result: dict = {}
        for row in rows:
            result.setdefault(row["estimator"], {})[f"{row['nbar']:g}"] = row[key]
        return result

    nbars = config.evaluation.nbars
    return {
        **{f"{key}_over_qcrb": table(f"{key}_over_qcrb") for key in SPLITS},
        "qcrb_total": {f"{n:g}": next(r["qcrb_total"] for r in rows if r["nbar"] == n) for n in nbars},
        "sql_total": {f"{n:g}": float(sql_total(n)) for n in nbars},
        "heisenberg_total": {f"{n:g}": float(heisenberg_total(n)) for n in nbars},
        "out_of_training_range": [n for n in nbars if not config.training.nbar_min <= n <= config.training.nbar_max],
        "parameters": {name: t["parameters"] for name, t in training.items()},
        "training_seconds": {name: t["seconds"] for name, t in training.items()},
        "realisations": config.evaluation.realisations,
    }


def _figures(config: QcrbParametricConfig, run_dir: RunDir, rows: list[dict], examples: dict, truth: torch.Tensor) -> None:
    nbars = np.array(config.evaluation.nbars)
    bounds = {"QCRB": [next(r["qcrb_total"] for r in rows if r["nbar"] == n) for n in nbars]}
    measured = {name: [r["mse"] for r in rows if r["estimator"] == name] for name in dict.fromkeys(r["estimator"] for r in rows)}
    figures.save_figure(error_vs_nbar(nbars, measured, bounds), run_dir.figure_path("mse_vs_nbar"))
    names = list(measured)
    grid = [[truth.numpy(), examples[n]["counts"].numpy()] + [examples[n][m].numpy() for m in names] for n in nbars]
    figure = figures.image_grid(grid, column_titles=["truth", "counts", *names], row_titles=[f"nbar {n:g}" for n in nbars])
    figures.save_figure(figure, run_dir.figure_path("reconstructions"))
    figures.save_figure(bias_variance_maps(rows), run_dir.figure_path("bias_variance_maps"))
