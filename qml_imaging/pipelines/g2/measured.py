"""``g2_measured``: the paper's training protocol on per-emitter series of short histograms (paper 002).
Fits and scans of lab files live in :mod:`qml_imaging.pipelines.g2.lab` (no training code), used here.

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
from qml_imaging.pipelines.g2.config import G2MeasuredConfig
from qml_imaging.pipelines.g2.lab import baselines_of
from qml_imaging.pipelines.g2.lm import fit_g2_grid
from qml_imaging.pipelines.g2.simulation import write_emitter_series
from qml_imaging.reporting import figures
from qml_imaging.runs import RunDir, write_text_atomic
from qml_imaging.training import Trainer, seed_everything, supervised
from qml_imaging.training.artifacts import save_model_arguments
from qml_imaging.training.metrics import absolute_errors, mape_percent

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
            zero = float(fit_g2(everything.counts, everything.axis, baseline=known,
                                zero_delay_ns="fit").zero_delay_ns[0])
    known, _ = baselines_of(summed, "auto", zero)
    fit = fit_g2_grid(grid, summed.counts, summed.axis, baseline=known, zero_delay_ns=zero)
    return torch.from_numpy(fit.g2_zero), zero


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
    """Read (or simulate) per-emitter series, label emitters by L-M, train and score the CNN against L-M on by-emitter and by-histogram splits; return the summary."""
    folder = Path(config.folder) if config.folder else run_dir.path / "series"
    if config.folder is None and not any(folder.glob("emitter_*.npz")):
        write_emitter_series(config.simulate, folder, config.seed)
    series = read_series(folder)
    labels, zeros = emitter_labels(series, config.grid)
    if config.loss == "mape" and (labels <= config.mape_floor).any():
        raise ValueError(f"{int((labels <= config.mape_floor).sum())} emitters have labels at or below mape_floor "
                         f"{config.mape_floor}; the MAPE loss divides by them: use loss=floored_mape or loss=mae")
    seed_everything(config.seed)
    summary: dict = {"scores": {}, "scores_vs_truth": {}, "emitters": {}, "shared_short_histograms": {},
                     "labels": labels.tolist(), "zero_delay_ns": zeros}
    for split in config.protocol.splits:
        _score_split(config, run_dir, series, labels, zeros, split, summary)
    _table(run_dir, summary)
    run_dir.write_report(summary, {"bins": series[0].axis.bins, "folder": str(folder), "emitters": len(series)})
    return summary


def _score_split(config: G2MeasuredConfig, run_dir: RunDir, series: list[HbtHistograms], labels: torch.Tensor,
                 zeros: float, split: str, summary: dict) -> None:
    """Train the CNN of ``split`` on its training sums and score it beside L-M on its test sums (sums with fewer
    than ``DARK_THRESHOLD`` coincidences left out); writes the split's entries of ``summary`` and its figure."""
    generator = np.random.default_rng([config.seed, config.protocol.splits.index(split)])
    sums = split_sums(series, split, config.protocol, generator)
    train_counts, _, _, train_owner, _ = sums["train"]
    lit = train_counts.sum(1) >= DARK_THRESHOLD
    test_counts, test_singles, test_seconds, test_owner, _ = sums["test"]
    keep = test_counts.sum(1) >= DARK_THRESHOLD
    test_counts, test_singles, test_seconds, test_owner = (x[keep] for x in (test_counts, test_singles, test_seconds,
                                                                             test_owner))
    test_labels = labels[torch.from_numpy(test_owner)]
    model = _train_cnn(config, run_dir, split, series[0].axis.bins, torch.from_numpy(train_counts[lit]).float(),
                       labels[torch.from_numpy(train_owner[lit])].float(), test_counts, test_labels)
    cnn = model.predict(torch.from_numpy(test_counts)).double()
    has_singles = series[0].has_singles
    data = HbtHistograms(test_counts, series[0].axis, test_singles if has_singles else None,
                         test_seconds if has_singles else None)
    known, _ = baselines_of(data, "auto", zeros)
    lm = torch.from_numpy(fit_g2_grid(config.grid, test_counts, series[0].axis, baseline=known,
                                      zero_delay_ns=zeros).g2_zero)
    summary["scores"][split] = {"cnn": score(cnn, test_labels, config.mape_floor),
                                "lm": score(lm, test_labels, config.mape_floor)}
    truth = [None if s.g2_true is None else float(s.g2_true[0]) for s in series]
    if all(t is not None for t in truth):
        true = torch.tensor(truth, dtype=torch.float64)[torch.from_numpy(test_owner)]
        summary["scores_vs_truth"][split] = {"cnn": score(cnn, true, config.mape_floor),
                                             "lm": score(lm, true, config.mape_floor)}
    summary["emitters"][split] = {"train": len(sums["train_emitters"]), "test": len(sums["test_emitters"]),
                                  "overlap": len(set(sums["train_emitters"]) & set(sums["test_emitters"]))}
    summary["shared_short_histograms"][split] = shared_short_histograms(sums["train"][4], sums["test"][4])
    points = figures.scatter({"CNN": (test_labels.tolist(), cnn.tolist()), "L-M": (test_labels.tolist(), lm.tolist())},
                             xlabel="label (L-M of the emitter's sum)", ylabel="estimated g2(0)")
    figures.save_figure(points, run_dir.figure_path(f"predictions_{split}"))


def _train_cnn(config: G2MeasuredConfig, run_dir: RunDir, split: str, bins: int, inputs: torch.Tensor,
               targets: torch.Tensor, test_counts: np.ndarray, test_labels: torch.Tensor) -> torch.nn.Module:
    """The CNN of ``split`` trained (resuming from its checkpoints) on ``inputs`` ``(N, bins)`` and ``targets``
    ``(N,)``, evaluated by its MAE on the test sums; returned on the CPU in eval weights (EMA where used)."""
    from qml_imaging.models.g2_cnn import G2CNN
    from qml_imaging.pipelines.g2.regression import g2_loss

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        estimate = model(torch.from_numpy(test_counts).float()).double()
        return {"mae": absolute_errors(estimate, test_labels)["mae"]}

    save_model_arguments(run_dir.checkpoint_dir(f"cnn_{split}"), {"bins": bins})
    trainer = Trainer(G2CNN.from_spec(config.cnn, bins), config.train,
                      objective=supervised(g2_loss(config.loss, config.mape_floor)), evaluate=evaluate,
                      checkpoint_dir=run_dir.checkpoint_dir(f"cnn_{split}"), metrics=run_dir.metrics,
                      seed=config.seed, fit_name=f"cnn_{split}")
    trainer.fit(TensorDataset(inputs, targets))
    return trainer.eval_model.cpu()


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
    write_text_atomic(run_dir.path / "table.md", "\n".join(lines) + "\n")
