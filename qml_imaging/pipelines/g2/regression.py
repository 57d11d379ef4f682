"""``g2_regression``: the paper's CNN against Levenberg-Marquardt fits on sparse HBT histograms.

The CNN is trained (MAPE loss, the one training loop) on simulated 5-10 s histograms; L-M fits
use the known uncorrelated baseline from the singles counts, as the paper's 4-parameter fit; both
estimators are then scored on held-out emitter histograms at each evaluated acquisition time
(MAPE over true g2(0) above :data:`~qml_imaging.pipelines.g2.config.MAPE_FLOOR`, mean absolute
error, r², RMSE). The **speed-up** is the acquisition time L-M needs to reach the CNN's MAPE at the
shortest evaluated time, divided by that time: L-M is evaluated at ``lm_seconds`` and its MAPE
interpolated log-log (reported as a lower bound when even the longest time is not enough).

Summary (``report.json``): ``mape`` {"cnn": {"5": .., ...}, "lm": {...}} in percent, ``r2`` and
``mae`` and ``rmse`` alike, ``crb_mape`` and ``constant_mape`` {"5": ..} (references, see :func:`score_estimators`), ``lm_mape_by_seconds``, ``speedup`` (with ``speedup_is_lower_bound``),
``cnn_seconds_per_1024`` (median inference time), ``lm_seconds_per_pixel``, ``parameters``,
``training_seconds``.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import get_args

import numpy as np
import torch
from torch.utils.data import TensorDataset

from qml_imaging.models.g2_cnn import G2CNN
from qml_imaging.models.inr import parameter_count
from qml_imaging.physics.g2_fit import DARK_THRESHOLD
from qml_imaging.pipelines.g2.lm import fit_g2_grid
from qml_imaging.physics.hbt import DelayAxis, g2_zero_cramer_rao
from qml_imaging.pipelines.g2.config import MAPE_FLOOR, G2RegressionConfig, Loss
from qml_imaging.pipelines.g2.simulation import held_out_set, training_set
from qml_imaging.reporting import figures
from qml_imaging.reporting.stats import median_seconds
from qml_imaging.runs import RunDir
from qml_imaging.training import Trainer, seed_everything, supervised
from qml_imaging.training.artifacts import save_model_arguments
from qml_imaging.training.losses import mape_loss
from qml_imaging.training.metrics import absolute_errors, mape_percent, r2

TEST_SEED_OFFSET = 5_000_011
PAPER_MAPE = {"cnn": {"5": 5.0, "6": 3.92, "7": 3.58}, "lm": {"5": 32.0, "6": 30.0, "7": 27.0}}


def build_cnn(config: G2RegressionConfig) -> G2CNN:
    """The g2 CNN of ``config.cnn``."""
    return G2CNN.from_spec(config.cnn)


def g2_loss(name: str, floor: float = MAPE_FLOOR):
    """The CNN's training loss ``(prediction, target) -> scalar`` (see :data:`~qml_imaging.pipelines.g2.config.Loss`):
    ``mape`` (torchmetrics' MAPE, the paper's), ``floored_mape`` ``mean |p - t| / max(|t|, floor)``, ``mae``."""
    if name == "mape":
        return mape_loss
    if name == "floored_mape":
        return lambda prediction, target: ((prediction - target).abs() / target.abs().clamp_min(floor)).mean()
    if name == "mae":
        return lambda prediction, target: (prediction - target).abs().mean()
    raise ValueError(f"unknown g2 loss {name!r}; expected one of {list(get_args(Loss))}")


def run(config: G2RegressionConfig, run_dir: RunDir) -> dict:
    """Train (resuming from checkpoints), evaluate CNN and L-M; return the summary."""
    histograms, labels, _, _ = training_set(config.simulation, config.seed)
    held_out = {s: held_out_set(config.simulation, config.evaluation.histograms, s, config.seed + TEST_SEED_OFFSET + s)
                for s in config.evaluation.seconds}
    seed_everything(config.seed)
    first = min(config.evaluation.seconds)

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        test_histograms, test_labels = held_out[first].histograms, held_out[first].labels
        return {f"mape@{first}s": mape_percent(model(test_histograms.float()).double(), test_labels, floor=MAPE_FLOOR)}

    cnn = build_cnn(config)
    save_model_arguments(run_dir.checkpoint_dir("cnn"), {"bins": cnn.bins})
    trainer = Trainer(cnn, config.train, objective=supervised(g2_loss(config.loss)), evaluate=evaluate,
                      checkpoint_dir=run_dir.checkpoint_dir("cnn"), metrics=run_dir.metrics, seed=config.seed,
                      fit_name="cnn")
    result = trainer.fit(TensorDataset(histograms.float(), labels.float()))
    model = trainer.eval_model.cpu()
    scores, predictions = score_estimators(config, model, held_out)
    lm_curve, lm_seconds_per_pixel = lm_speedup_curve(config)
    speedup, lower_bound = speedup_factor(scores["mape"]["cnn"][str(first)], first, lm_curve)
    summary = {
        **scores,
        "paper_mape": PAPER_MAPE,
        "lm_mape_by_seconds": {str(s): m for s, m in lm_curve.items()},
        "speedup": speedup, "speedup_is_lower_bound": lower_bound,
        "cnn_seconds_per_1024": inference_seconds(model, held_out[first].histograms, config.evaluation.timing_histograms),
        "lm_seconds_per_pixel": lm_seconds_per_pixel,
        "parameters": parameter_count(model), "training_seconds": result.seconds,
    }
    _figures(run_dir, predictions, held_out, lm_curve)
    run_dir.write_report(summary, {"training_metrics": result.metrics, "held_out_histograms": config.evaluation.histograms})
    return summary


def score_estimators(config: G2RegressionConfig, model: G2CNN, held_out: dict) -> tuple[dict, dict]:
    """MAPE (%), r² and RMSE of the CNN and L-M at every evaluated acquisition time, with two
    references: ``crb_mape``, the MAPE an unbiased estimator at the Cramér-Rao bound would have
    (mean of ``sqrt(2/pi) sigma_CRB / g2`` over non-dark pixels, dark ones exact), and
    ``constant_mape``, that of answering every lit pixel with the median g2(0) of the range."""
    scores: dict = {"mape": {"cnn": {}, "lm": {}}, "r2": {"cnn": {}, "lm": {}}, "rmse": {"cnn": {}, "lm": {}},
                    "mae": {"cnn": {}, "lm": {}},
                    "crb_mape": {}, "constant_mape": {}}
    predictions = {}
    middle = (config.simulation.g2_zero.low + config.simulation.g2_zero.high) / 2
    for seconds, (histograms, labels, baselines, pixels) in held_out.items():
        estimates = {"cnn": model.predict(histograms).double(),
                     "lm": torch.from_numpy(fit_g2_grid(config.grid, histograms, baseline=baselines, zero_delay_ns=0.0,
                                                        sampling="centre").g2_zero)}
        predictions[seconds] = estimates
        for name, estimate in estimates.items():
            finite = torch.isfinite(estimate)
            scores["mape"][name][str(seconds)] = mape_percent(estimate[finite], labels[finite], floor=MAPE_FLOOR)
            scores["r2"][name][str(seconds)] = r2(estimate[finite], labels[finite])
            errors = absolute_errors(estimate[finite], labels[finite])
            scores["rmse"][name][str(seconds)] = errors["rmse"]
            scores["mae"][name][str(seconds)] = errors["mae"]
        lit = histograms.sum(1) >= DARK_THRESHOLD
        sigma = g2_zero_cramer_rao(pixels, float(seconds), DelayAxis(), config.simulation.efficiency)
        scores["crb_mape"][str(seconds)] = float(100 * torch.where(lit, math.sqrt(2 / math.pi) * sigma / labels, 0.0).mean())
        constant = torch.where(lit, torch.full_like(labels, middle), labels)
        scores["constant_mape"][str(seconds)] = mape_percent(constant, labels, floor=MAPE_FLOOR)
    return scores, predictions


def lm_speedup_curve(config: G2RegressionConfig) -> tuple[dict[int, float], float]:
    """L-M MAPE (%) at each of ``lm_seconds`` and the median L-M time per pixel (s)."""
    curve, per_pixel = {}, []
    for seconds in config.evaluation.lm_seconds:
        histograms, labels, baselines, _ = held_out_set(config.simulation, config.evaluation.lm_histograms, seconds,
                                                    config.seed + 2 * TEST_SEED_OFFSET + seconds)
        started = time.perf_counter()
        estimate = torch.from_numpy(fit_g2_grid(config.grid, histograms, baseline=baselines, zero_delay_ns=0.0,
                                                sampling="centre").g2_zero)
        per_pixel.append((time.perf_counter() - started) / len(histograms))
        finite = torch.isfinite(estimate)
        curve[seconds] = mape_percent(estimate[finite], labels[finite], floor=MAPE_FLOOR)
    return curve, statistics.median(per_pixel)


def speedup_factor(target_mape: float, cnn_seconds: int, lm_curve: dict[int, float]) -> tuple[float, bool]:
    """``(T_lm / cnn_seconds, is_lower_bound)``: T_lm where L-M's MAPE first falls to ``target_mape`` (log-log)."""
    times = sorted(lm_curve)
    for shorter, longer in zip(times, times[1:], strict=False):
        if lm_curve[longer] <= target_mape < lm_curve[shorter]:
            fraction = (math.log(lm_curve[shorter]) - math.log(target_mape)) / (math.log(lm_curve[shorter]) - math.log(lm_curve[longer]))
            return math.exp(math.log(shorter) + fraction * (math.log(longer) - math.log(shorter))) / cnn_seconds, False
    if lm_curve[times[0]] <= target_mape:
        return times[0] / cnn_seconds, False
    return times[-1] / cnn_seconds, True


