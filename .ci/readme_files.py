"""Write, into the current folder, the lab files the README's `qml-imaging g2` commands name (simulated emitters):

run1.ptu (T2 time tags, detectors on inputs 0 and 1), hist.csv and hist.phu (histograms with singles),
det_on_sync.ptu (T2, one detector wired to the SYNC input), qd.ptu (T3 time tags of a pulsed source),
scan_dir/scan.npz (an 8x8 confocal scan) and series_dir/ (per-emitter series of short histograms).

Run by `.ci/readme_commands.py` (the `setup` of the g2 block in `.ci/readme_blocks.yaml`); the writers are
the test suite's (`tests/data`), which write PicoQuant files independently of the package's readers.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.data.photon_sources import pulsed_photons, write_t3  # noqa: E402
from tests.data.ptu_writer import PHOTON, SYNC, write_ptu  # noqa: E402
from tests.data.test_hbt_files import antibunched_stream, write_phu, write_ptu_t2  # noqa: E402

SECONDS = 2.0


def write_time_tags(rng: np.random.Generator) -> None:
    """run1.ptu (inputs 0 and 1) and det_on_sync.ptu (detector A on SYNC, B on input 1): g2(0) about 0.2."""
    times, channels, _ = antibunched_stream(rng, 0.2, seconds=SECONDS)
    write_ptu_t2(Path("run1.ptu"), times, channels, SECONDS)
    kind = np.where(channels == 0, SYNC, PHOTON)
    write_ptu(Path("det_on_sync.ptu"), "HydraHarp v2 T2", times, kind, np.where(channels == 0, 0, 1),
              resolution_s=1e-12, seconds=SECONDS)


def write_histograms(rng: np.random.Generator) -> None:
    """hist.csv and hist.phu: 1 ns bins over +-100 ns of g2(tau) = 1 - 0.8 exp(-|tau| / 20 ns), with singles."""
    delays = np.arange(-100, 100) + 0.5
    singles, seconds = 2e5 * SECONDS, SECONDS
    level = singles * singles * 1e-9 / seconds
    counts = rng.poisson(level * (1 - 0.8 * np.exp(-np.abs(delays) / 20)))
    Path("hist.csv").write_text(f"# singles_1: {singles:.0f}\n# singles_2: {singles:.0f}\n# seconds: {seconds}\n"
                                "delay_ns,counts\n" + "".join(f"{d},{c}\n" for d, c in zip(delays, counts)))
    write_phu(Path("hist.phu"), counts[None].astype(np.uint32), 1e-9, seconds, round(singles / seconds),
              round(singles / seconds))


def write_pulsed(rng: np.random.Generator) -> None:
    """qd.ptu: T3 records of a quantum dot excited every 50 ns (lifetime 1 ns), g2(0) about 0.1."""
    times, detector, _ = pulsed_photons(rng, 0.1, 50_000, 1_000, 400_000)
    write_t3(Path("qd.ptu"), times, detector, 50_000)


def write_scan_and_series() -> None:
    """scan_dir/scan.npz (8x8 pixels, single emitters with g2(0) = 0, some dark) and series_dir/ (8 emitters)."""
    import torch

    from qml_imaging.pipelines.g2.config import SeriesSimulation
    from qml_imaging.pipelines.g2.simulation import write_emitter_series
    from qml_imaging.physics.hbt import DelayAxis, EmitterParameters, expected_histogram

    rates = torch.full((64,), 1e5, dtype=torch.float64)
    rates[::7] = 0.0
    ones = torch.ones(64, dtype=torch.float64)
    emitters = EmitterParameters(ones, 20 * ones, 0 * ones, 300 * ones, rates)
    counts = torch.poisson(expected_histogram(emitters, 60.0), generator=torch.Generator().manual_seed(1))
    singles = (rates * 60.0 * 0.0122**0.5)[:, None].repeat(1, 2)
    Path("scan_dir").mkdir()
    np.savez("scan_dir/scan.npz", counts=counts.reshape(8, 8, -1).numpy(), delay_ns=DelayAxis().centres().numpy(),
             singles=singles.reshape(8, 8, 2).numpy(), seconds=60.0)
    write_emitter_series(SeriesSimulation(emitters=8, histograms=12), Path("series_dir"), seed=0)


def main() -> None:
    rng = np.random.default_rng(2026)
    write_time_tags(rng)
    write_histograms(rng)
    write_pulsed(rng)
    write_scan_and_series()


if __name__ == "__main__":
    main()
