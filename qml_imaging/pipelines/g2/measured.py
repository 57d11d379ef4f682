"""Measured photon-correlation data: per-histogram fits, scans to g2(0) maps, and ``g2_measured``,
the paper's training protocol on per-emitter series of short histograms (paper 002).

**Fits** (:func:`fit_histograms`): L-M with the zero delay fitted (or given), the baseline from the
singles counts (``N1 N2 w / T``) when the file has them, else from the tails (``auto``), and an
optional background correction with ``rho``; the CNN of a finished run where its axis matches.

**Scans** (:func:`scan_maps`): the zero delay is a property of the set-up, so it is fitted once on the
sum of all pixels' histograms and given to every pixel's fit; pixels with fewer than 4
coincidences or no singles are dark: g2(0) = 1 in every map, uncertainty 1 (no information; the
fit's ``inf`` is kept out of the maps so that every map is finite) and ``dark`` marks them. The
photon-count map is ``N = N1 + N2`` (singles), the G2 image ``N^2 (1 - g2(0))``.

**Protocol** (``g2_measured``; Kudyshev et al., paper 002, Methods): per emitter a series of short
histograms (a file each, rows = short histograms); the emitter's label is the L-M g2(0) of the sum
of its whole series (baseline from the summed singles, zero delay fitted on the sum); training and
test histograms are sums of ``k`` distinct short histograms of one emitter, ``k`` uniform in
``1..max_sum``, labelled with their emitter's label. Splits:

- ``by_emitter``: emitters are split first; no short histogram of a test emitter is in any training
  sum, so the score measures what the CNN does on an emitter it has never seen (a new sample).
- ``leaky`` (by histogram): the sums are drawn from all emitters and then split; test sums share
  short histograms, the emitter and its label with training sums, so a network can score by
  recognising the emitter (its count rate, its curve) instead of measuring g2(0). This is the leak
  ``docs/results.md`` suspects in the paper's 5 % MAPE; the difference between the two rows measures it.

Sums with fewer than 4 coincidences are left out of training and scoring. Scores against the labels
(and against the simulation's truth when the files carry ``g2_true``): MAPE over labels above
``mape_floor`` (percent), MAE and RMSE, for the CNN and for L-M on the same sums (baseline from their
singles, the set-up's zero delay, fitted once on the sum of all series).

Summary (``report.json``): ``scores`` {split: {"cnn" | "lm": {"mape", "mae", "rmse"}}},
``scores_vs_truth`` alike (simulated data), ``emitters`` {split: {"train", "test"}}, ``zero_delay_ns``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from qml_imaging.data.hbt_files import ENDINGS, HbtHistograms, read_histograms
from qml_imaging.config import GridSettings
from qml_imaging.physics.g2_fit import DARK_THRESHOLD, DelayOffsetWarning, fit_g2
from qml_imaging.pipelines.g2.lm import fit_g2_grid
from qml_imaging.physics.hbt import (baseline_from_singles, baseline_from_tails, correct_background, signal_share,
                                     tail_excess)
from qml_imaging.physics.microscopy import g2_image
from qml_imaging.pipelines.g2.config import G2MeasuredConfig, G2RegressionConfig
from qml_imaging.pipelines.g2.simulation import write_emitter_series
from qml_imaging.reporting import figures
from qml_imaging.runs import RunDir
from qml_imaging.training import Trainer, seed_everything, supervised
from qml_imaging.training.metrics import absolute_errors, mape_percent

BASELINES = ("auto", "singles", "tails", "fit")
DARK_UNCERTAINTY = 1.0
"""Uncertainty written into maps for dark pixels (g2 = 1 by convention; no information)."""
TAIL_SLOPE_Z = 4.0
"""Significance (Poisson standard errors) above which the tails' fall-off warns (see :func:`baselines_of`)."""
TAIL_SLOPE_TOLERANCE = 0.002
"""Relative excess of the inner half of the tails over the outer half that a tails baseline tolerates."""


def load_cnn(run: str):
    """The trained CNN of a finished ``g2_regression`` or ``g2_measured`` run (the ``by_emitter`` one of the
    latter), in eval mode, through :func:`qml_imaging.pipelines.artifacts.load_model`. ``ValueError`` naming
    the run for another kind of run or an unfinished one."""
    from qml_imaging.pipelines.artifacts import load_model

    kind = RunDir.open(run).config.experiment
    if kind not in ("g2_regression", "g2_measured"):
        raise ValueError(f"{run} is a {kind!r} run; --cnn needs a g2_regression or g2_measured run")
    return load_model(run).model


