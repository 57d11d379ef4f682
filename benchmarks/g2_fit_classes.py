"""g2(0) fits by emitter class: bias, scatter against the reported sigma and the Cramér-Rao bound, 2-sigma coverage,
refused share (issue 30's table in docs/results.md).

Each class is one emitter on one axis; ``--histograms`` (default 50) Poisson histograms whose bins integrate the
jitter-convolved three-level curve (:func:`qml_imaging.physics.g2_model.binned_curve`, 15 sub-bins: finer than
the fit's own rule), fitted by :func:`qml_imaging.physics.g2_fit.fit_g2` with the zero delay fitted, the jitter
fitted where the class has one, and the baseline given (the singles counts) or fitted. The Cramér-Rao bound is
``sqrt(g^T F^+ g)`` of the Fisher information at the true parameters over the same fitted parameters.

    OMP_NUM_THREADS=1 python benchmarks/g2_fit_classes.py [--histograms 50] [--only NAME]
"""

from __future__ import annotations

import argparse
import math
import time
import warnings

import numpy as np
import torch

from qml_imaging.physics import g2_search as search
from qml_imaging.physics.g2_fit import DelayOffsetWarning, fit_g2
from qml_imaging.physics.g2_model import binned_curve
from qml_imaging.physics.hbt import DelayAxis

# name, half window ns, bin ns, baseline counts per bin, a1, t1, a2, t2, jitter ns, baseline mode
CLASSES = [
    ("QD t1 0.2 ns, 10 ps bins, +-5 ns", 5.0, 0.010, 20.0, 0.95, 0.2, 0.0, 1.0, 0.0, "singles"),
    ("QD t1 0.2 ns, 10 ps bins, +-5 ns", 5.0, 0.010, 20.0, 0.95, 0.2, 0.0, 1.0, 0.0, "fit"),
    ("QD t1 2 ns, 50 ps bins, +-20 ns", 20.0, 0.050, 20.0, 0.95, 2.0, 0.0, 1.0, 0.0, "singles"),
    ("QD t1 0.5 ns, 20 ps bins, 20 ps jitter, +-10 ns", 10.0, 0.020, 20.0, 0.95, 0.5, 0.0, 1.0, 0.02, "singles"),
    ("QD t1 1 ns, 50 ps bins, 60 ps jitter, +-10 ns", 10.0, 0.050, 20.0, 0.95, 1.0, 0.0, 1.0, 0.06, "singles"),
    ("QD t1 0.2 ns, 10 ps bins, 40 ps jitter, +-5 ns", 5.0, 0.010, 40.0, 0.95, 0.2, 0.0, 1.0, 0.04, "singles"),
    ("hBN t1 1 ns, t2 10 ns, +-100 ns", 100.0, 0.1, 30.0, 1.7, 1.0, 0.8, 10.0, 0.0, "singles"),
    ("hBN t1 1 ns, t2 10 ns, +-100 ns", 100.0, 0.1, 30.0, 1.7, 1.0, 0.8, 10.0, 0.0, "fit"),
    ("hBN t1 5 ns, t2 50 ns, +-250 ns", 250.0, 0.5, 30.0, 1.3, 5.0, 0.4, 50.0, 0.0, "singles"),
    ("NV t1 10 ns, t2 25 ns, +-250 ns", 250.0, 1.0, 100.0, 1.15, 10.0, 0.3, 25.0, 0.0, "singles"),
    ("NV t1 20 ns, t2 300 ns, +-250 ns", 250.0, 2.0, 150.0, 0.95, 20.0, 0.1, 300.0, 0.0, "singles"),
    ("NV t1 25 ns, t2 5000 ns, +-2500 ns", 2500.0, 10.0, 100.0, 1.35, 25.0, 0.5, 5000.0, 0.0, "singles"),
]


