"""The README's main job, ``qml-imaging run experiments/qiren_camera.yaml``, timed as a user runs it, beside
the time the README states.

    python benchmarks/main_job.py [--repeats 3] [--cores 2] [--peer]

Each repeat is the whole command in a fresh process (import, the five fits, figures, report) and a fresh run
folder, pinned to ``--cores`` cores (``taskset``, where present). Prints the median wall time, the 1-minute load
average before and after each repeat (other work on the machine slows it), the CPU time the job used (user +
system, which load changes little: on an otherwise idle machine the wall time is about the CPU time, since every
fit runs on one thread) and the README's stated time.
``--peer`` also times the same job with ``grid.num_cpus=2`` (two torch threads per fit, the default before
0.2.0) in the same run, with the ratio. Every repeat's headline table must be the same (the thread count
chosen per fit does not depend on the machine); the script stops if they differ.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README_TIME = re.compile(r"It takes\s+about (.+?) on 2 CPU\s+cores")


def stated_time() -> str:
    """The main job's time as the README states it."""
    found = README_TIME.search((REPO / "README.md").read_text())
    return found.group(1) if found else "(no stated time found)"


def children_cpu() -> float:
    """CPU seconds (user + system) used so far by this process's finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_run(folder: Path, cores: int, overrides: list[str]) -> tuple[float, float, str]:
    """Wall and CPU seconds of one main job in a fresh process, and its headline table without the seconds column."""
    command = [sys.executable, "-m", "qml_imaging.cli", "run", "experiments/qiren_camera.yaml",
               "train.progress=false", *overrides, "--out", str(folder)]
    if shutil.which("taskset"):
        command = ["taskset", "-c", f"0-{cores - 1}", *command]
    started, cpu = time.perf_counter(), children_cpu()
    subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    seconds, cpu = time.perf_counter() - started, children_cpu() - cpu
    rows = [_without_seconds(line) for line in (folder / "table.md").read_text().splitlines() if line.startswith("|")]
    return seconds, cpu, "\n".join(rows)


def _without_seconds(row: str) -> str:
    """A table row without its "s per fit" column (the one cell that changes from run to run)."""
    cells = row.split("|")
    return "|".join(cells[:8] + cells[9:])


def timed(name: str, repeats: int, cores: int, overrides: list[str], scratch: Path) -> tuple[float, float]:
    """Median wall and CPU time of ``repeats`` runs, each printed with the load around it."""
    times, cpus, tables = [], [], set()
    for repeat in range(repeats):
        before = os.getloadavg()[0]
        seconds, cpu, table = one_run(scratch / f"{name}{repeat}", cores, overrides)
        times.append(seconds)
        cpus.append(cpu)
        tables.add(table)
        print(f"  {name} run {repeat + 1}: {seconds:6.1f} s wall, {cpu:6.1f} s CPU  (load average {before:.1f} "
              f"before, {os.getloadavg()[0]:.1f} after)", flush=True)
    if len(tables) > 1:
        raise SystemExit(f"{name}: the headline table differs between repeats")
    print(tables.pop())
    return statistics.median(times), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--peer", action="store_true", help="also time grid.num_cpus=2 (two threads per fit)")
    arguments = parser.parse_args()
    print(f"{os.cpu_count()} cores on this machine, the job pinned to {arguments.cores}; "
          f"README: about {stated_time()} on 2 CPU cores")
    with tempfile.TemporaryDirectory() as folder:
        default, cpu = timed("default", arguments.repeats, arguments.cores, [], Path(folder))
        print(f"main job, defaults: {default:.1f} s wall, {cpu:.1f} s CPU (medians of {arguments.repeats}); "
              f"README: about {stated_time()}")
        if arguments.peer:
            peer, peer_cpu = timed("num_cpus=2", arguments.repeats, arguments.cores, ["grid.num_cpus=2"], Path(folder))
            print(f"main job, grid.num_cpus=2: {peer:.1f} s wall, {peer_cpu:.1f} s CPU (medians of "
                  f"{arguments.repeats}); wall ratio to the defaults {peer / default:.2f}")


if __name__ == "__main__":
    main()