def baselines_of(data: HbtHistograms, mode: str = "auto", zero_delay_ns: float = 0.0) -> tuple[torch.Tensor | None, str]:
    """``(baseline (B,) or None, the mode used)``: singles (``N1 N2 w / T``), tails, or ``None`` (fitted).
    A tails baseline warns (:class:`SlopingTailsWarning`) when the tails are not flat."""
    if mode not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, got {mode!r}")
    if mode == "auto":
        mode = "singles" if data.has_singles else "tails"
    if mode == "singles":
        if not data.has_singles:
            raise ValueError(f"{data.source}: no singles counts and acquisition time in the file; use baseline tails or fit")
        return data.baseline(), mode
    if mode == "tails":
        counts = torch.from_numpy(data.counts)
        _warn_sloping_tails(data, *tail_excess(counts, data.axis, zero_delay_ns=zero_delay_ns))
        return baseline_from_tails(counts, data.axis, zero_delay_ns=zero_delay_ns)[0], mode
    return None, mode


class SlopingTailsWarning(UserWarning):
    """Bunching reaches the tails of the delay window, so a tails baseline is biased high (and g2(0) low)."""


def _warn_sloping_tails(data: HbtHistograms, excess: torch.Tensor, z: torch.Tensor) -> None:
    """One :class:`SlopingTailsWarning` naming the histograms whose tails fall off significantly
    (``z > TAIL_SLOPE_Z``) by more than ``TAIL_SLOPE_TOLERANCE`` (see :func:`~qml_imaging.physics.hbt.tail_excess`)."""
    sloping = (z > TAIL_SLOPE_Z) & (excess > TAIL_SLOPE_TOLERANCE)
    if not sloping.any():
        return
    first = int(torch.nonzero(sloping)[0])
    warnings.warn(f"{data.source}: the tails of {int(sloping.sum())} of {len(excess)} histograms are not flat (first: "
                  f"histogram {first}, the half of the tails nearer the dip is {100 * float(excess[first]):.1f} % higher, "
                  f"z = {float(z[first]):.1f}): bunching has not decayed there, so the tails baseline is biased high and "
                  f"g2(0) low; use the singles counts (--baseline singles) or record a wider delay window",
                  SlopingTailsWarning, stacklevel=3)


def fit_histograms(data: HbtHistograms, *, zero_delay: float | str = "fit", baseline: str = "auto",
                   rho: float | None = None, model=None, grid: GridSettings = GridSettings()) -> list[dict]:
    """One row per histogram: ``g2``, ``sigma`` (L-M), ``zero_delay_ns`` and its ``zero_delay_sigma``,
    ``baseline`` (counts per bin) and ``baseline_mode``, ``events``, ``g2_cnn`` (when ``model`` is given:
    its input length must equal the axis' bins), and with ``rho`` the background-corrected ``g2``."""
    zero = zero_delay if zero_delay == "fit" else float(zero_delay)
    if zero == "fit" and data.zero_delay_ns is not None:
        zero = data.zero_delay_ns
    known, mode = baselines_of(data, baseline, 0.0 if zero == "fit" else zero)
    counts = torch.from_numpy(data.counts)
    fit = fit_g2_grid(grid, counts, data.axis, baseline=known, zero_delay_ns=zero)
    g2, sigma = fit.g2_zero, fit.uncertainty
    if rho is not None:
        g2, sigma = correct_background(g2, rho, sigma)
    cnn = None
    if model is not None:
        if model.bins != data.axis.bins:
            raise ValueError(f"the CNN reads {model.bins}-bin histograms; {data.source} has {data.axis.bins} bins")
        cnn = model.predict(counts).double()
    rows = []
    for i in range(len(data)):
        rows.append({"source": data.source, "row": i, "g2": float(g2[i]), "sigma": float(sigma[i]),
                     "zero_delay_ns": float(fit.zero_delay_ns[i]), "zero_delay_sigma": float(fit.zero_delay_uncertainty[i]),
                     "baseline": float(fit.baseline[i]), "baseline_mode": mode, "events": float(counts[i].sum()),
                     "converged": bool(fit.converged[i]), **({"g2_cnn": float(cnn[i])} if cnn is not None else {})})
    return rows