def axis_of(half: float, width: float) -> DelayAxis:
    bins = int(round(2 * half / width)) | 1
    return DelayAxis(bins=bins, span_ns=bins * width, first_ns=-(bins // 2) * width)


def cramer_rao(axis: DelayAxis, level: float, truth: dict, fitted: list[str]) -> float:
    """Cramér-Rao bound on g2(0) over the parameters ``fitted``, at the true ``truth``."""
    setup = search.Setup(np.zeros(axis.bins), axis.centres().numpy(), axis.width_ns, level, 0.0, truth["jitter"])
    ranges = search.Ranges(t1=(1e-6, 1e6), jitter=(1e-6, 1e6), zero=(-1e6, 1e6), level=level, depth=0.5, t1_start=1.0,
                           zero_starts=(0.0,), reach=1.0, subpoints=15, given_jitter=truth["jitter"])
    fisher = search.fisher_information(setup, ranges, truth, fitted)
    gradient = search.gradient_of(lambda t: 1.0 - t["a1"] + t["a2"], truth, fitted, axis.width_ns)
    return math.sqrt(search.projected_variance(fisher, gradient))


def run_class(spec: tuple, histograms: int, seed: int) -> dict:
    name, half, width, level, a1, t1, a2, t2, jitter, mode = spec
    axis = axis_of(half, width)
    mean = level * binned_curve(axis.centres().numpy(), width, 15, 0.0, a1, t1, a2, t2, jitter)
    counts = torch.from_numpy(np.random.default_rng(seed).poisson(mean, size=(histograms, axis.bins)).astype(float))
    known = torch.full((histograms,), level, dtype=torch.float64) if mode == "singles" else None
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DelayOffsetWarning)
        fit = fit_g2(counts, axis, baseline=known, jitter_ns="fit" if jitter else 0.0)
    seconds = (time.perf_counter() - start) / histograms
    truth = {"A": level, "a1": a1, "t1": t1, "a2": a2, "t2": t2, "tau0": 0.0, "jitter": jitter}
    fitted = [n for n in ("A",) if mode == "fit"] + ["a1", "t1"] + (["a2", "t2"] if a2 else []) + ["tau0"] + \
        (["jitter"] if jitter else [])
    kept = fit.measured
    g2, sigma = fit.g2_zero[kept], fit.uncertainty[kept]
    true = 1 - a1 + a2
    reasons = sorted({": ".join(s.split(": ")[:2])[:70] for s in fit.status if s})
    return {"name": name, "baseline": mode, "bins": axis.bins, "true": true, "kept": int(kept.sum()),
            "bias": float(np.mean(g2 - true)) if kept.any() else math.nan,
            "scatter": float(np.std(g2, ddof=1)) if kept.sum() > 1 else math.nan,
            "sigma": float(np.median(sigma)) if kept.any() else math.nan,
            "within": float(np.mean(np.abs(g2 - true) < 2 * sigma)) if kept.any() else math.nan,
            "refused": 1 - float(kept.mean()), "reasons": reasons, "crb": cramer_rao(axis, level, truth, fitted),
            "deviance": float(np.median(fit.reduced_deviance[kept])) if kept.any() else math.nan,
            "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--histograms", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default=None, help="run the classes whose name contains this text")
    arguments = parser.parse_args()
    print("| class | baseline | bins | true g2(0) | bias | scatter | median sigma | Cramér-Rao | within 2 sigma | "
          "refused | median reduced deviance | s per fit |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for index, spec in enumerate(CLASSES):
        if arguments.only and arguments.only not in spec[0]:
            continue
        r = run_class(spec, arguments.histograms, arguments.seed + index)
        refused = f"{100 * r['refused']:.0f} %" + (f" ({', '.join(r['reasons'])})" if r["reasons"] else "")
        print(f"| {r['name']} | {r['baseline']} | {r['bins']} | {r['true']:.2f} | {r['bias']:+.4f} | {r['scatter']:.4f} | "
              f"{r['sigma']:.4f} | {r['crb']:.4f} | {100 * r['within']:.0f} % | {refused} | {r['deviance']:.2f} | "
              f"{r['seconds']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
