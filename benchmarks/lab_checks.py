"""Statistical checks of issue 31 on simulated lab files; numbers go to docs/results.md.

    python benchmarks/lab_checks.py [--files 50] [--pulses 2000000] [--only pulsed-t3,pulsed-t2,scan]

1. **pulsed-t3**: ``--files`` T3 files (MultiHarp, 4 ps micro time) of pulsed single-photon sources of known
   g2(0) (uniform 0.05-0.5), lifetimes 10-200 ns against periods 12.5-100 ns (drawn from the grid), each read
   in one streaming pass on a +-4.5-period axis and given to ``pipelines.g2.pulsed.fit_pulsed`` (period from
   the header, areas from windows or, where the peaks overlap, the pulsed-model fit tied to the singles level):
   the share within 2 sigma of the true (realised) g2(0), per regime, with the median sigma.
2. **pulsed-t2**: the same from HydraHarp T2 files with the laser on SYNC (a SYNC event per pulse, the period
   from ``TTResult_SyncRate``), fewer pulses per file (every pulse is a record); and each file written again
   without its SYNC events: the histograms (hence g2(0)) must be identical.
3. **scan**: a 13 x 13 raster scan of two single-photon emitters (Gaussian PSF, FWHM 4 pixels) recorded as one
   PTU T2 file with line/frame markers -> ``g2 scan`` (one streaming pass, per-pixel L-M fits) -> the photon-count
   image and the G2 image; Gaussian fits of the column through one emitter give FWHM(counts) / FWHM(G2), about
   sqrt(2) for G2 ~ PSF^2.

Simulated sources: ``tests/data/photon_sources.py``; files written with ``tests/data/ptu_writer.py``.
"""

import argparse
import math
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qml_imaging.data.hbt_files import read_histograms  # noqa: E402
from qml_imaging.physics.pulsed_g2 import pulsed_axis  # noqa: E402
from qml_imaging.pipelines.g2.pulsed import fit_pulsed  # noqa: E402
from tests.data.photon_sources import marker_scan_events, pulsed_photons, write_t2_with_sync, write_t3  # noqa: E402
from tests.data.ptu_writer import tag, write_ptu  # noqa: E402

LIFETIMES_NS, PERIODS_NS = (10.0, 25.0, 50.0, 100.0, 200.0), (12.5, 25.0, 50.0, 100.0)


def regime(lifetime: float, period: float) -> str:
    ratio = lifetime / period
    return "separated (t1/T <= 0.2)" if ratio <= 0.2 else "overlapping (0.2 < t1/T <= 1)" if ratio <= 1 \
        else "merged (t1/T > 1)"


def pulsed(files: int, pulses: int, folder: Path, t2: bool) -> None:
    rng = np.random.default_rng(31 + t2)
    results: dict[str, list] = {}
    identical = 0
    started = time.perf_counter()
    for index in range(files):
        lifetime, period = rng.choice(LIFETIMES_NS), rng.choice(PERIODS_NS)
        g2_zero = rng.uniform(0.05, 0.5)
        period_ps = int(period * 1000)
        times, detector, truth = pulsed_photons(rng, g2_zero, period_ps, lifetime * 1000, pulses)
        path = folder / f"p{index}.ptu"
        if t2:
            write_t2_with_sync(path, times, detector, period_ps, pulses)
            write_t2_with_sync(folder / "nosync.ptu", times, detector, period_ps, pulses, with_sync=False)
        else:
            write_t3(path, times, detector, period_ps)
        data = read_histograms(path, axis=pulsed_axis(period, 4))
        if t2:
            identical += np.array_equal(data.counts, read_histograms(folder / "nosync.ptu", axis=data.axis).counts)
        row = fit_pulsed(data)[0]
        results.setdefault(regime(lifetime, period), []).append((row["g2"], row["sigma"], truth, row["method"]))
    within = [abs(g - t) < 2 * s for rows in results.values() for g, s, t, _ in rows]
    print(f"{'T2 + SYNC' if t2 else 'T3'}: {sum(within)} of {len(within)} files within 2 sigma "
          f"({100 * sum(within) / len(within):.0f} %), {time.perf_counter() - started:.0f} s")
    for name, rows in sorted(results.items()):
        pulls = [(g - t) / s for g, s, t, _ in rows]
        print(f"  {name}: {len(rows)} files, within 2 sigma {sum(abs(p) < 2 for p in pulls)}, mean pull "
              f"{statistics.mean(pulls):+.2f}, median sigma {statistics.median(s for _, s, _, _ in rows):.3f}, "
              f"areas from {sorted({m for *_, m in rows})}")
    if t2:
        print(f"  with and without the SYNC clock: identical histograms in {identical} of {files} files")


def scan(folder: Path) -> None:
    from qml_imaging.cli import main
    from qml_imaging.physics.microscopy import fit_gaussian

    rng = np.random.default_rng(7)
    size, fwhm_px, emitters = 13, 4.0, ((6, 3), (6, 9))
    rows, cols = np.mgrid[0:size, 0:size]
    psf = [np.exp(-4 * math.log(2) * ((rows - r) ** 2 + (cols - c) ** 2) / fwhm_px**2) for r, c in emitters]
    time_ps, kind, channel = marker_scan_events(rng, 4e5 * np.stack(psf), dwell_s=0.1, background_cps=2e3)
    imaging = (tag("ImgHdr_PixX", size), tag("ImgHdr_PixY", size), tag("ImgHdr_LineStart", 1),
               tag("ImgHdr_LineStop", 2), tag("ImgHdr_Frame", 3))
    path = folder / "two_emitters.ptu"
    write_ptu(path, "HydraHarp v2 T2", time_ps, kind, channel, seconds=time_ps[-1] * 1e-12, extra_tags=imaging)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["g2", "scan", str(path), "--axis", "101,202", "--out", str(folder / "maps")]) == 0
    maps = np.load(folder / "maps" / "maps.npz")
    column = np.arange(size, dtype=float)
    counts_fit = fit_gaussian(column, maps["counts"][:, emitters[0][1]])
    g2_fit = fit_gaussian(column, maps["G2_lm"][:, emitters[0][1]])
    print(f"scan {size}x{size}, {len(time_ps)} records, {time.perf_counter() - started:.0f} s: g2(0) at the emitters "
          f"{[round(float(maps['g2_lm'][r, c]), 3) for r, c in emitters]}; column through emitter 1: FWHM counts "
          f"{counts_fit.fwhm:.2f} px, G2 {g2_fit.fwhm:.2f} px, ratio {counts_fit.fwhm / g2_fit.fwhm:.3f} "
          f"(sqrt(2) = {math.sqrt(2):.3f}; PSF FWHM {fwhm_px} px)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--pulses", type=int, default=2_000_000)
    parser.add_argument("--only", default="pulsed-t3,pulsed-t2,scan")
    arguments = parser.parse_args()
    chosen = set(arguments.only.split(","))
    with tempfile.TemporaryDirectory() as folder:
        if "pulsed-t3" in chosen:
            pulsed(arguments.files, arguments.pulses, Path(folder), t2=False)
        if "pulsed-t2" in chosen:
            pulsed(arguments.files, arguments.pulses // 4, Path(folder), t2=True)
        if "scan" in chosen:
            scan(Path(folder))


if __name__ == "__main__":
    main()