def scan_maps(data: HbtHistograms, shape: tuple[int, int], *, model=None, background_rate: float | None = None,
              grid: GridSettings = GridSettings()) -> dict[str, np.ndarray]:
    """Maps ``(H, W)`` of a scan: ``g2_lm``, ``sigma_lm``, ``g2_cnn`` (with ``model``), ``counts`` (N1 + N2, or the
    coincidences without singles), ``G2_lm`` / ``G2_cnn`` (``N^2 (1 - g2)``), ``dark`` (bool), and ``zero_delay_ns``
    (a 0-d array). All finite; dark pixels at g2 = 1. ``background_rate`` (counts/s per channel) corrects every
    lit pixel with ``rho = (R - B) / R``."""
    counts = torch.from_numpy(data.counts)
    events = counts.sum(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DelayOffsetWarning)
        total = counts.sum(0, keepdim=True)
        if data.zero_delay_ns is not None:
            zero = data.zero_delay_ns
        elif total.sum() >= DARK_THRESHOLD:
            zero = float(fit_g2(total, data.axis, baseline=None if not data.has_singles else _summed_baseline(data),
                                zero_delay_ns="fit").zero_delay_ns[0])
        else:
            zero = 0.0
    known, _ = baselines_of(data, "auto", zero)
    dark = events < DARK_THRESHOLD
    if known is not None:
        dark |= known <= 0
        known = torch.where(dark, torch.zeros_like(known), known)
    fit = fit_g2_grid(grid, torch.where(dark[:, None], torch.zeros_like(counts), counts), data.axis, baseline=known,
                      zero_delay_ns=zero)
    g2, sigma = fit.g2_zero, fit.uncertainty
    if background_rate is not None and data.has_singles:
        g2, sigma = correct_background(g2, signal_share(torch.from_numpy(data.rates()), background_rate), sigma)
    photons = torch.from_numpy(data.singles.sum(1)) if data.has_singles else events
    estimates = {"lm": g2}
    if model is not None:
        if model.bins != data.axis.bins:
            raise ValueError(f"the CNN reads {model.bins}-bin histograms; the scan has {data.axis.bins} bins")
        estimates["cnn"] = model.predict(counts).double()
    maps: dict[str, np.ndarray] = {}
    for name, estimate in estimates.items():
        estimate = torch.where(dark | ~torch.isfinite(estimate), torch.ones_like(estimate), estimate)
        maps[f"g2_{name}"] = estimate.reshape(shape).numpy()
        maps[f"G2_{name}"] = g2_image(photons, estimate).reshape(shape).numpy()
    maps["sigma_lm"] = torch.where(dark | ~torch.isfinite(sigma), torch.full_like(sigma, DARK_UNCERTAINTY),
                                   sigma).reshape(shape).numpy()
    maps["counts"] = photons.reshape(shape).numpy()
    maps["dark"] = dark.reshape(shape).numpy()
    maps["zero_delay_ns"] = np.array(zero)
    return maps


def _summed_baseline(data: HbtHistograms) -> torch.Tensor:
    return baseline_from_singles(data.singles[:, 0].sum(), data.singles[:, 1].sum(), data.axis.width_ns,
                                 data.seconds.sum()).reshape(1)


# --- the protocol ---------------------------------------------------------------------------------------
def read_series(folder: str | Path) -> list[HbtHistograms]:
    """Every histogram file in ``folder`` (sorted by name): one emitter's series of short histograms each, on one axis."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder of per-emitter series: {folder}")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in ENDINGS)
    if len(paths) < 2:
        raise ValueError(f"{folder} holds {len(paths)} series files; the protocol needs at least 2 emitters")
    series = [read_histograms(p) for p in paths]
    for s in series[1:]:
        if s.axis != series[0].axis:
            raise ValueError(f"{s.source}: its delay axis differs from {series[0].source}'s; rebin them to one axis")
    return series


def emitter_labels(series: list[HbtHistograms], grid: GridSettings = GridSettings()) -> tuple[torch.Tensor, float]:
    """``(labels (E,), zero delay ns)``: the set-up's zero delay fitted once on the sum of every series (a cable
    delay, calibrated rather than learnt), then the L-M fit of each emitter's summed series at that delay (the
    paper's labels; baseline from the summed singles, else the tails)."""
    has = all(s.has_singles for s in series)
    summed = HbtHistograms(np.stack([s.counts.sum(0) for s in series]), series[0].axis,
                           np.stack([s.singles.sum(0) for s in series]) if has else None,
                           np.array([s.seconds.sum() for s in series]) if has else None)
    everything = HbtHistograms(summed.counts.sum(0), summed.axis, summed.singles.sum(0) if has else None,
                               summed.seconds.sum() if has else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DelayOffsetWarning)
        zero = series[0].zero_delay_ns
        if zero is None:
            known, _ = baselines_of(everything, "auto")
            zero = float(fit_g2(torch.from_numpy(everything.counts), everything.axis, baseline=known,
                                zero_delay_ns="fit").zero_delay_ns[0])
    known, _ = baselines_of(summed, "auto", zero)
    fit = fit_g2_grid(grid, torch.from_numpy(summed.counts), summed.axis, baseline=known, zero_delay_ns=zero)
    return fit.g2_zero, zero


