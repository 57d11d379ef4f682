"""Simulated training and test histograms for g2(0) regression (see :mod:`qml_imaging.physics.hbt`)."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from qml_imaging.physics.g2_fit import DARK_THRESHOLD
from qml_imaging.physics.hbt import DelayAxis, EmitterParameters, simulate_histograms, uncorrelated_baseline
from qml_imaging.pipelines.g2.config import HistogramSimulation, Range, SeriesSimulation
from qml_imaging.runs import make_folder

DARK_RATE = Range(low=1e3, high=1e4)


def sample_pixels(simulation: HistogramSimulation, n: int, generator: torch.Generator, *, dark_fraction: float) -> EmitterParameters:
    """``n`` effective three-level curves: g2(0) uniform, ``a1 = 1 + a2 - g2(0)``; a ``dark_fraction`` share is dim."""
    def uniform(span: Range) -> torch.Tensor:
        return span.low + (span.high - span.low) * torch.rand(n, generator=generator, dtype=torch.float64)

    def log_uniform(span: Range) -> torch.Tensor:
        return torch.exp(math.log(span.low) + math.log(span.high / span.low) * torch.rand(n, generator=generator, dtype=torch.float64))

    g2_zero, bunching = uniform(simulation.g2_zero), uniform(simulation.bunching)
    dark = torch.rand(n, generator=generator) < dark_fraction
    rate = torch.where(dark, log_uniform(DARK_RATE), log_uniform(simulation.rate))
    return EmitterParameters(a1=1.0 + bunching - g2_zero, t1=uniform(simulation.lifetime_ns), a2=bunching,
                             t2=uniform(simulation.shelving_ns), rate=rate)


class LabelledHistograms(NamedTuple):
    """Simulated histograms ``(n, bins)``, their labels ``(n,)`` (g2(0); 1 for fewer than 4 events),
    ``baselines`` ``(n,)`` (uncorrelated coincidences per bin from the singles counts, the L-M fit's
    normalisation) and the ``pixels`` they were drawn from."""

    histograms: torch.Tensor
    labels: torch.Tensor
    baselines: torch.Tensor
    pixels: EmitterParameters


def labelled_histograms(simulation: HistogramSimulation, n: int, seconds: torch.Tensor | float, generator: torch.Generator,
                        *, dark_fraction: float) -> LabelledHistograms:
    """``n`` pixels drawn from ``simulation`` and their histograms after ``seconds``."""
    pixels = sample_pixels(simulation, n, generator, dark_fraction=dark_fraction)
    histograms = simulate_histograms(pixels, seconds, DelayAxis(), simulation.efficiency, generator)
    labels = torch.where(histograms.sum(1) < DARK_THRESHOLD, torch.ones(n, dtype=torch.float64), pixels.g2_zero)
    baselines = uncorrelated_baseline(pixels, seconds, DelayAxis(), simulation.efficiency)
    return LabelledHistograms(histograms, labels, baselines, pixels)


def training_set(simulation: HistogramSimulation, seed: int) -> LabelledHistograms:
    """Training histograms with acquisition times drawn from the integer seconds in ``simulation.seconds``."""
    generator = torch.Generator().manual_seed(seed)
    low, high = int(simulation.seconds.low), int(simulation.seconds.high)
    seconds = torch.randint(low, high + 1, (simulation.samples,), generator=generator).to(torch.float64)
    return labelled_histograms(simulation, simulation.samples, seconds, generator, dark_fraction=simulation.dark_fraction)


def held_out_set(simulation: HistogramSimulation, n: int, seconds: int, seed: int) -> LabelledHistograms:
    """Held-out histograms of emitters (no dark pixels) at one acquisition time, from their own seed."""
    generator = torch.Generator().manual_seed(seed)
    return labelled_histograms(simulation, n, float(seconds), generator, dark_fraction=0.0)


def write_emitter_series(simulation: SeriesSimulation, folder, seed: int) -> list:
    """Simulated per-emitter series of short histograms written as ``emitter_<i>.npz`` in ``folder``.

    Each emitter: g2(0) uniform in its range (0 allowed), ``a1 = 1 + a2 - g2(0)``, lifetimes and
    bunching uniform, rate log-uniform; ``histograms`` Poisson histograms of ``seconds`` each on the
    default axis (215 bins over 500 ns), the dip at ``zero_delay_ns`` (a cable delay). The singles
    written per channel are Poisson draws of ``sqrt(efficiency) * rate * seconds``, so that the
    file's normalisation ``N1 N2 w / T`` equals the simulator's uncorrelated level
    ``efficiency R^2 w T`` (:func:`~qml_imaging.physics.hbt.uncorrelated_baseline`) on average; the
    true g2(0) is stored as ``g2_true`` for reports only. Returns the written paths.
    """

    import numpy as np

    from qml_imaging.data.hbt_files import HbtHistograms, write_npz
    from qml_imaging.physics.hbt import three_level_g2

    folder = make_folder(folder)
    generator = torch.Generator().manual_seed(seed)
    n = simulation.emitters

    def uniform(span: Range) -> torch.Tensor:
        return span.low + (span.high - span.low) * torch.rand(n, generator=generator, dtype=torch.float64)

    g2_zero, bunching = uniform(simulation.g2_zero), uniform(simulation.bunching)
    lifetime, shelving = uniform(simulation.lifetime_ns), uniform(simulation.shelving_ns)
    rate = torch.exp(math.log(simulation.rate.low) + math.log(simulation.rate.high / simulation.rate.low)
                     * torch.rand(n, generator=generator, dtype=torch.float64))
    axis = DelayAxis()
    curves = three_level_g2(axis.centres() - simulation.zero_delay_ns, 1.0 + bunching - g2_zero, lifetime, bunching, shelving)
    level = simulation.efficiency * rate**2 * axis.width_ns * 1e-9 * simulation.seconds
    paths = []
    for i in range(n):
        mean = (level[i] * curves[i].clamp_min(0.0)).expand(simulation.histograms, -1)
        counts = torch.poisson(mean, generator=generator)
        singles = torch.poisson(torch.full((simulation.histograms, 2), math.sqrt(simulation.efficiency) * rate[i].item()
                                           * simulation.seconds, dtype=torch.float64), generator=generator)
        series = HbtHistograms(counts.numpy(), axis, singles.numpy(), np.full(simulation.histograms, simulation.seconds),
                               None, g2_true=np.full(simulation.histograms, g2_zero[i].item()))
        paths.append(write_npz(folder / f"emitter_{i:03d}.npz", series))
    return paths
