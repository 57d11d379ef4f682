"""Statistical checks of issue 19 that are too slow for the test suite; numbers go to docs/results.md.

    python benchmarks/g2_measured_checks.py [--seeds 50] [--histograms 200]

1. Dip offset by 0, 5, 10 ns (true g2(0) = 0.15, 600 s at 1e5 counts/s, known baseline, zero delay
   fitted): per offset over ``--seeds`` histograms, the share with |g2 - 0.15| < 2 sigma, the mean
   g2(0), and the share with the offset recovered within 0.5 ns; beside them the Cramer-Rao bound of
   tau0 and g2(0) for these histograms (Poisson Fisher information of the five curve parameters,
   baseline known), the least spread any unbiased estimator can reach.
2. Fitted-baseline mode at 300 events per bin (g2(0) in [0.2, 0.8], t1 10-40 ns, t2 100-300 ns,
   a2 in [0, 0.3]) over ``--histograms`` histograms on the 500 ns axis (refused or not; the bias of
   all fits and of those the refusal would keep) and on a 5000 ns axis (1075 bins).
"""

import argparse
import math
import warnings

import numpy as np
import torch

from qml_imaging.physics import g2_fit
from qml_imaging.physics.bounds import poisson_fisher
from qml_imaging.physics.hbt import DelayAxis, EmitterParameters, expected_histogram, three_level_g2


def offsets(seeds: int) -> None:
    axis = DelayAxis()
    flat = EmitterParameters(*(torch.tensor([v], dtype=torch.float64) for v in (0.0, 20.0, 0.0, 300.0, 1e5)))
    baseline = expected_histogram(flat, 600.0, axis)[:, 0]
    bound_zero, bound_g2 = cramer_rao(baseline.item(), axis)
    print(f"Cramer-Rao bound: tau0 {bound_zero:.3f} ns, g2(0) {bound_g2:.4f} (1 sigma); P(|tau0 error| < 0.5 ns) "
          f"<= {math.erf(0.5 / bound_zero / math.sqrt(2)):.2f} for an unbiased Gaussian estimator at the bound")
    for offset in (0.0, 5.0, 10.0):
        curve = three_level_g2(axis.centres() - offset, *(torch.tensor([v], dtype=torch.float64) for v in (0.95, 20.0, 0.1, 300.0)))
        histograms = torch.poisson((baseline[:, None] * curve).expand(seeds, -1), generator=torch.Generator().manual_seed(0))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = g2_fit.fit_g2(histograms, axis, baseline=baseline.expand(seeds), sampling="centre")
        within = (np.abs(fit.g2_zero - 0.15) < 2 * fit.uncertainty).mean()
        recovered = (np.abs(fit.zero_delay_ns - offset) < 0.5).mean()
        print(f"offset {offset:4.1f} ns: g2(0) {fit.g2_zero.mean():.3f} (scatter {fit.g2_zero.std(ddof=1):.3f}, median "
              f"sigma {np.median(fit.uncertainty):.3f}); within 2 sigma {100 * within:.0f} %; tau0 "
              f"{fit.zero_delay_ns.mean():.2f} (scatter {fit.zero_delay_ns.std(ddof=1):.2f}, median sigma "
              f"{np.median(fit.zero_delay_uncertainty):.2f}) ns, "
              f"within 0.5 ns {100 * recovered:.0f} %")


def cramer_rao(baseline: float, axis: DelayAxis) -> tuple[float, float]:
    """Cramer-Rao 1-sigma of ``(tau0, g2(0))`` for the offsets' emitter: ``F = sum_k d mu_k d mu_k^T / mu_k``
    over ``(a1, t1, a2, t2, tau0)`` with the baseline known (:func:`poisson_fisher`)."""
    centres = axis.centres()

    def mean(p: torch.Tensor) -> torch.Tensor:
        a1, t1, a2, t2, tau0 = p
        distance = (centres - tau0).abs()
        return baseline * (1 - a1 * torch.exp(-distance / t1) + a2 * torch.exp(-distance / t2))

    truth = torch.tensor([0.95, 20.0, 0.1, 300.0, 0.0], dtype=torch.float64)
    jacobian = torch.autograd.functional.jacobian(mean, truth)
    covariance = torch.linalg.inv(poisson_fisher(mean(truth)[None], jacobian[None], 1.0)[0])
    gradient = torch.tensor([-1.0, 0.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    return covariance[4, 4].sqrt().item(), (gradient @ covariance @ gradient).sqrt().item()


def fitted_baseline(n: int) -> None:
    generator = torch.Generator().manual_seed(1)

    def uniform(low, high):
        return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)

    g2, a2 = uniform(0.2, 0.8), uniform(0.0, 0.3)
    pixels = EmitterParameters(1 + a2 - g2, uniform(10, 40), a2, uniform(100, 300), torch.full((n,), 1e5, dtype=torch.float64))
    for axis in (DelayAxis(), DelayAxis(bins=1075, span_ns=5000.0)):
        flat = EmitterParameters(torch.zeros(n, dtype=torch.float64), pixels.t1, torch.zeros(n, dtype=torch.float64), pixels.t2, pixels.rate)
        scale = 300.0 / expected_histogram(flat, 1.0, axis)[:, 0]
        histograms = torch.poisson(expected_histogram(pixels, 1.0, axis) * scale[:, None], generator=generator)
        fit = g2_fit.fit_g2(histograms, axis, zero_delay_ns=0.0, sampling="centre")
        error = fit.g2_zero - g2.numpy()
        kept = fit.measured
        reasons = sorted({status.split(":")[0] for status in fit.status if status})
        print(f"axis {axis.span_ns:.0f} ns / {axis.bins} bins: bias of all {n} fits {error.mean():+.4f} "
              f"(std error {error.std() / np.sqrt(n):.4f}); {int((~kept).sum())} refused ({', '.join(reasons)}); bias "
              f"of the kept {error[kept].mean() if kept.any() else float('nan'):+.4f} over {int(kept.sum())}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--histograms", type=int, default=200)
    arguments = parser.parse_args()
    torch.set_num_threads(2)
    offsets(arguments.seeds)
    fitted_baseline(arguments.histograms)