def draw_sums(series: list[HbtHistograms], emitters: list[int], count: int, max_sum: int, generator: np.random.Generator
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[tuple[int, tuple[int, ...]]]]:
    """``count`` sums of ``k`` (uniform 1..max_sum) distinct short histograms of one emitter (uniform among ``emitters``):
    ``(counts (count, K), singles (count, 2), seconds (count,), emitter index (count,), [(emitter, rows)])``."""
    counts, singles, seconds, owners, members = [], [], [], [], []
    for _ in range(count):
        emitter = int(generator.choice(emitters))
        data = series[emitter]
        k = int(generator.integers(1, min(max_sum, len(data)) + 1))
        rows = tuple(sorted(generator.choice(len(data), k, replace=False).tolist()))
        counts.append(data.counts[list(rows)].sum(0))
        singles.append(data.singles[list(rows)].sum(0) if data.has_singles else np.zeros(2))
        seconds.append(data.seconds[list(rows)].sum() if data.has_singles else 1.0)
        owners.append(emitter)
        members.append((emitter, rows))
    return np.stack(counts), np.stack(singles), np.array(seconds), np.array(owners), members


def split_sums(series, split: str, protocol, generator: np.random.Generator) -> dict:
    """Training and test sums of one split (see the module docstring) and the emitters on each side."""
    n = len(series)
    if split == "by_emitter":
        order = generator.permutation(n).tolist()
        held = max(1, round(protocol.test_fraction * n))
        test_emitters, train_emitters = sorted(order[:held]), sorted(order[held:])
        train = draw_sums(series, train_emitters, protocol.train_sums, protocol.max_sum, generator)
        test = draw_sums(series, test_emitters, protocol.test_sums, protocol.max_sum, generator)
    else:
        everything = draw_sums(series, list(range(n)), protocol.train_sums + protocol.test_sums, protocol.max_sum, generator)
        order = generator.permutation(protocol.train_sums + protocol.test_sums)
        train_rows, test_rows = order[:protocol.train_sums], order[protocol.train_sums:]
        train = tuple(x[train_rows] for x in everything[:4]) + ([everything[4][i] for i in train_rows],)
        test = tuple(x[test_rows] for x in everything[:4]) + ([everything[4][i] for i in test_rows],)
        train_emitters, test_emitters = sorted(set(train[3].tolist())), sorted(set(test[3].tolist()))
    return {"train": train, "test": test, "train_emitters": train_emitters, "test_emitters": test_emitters}


def shared_short_histograms(train_members, test_members) -> float:
    """Share of test sums that contain a short histogram also in some training sum."""
    used = {(e, r) for e, rows in train_members for r in rows}
    return float(np.mean([any((e, r) in used for r in rows) for e, rows in test_members]))


def score(estimate: torch.Tensor, truth: torch.Tensor, floor: float) -> dict:
    """``mape`` (percent, truths above ``floor``; ``None`` without any), ``mae``, ``rmse``."""
    above = truth > floor
    return {"mape": mape_percent(estimate[above], truth[above], floor=floor) if above.any() else None,
            **absolute_errors(estimate, truth)}