def inference_seconds(model: G2CNN, histograms: torch.Tensor, count: int, repeats: int = 5) -> float:
    """Median wall time (s) of CNN inference on ``count`` histograms (one untimed warm-up call)."""
    batch = histograms[:count]
    if len(batch) < count:
        batch = batch.repeat(math.ceil(count / len(batch)), 1)[:count]
    return median_seconds(lambda: model.predict(batch), repeats, warmup=1)


def _figures(run_dir: RunDir, predictions: dict, held_out: dict, lm_curve: dict[int, float]) -> None:
    seconds = min(predictions)
    labels = held_out[seconds].labels.numpy()
    series = {}
    for name, estimate in predictions[seconds].items():
        order = np.argsort(labels)
        series[f"{name} ({seconds} s)"] = (labels[order], estimate.numpy()[order])
    series["truth"] = (np.sort(labels), np.sort(labels))
    points = figures.scatter(series, xlabel="true g2(0)", ylabel="estimated g2(0)")
    figures.save_figure(points, run_dir.figure_path("g2_predictions"))
    mape = figures.curves({"L-M": (list(lm_curve), list(lm_curve.values()))}, xlabel="acquisition time (s)",
                          ylabel="MAPE (%)", title="L-M fit: error against acquisition time")
    figures.save_figure(mape, run_dir.figure_path("lm_mape_vs_time"))
