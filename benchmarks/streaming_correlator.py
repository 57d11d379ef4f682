"""Wall time and peak memory of `g2 fit` on large PTU T2 files against trattoria and the old whole-file correlator.

    python benchmarks/streaming_correlator.py [--photons 20000000] [--folder /tmp/qml_ptu_bench] [--repeats 3]

Generates (once, kept in ``--folder``) HydraHarp-v2 T2 files of an antibunched emitter plus background on
inputs 0 and 1 (1 ps tags, 4e5 photons/s in all), of ``--photons`` photons and of half as many, written
block by block. Each tool runs in its own process under ``/usr/bin/time`` (wall time,
peak resident memory), alternating, ``--repeats`` times; medians are printed:

- ``g2 fit``: the whole command (read, stream-correlate, L-M fit, CSV) on a 250-bin axis over +-250 ns (2 ns bins);
- ``read only``: the streaming read alone (``read_histograms``), and the same process's memory after the
  imports, so the memory the correlation adds is the difference;
- ``trattoria``: trattoria 0.3 (Rust, streaming; ``pip install trattoria``) on the same window and
  resolution (its channels 1 and 2 are inputs 0 and 1, 0 is SYNC);
- ``whole file``: the reader before the streaming one (ptufile ``decode_records`` of every record,
  ``np.sort`` of each channel, :func:`~qml_imaging.data.correlator.correlate`), where ptufile is installed.

The histograms are compared: ours and trattoria's pair totals and the largest bin difference in Poisson
standard deviations.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.data.ptu_writer import PHOTON, write_ptu_blocks  # noqa: E402

WINDOW_NS, BINS = 250.0, 250
AXIS = f"{BINS},{2 * WINDOW_NS},{-WINDOW_NS + WINDOW_NS / BINS!r}"  # 2 ns bins, edges at -250, -248, ... ns


def blocks(photons: int, seed: int, rate: float = 4e5, block_seconds: float = 2.0):
    """Consecutive blocks of (time ps, kind, channel): a renewal emitter with 10 % background (g2(0) ~ 0.2)."""
    rng = np.random.default_rng(seed)
    made, start = 0, 0.0
    while made < photons:
        n = min(int(rate * block_seconds), photons - made)
        seconds = n / rate
        emitter = start + np.cumsum(rng.exponential(1 / (0.9 * rate), int(0.9 * n)) + rng.exponential(20e-9, int(0.9 * n)))
        emitter = emitter[emitter < start + seconds]  # blocks must not overlap: the tags of a T2 file are in order
        light = np.concatenate([emitter, start + rng.uniform(0, seconds, n - len(emitter))])
        time = np.sort(np.round(light * 1e12).astype(np.int64))
        yield time, np.full(len(time), PHOTON), rng.integers(0, 2, len(time))
        made, start = made + n, start + seconds


def generated(folder: Path, photons: int) -> Path:
    path = folder / f"t2_{photons}.ptu"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        write_ptu_blocks(partial, "HydraHarp v2 T2", blocks(photons, photons), seconds=photons / 4e5)
        partial.replace(path)
    return path


TOOLS = {
    "g2 fit": "from qml_imaging.cli import main; import sys; sys.exit(main(['g2', 'fit', '{path}', '--axis', '{axis}', "
              "'--out', '{out}/fits.csv']))",
    "read only": "import resource, json, numpy as np; from qml_imaging.data.hbt_files import read_histograms; "
                 "from qml_imaging.cli_g2 import _axis; base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
                 "h = read_histograms('{path}', axis=_axis('{axis}')); np.save('{out}/ours.npy', h.counts[0]); "
                 "print(json.dumps({{'after_imports_kb': base}}))",
    "trattoria": "import trattoria, numpy as np; from pathlib import Path; r = trattoria.PTUFile(Path('{path}')).g2("
                 "trattoria.G2Parameters(1, 2, {window} * 1e-9, 2e-9)); np.save('{out}/trattoria.npy', r.g2)",
    "whole file": "import ptufile, numpy as np; from qml_imaging.data.correlator import correlate; "
                  "from qml_imaging.cli_g2 import _axis; r = ptufile.PtuFile('{path}').decode_records(); "
                  "p = r['channel'] >= 0; t = r['time'][p].astype(np.int64); c = r['channel'][p]; "
                  "h = correlate(np.sort(t[c == 0]), np.sort(t[c == 1]), _axis('{axis}'), resolution_ns=1e-3)",
}


def measure(tool: str, path: Path, out: Path) -> tuple[float, float, str]:
    """``(seconds, peak MB, stdout)`` of one run of ``tool`` in a fresh process under /usr/bin/time."""
    code = TOOLS[tool].format(path=path, axis=AXIS, out=out, window=WINDOW_NS)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    run = subprocess.run(["/usr/bin/time", "-f", "TIME %e %M", sys.executable, "-c", code], capture_output=True,
                         text=True, env=env, cwd=out)
    last = [line for line in run.stderr.splitlines() if line.startswith("TIME ")]
    if run.returncode or not last:
        raise RuntimeError(f"{tool} failed: {run.stderr.strip()[-500:]}")
    seconds, kilobytes = last[-1].split()[1:]
    return float(seconds), float(kilobytes) / 1024, run.stdout


def available(tool: str) -> bool:
    module = {"trattoria": "trattoria", "whole file": "ptufile"}.get(tool)
    return module is None or subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True).returncode == 0


def compare(out: Path) -> str:
    ours, theirs = np.load(out / "ours.npy"), np.load(out / "trattoria.npy").astype(np.float64)
    totals = (f"pairs: ours {ours.sum():.0f}, trattoria {theirs.sum():.0f} "
              f"({100 * (theirs.sum() / ours.sum() - 1):+.4f} %)")
    if len(ours) != len(theirs):
        return f"{totals}; trattoria made {len(theirs)} bins of the window, ours {len(ours)}"
    z = np.abs(ours - theirs) / np.sqrt(np.maximum(ours + theirs, 1.0) / 2)
    return f"{totals}; largest bin difference {z.max():.2f} Poisson sigma"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photons", type=int, default=20_000_000)
    parser.add_argument("--folder", default=str(Path(tempfile.gettempdir()) / "qml_ptu_bench"))
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()
    tools = [tool for tool in TOOLS if available(tool)]
    print(f"tools: {tools}; missing: {[t for t in TOOLS if t not in tools]}")
    for photons in (arguments.photons // 2, arguments.photons):
        path = generated(Path(arguments.folder), photons)
        print(f"\n{path.name}: {photons / 1e6:.0f} M photons, {path.stat().st_size / 2**20:.0f} MiB")
        with tempfile.TemporaryDirectory() as out:
            results: dict[str, list] = {tool: [] for tool in tools}
            for _ in range(arguments.repeats):
                for tool in tools:
                    results[tool].append(measure(tool, path, Path(out)))
            for tool, runs in results.items():
                extra = ""
                if tool == "read only":
                    base = statistics.median(json.loads(r[2].strip().splitlines()[-1])["after_imports_kb"] for r in runs)
                    extra = f" (after imports {base / 1024:.0f} MB: the correlation adds " \
                            f"{statistics.median(r[1] for r in runs) - base / 1024:.0f} MB)"
                print(f"  {tool:11s} {statistics.median(r[0] for r in runs):6.2f} s  "
                      f"{statistics.median(r[1] for r in runs):7.0f} MB peak{extra}")
            if "trattoria" in tools:
                print("  " + compare(Path(out)))


if __name__ == "__main__":
    main()