def run(config: G2MeasuredConfig, run_dir: RunDir) -> dict:
    from qml_imaging.models.g2_cnn import G2CNN
    from qml_imaging.pipelines.g2.regression import g2_loss

    folder = Path(config.folder) if config.folder else run_dir.path / "series"
    if config.folder is None and not any(folder.glob("emitter_*.npz")):
        write_emitter_series(config.simulate, folder, config.seed)
    series = read_series(folder)
    labels, zeros = emitter_labels(series, config.grid)
    if config.loss == "mape" and (labels <= config.mape_floor).any():
        raise ValueError(f"{int((labels <= config.mape_floor).sum())} emitters have labels at or below mape_floor "
                         f"{config.mape_floor}; the MAPE loss divides by them: use loss=floored_mape or loss=mae")
    truth = [None if s.g2_true is None else float(s.g2_true[0]) for s in series]
    axis = series[0].axis
    seed_everything(config.seed)
    summary: dict = {"scores": {}, "scores_vs_truth": {}, "emitters": {}, "shared_short_histograms": {},
                     "labels": labels.tolist(), "zero_delay_ns": zeros}
    for split in config.protocol.splits:
        generator = np.random.default_rng([config.seed, config.protocol.splits.index(split)])
        sums = split_sums(series, split, config.protocol, generator)
        train_counts, _, _, train_owner, _ = sums["train"]
        lit = train_counts.sum(1) >= DARK_THRESHOLD
        inputs = torch.from_numpy(train_counts[lit]).float()
        targets = labels[torch.from_numpy(train_owner[lit])].float()
        test_counts, test_singles, test_seconds, test_owner, _ = sums["test"]
        keep = test_counts.sum(1) >= DARK_THRESHOLD
        test_counts, test_singles, test_seconds, test_owner = (x[keep] for x in (test_counts, test_singles, test_seconds,
                                                                                 test_owner))
        test_labels = labels[torch.from_numpy(test_owner)]

        def evaluate(model: torch.nn.Module, counts=test_counts, wanted=test_labels) -> dict[str, float]:
            estimate = model(torch.from_numpy(counts).float()).double()
            return {"mae": absolute_errors(estimate, wanted)["mae"]}

        trainer = Trainer(G2CNN.from_spec(config.cnn, axis.bins), config.train,
                          objective=supervised(g2_loss(config.loss, config.mape_floor)), evaluate=evaluate,
                          checkpoint_dir=run_dir.checkpoint_dir(f"cnn_{split}"), metrics=run_dir.metrics,
                          seed=config.seed, fit_name=f"cnn_{split}")
        trainer.fit(TensorDataset(inputs, targets))
        model = trainer.eval_model.cpu()
        cnn = model.predict(torch.from_numpy(test_counts)).double()
        zero = zeros
        data = HbtHistograms(test_counts, axis, test_singles if series[0].has_singles else None,
                             test_seconds if series[0].has_singles else None)
        known, _ = baselines_of(data, "auto", zero)
        lm = fit_g2_grid(config.grid, torch.from_numpy(test_counts), axis, baseline=known, zero_delay_ns=zero).g2_zero
        summary["scores"][split] = {"cnn": score(cnn, test_labels, config.mape_floor),
                                    "lm": score(lm, test_labels, config.mape_floor)}
        if all(t is not None for t in truth):
            true = torch.tensor(truth, dtype=torch.float64)[torch.from_numpy(test_owner)]
            summary["scores_vs_truth"][split] = {"cnn": score(cnn, true, config.mape_floor),
                                                 "lm": score(lm, true, config.mape_floor)}
        summary["emitters"][split] = {"train": len(sums["train_emitters"]), "test": len(sums["test_emitters"]),
                                      "overlap": len(set(sums["train_emitters"]) & set(sums["test_emitters"]))}
        summary["shared_short_histograms"][split] = shared_short_histograms(sums["train"][4], sums["test"][4])
        figures.scatter({"CNN": (test_labels.tolist(), cnn.tolist()), "L-M": (test_labels.tolist(), lm.tolist())},
                        run_dir.figure_path(f"predictions_{split}"), xlabel="label (L-M of the emitter's sum)",
                        ylabel="estimated g2(0)")
    _table(run_dir, summary)
    run_dir.write_report(summary, {"bins": axis.bins, "folder": str(folder), "emitters": len(series)})
    return summary


def _table(run_dir: RunDir, summary: dict) -> None:
    def cell(value) -> str:
        return "n/a" if value is None else f"{value:.3g}"

    lines = ["| split | estimator | MAPE % (labels) | MAE | RMSE | MAPE % (truth) | RMSE (truth) | test sums sharing a short histogram with training |",
             "|---|---|---|---|---|---|---|---|"]
    for split, estimators in summary["scores"].items():
        for name, values in estimators.items():
            truth = summary["scores_vs_truth"].get(split, {}).get(name, {})
            lines.append(f"| {split} | {name} | {cell(values['mape'])} | {cell(values['mae'])} | {cell(values['rmse'])} | "
                         f"{cell(truth.get('mape'))} | {cell(truth.get('rmse'))} | "
                         f"{100 * summary['shared_short_histograms'][split]:.0f} % |")
    (run_dir.path / "table.md").write_text("\n".join(lines) + "\n")
