"""Wall time and peak memory of ``qml-imaging g2 fit`` on one CSV histogram, for this checkout and for
earlier commits of it, in the same run (medians of repeats, each a fresh process).

    python benchmarks/g2_fit_cli.py [--before COMMIT ...] [--repeats 5]

Each measurement starts a child Python that runs the command from a source tree (this checkout, or
``git archive COMMIT`` unpacked into a temporary folder) and reads that child's peak resident set size
(``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``, KiB on Linux) in a fresh launcher process, so one
measurement's peak does not leak into the next, and its CPU time (user + system, which a loaded machine
inflates less than the wall time). Also printed: which heavy packages the fit imported.
The issue's goal: under 2 s and 250 MB on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
from qml_imaging.cli import main
status = main(["g2", "fit", sys.argv[2], "--out", sys.argv[3]])
heavy = sorted(name for name in ("torch", "torchmetrics", "torchvision", "pennylane", "matplotlib", "scipy")
               if name in sys.modules)
print("IMPORTED " + ",".join(heavy))
sys.exit(status)
"""

LAUNCHER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - start
imported = [line[9:] for line in done.stdout.splitlines() if line.startswith("IMPORTED ")]
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
peak_mb, cpu_s = usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime
print(json.dumps({"wall_s": wall, "cpu_s": cpu_s, "peak_mb": peak_mb, "status": done.returncode,
                  "imported": imported[0] if imported else None, "stderr": done.stderr[-500:]}))
"""


def write_histogram(path: Path) -> None:
    """A 201-bin antibunching histogram (g2(0) = 0.2 on a flat 400-count baseline, 1 ns bins) as CSV."""
    rows = [f"{delay},{round(400 * (1 - 0.8 * math.exp(-abs(delay) / 5)))}" for delay in range(-100, 101)]
    path.write_text("delay_ns,counts\n" + "\n".join(rows) + "\n")


def source_tree(commit: str, into: Path) -> Path:
    """The package of ``commit`` unpacked under ``into`` (``git archive``)."""
    archive = into / f"{commit}.tar"
    subprocess.run(["git", "archive", "--format=tar", "-o", str(archive), commit, "qml_imaging"], cwd=REPO, check=True)
    folder = into / commit
    with tarfile.open(archive) as handle:
        handle.extractall(folder, filter="data")
    return folder


def measure(tree: Path, csv: Path, out: Path, repeats: int) -> dict:
    """Median wall time and peak RSS of ``repeats`` fits from ``tree``, and what the last one imported."""
    runs = []
    for _ in range(repeats):
        command = [sys.executable, "-c", LAUNCHER, sys.executable, "-c", CHILD, str(tree), str(csv), str(out)]
        runs.append(json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout))
        if runs[-1]["status"] != 0:
            raise RuntimeError(f"g2 fit from {tree} failed: {runs[-1]['stderr']}")
    return {"wall_s": statistics.median(r["wall_s"] for r in runs), "cpu_s": statistics.median(r["cpu_s"] for r in runs),
            "peak_mb": statistics.median(r["peak_mb"] for r in runs), "imported": runs[-1]["imported"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", nargs="*", default=[], help="earlier commits to measure beside this checkout")
    parser.add_argument("--repeats", type=int, default=5)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        write_histogram(work / "one.csv")
        trees = {commit: source_tree(commit, work) for commit in arguments.before}
        trees["this checkout"] = REPO
        print(f"{'source':<44} {'wall s':>7} {'CPU s':>7} {'peak MB':>8}  imported")
        for name, tree in trees.items():
            result = measure(tree, work / "one.csv", work / "fits.csv", arguments.repeats)
            print(f"{name:<44} {result['wall_s']:>7.2f} {result['cpu_s']:>7.2f} {result['peak_mb']:>8.0f}  "
                  f"{result['imported']}")


if __name__ == "__main__":
    main()
