"""A 4-fit INR grid (``inr_smoke``: QIREN, Tanh, SIREN, ReLU on the 16x16 camera) with the local executor
against Ray embedded on this machine, in one run.

    python benchmarks/grid_executors.py [--repeats 3] [--epochs 150]

local: the default, one fit at a time in this process with all cores as torch threads; local_1thread:
the same with one torch thread (``num_cpus: 1``, the threads of a Ray task). ray: two fits at once (``tasks_at_once: 2``, ``num_cpus: 1``: one core and one torch thread each). Ray is started
once before the timing (its start-up is printed apart); every repeat is a fresh run folder, so
nothing is resumed. Prints the median wall time of each and the ratio local / ray. Needs Ray
(``pip install -e ".[ray]"``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from timing import median_seconds

from qml_imaging.config import load_config
from qml_imaging.pipelines.inr.image import run
from qml_imaging.runs import RunDir

GRIDS = {"local": {"executor": "local"}, "local_1thread": {"executor": "local", "num_cpus": 1},
         "ray": {"executor": "ray", "tasks_at_once": 2, "num_cpus": 1}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=150)
    arguments = parser.parse_args()

    import ray

    started = time.perf_counter()
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    print(f"{os.cpu_count()} cores; Ray {ray.__version__} started in {time.perf_counter() - started:.1f} s (not timed below)")
    with tempfile.TemporaryDirectory() as folder:
        counter = iter(range(10**6))

        def grid_run(executor: str) -> None:
            config = load_config("inr_smoke", [f"train.epochs={arguments.epochs}", "train.eval_every=1000",
                                               "train.checkpoint_every=1000", "models.relu={kind: relu, lr: 0.01}",
                                               f"grid={GRIDS[executor]}"])
            run(config, RunDir.create(config, Path(folder) / f"{executor}{next(counter)}"))

        grid_run("ray")  # Ray's workers import torch once; later runs reuse them
        seconds = {name: median_seconds(lambda name=name: grid_run(name), arguments.repeats) for name in GRIDS}
    for name, value in seconds.items():
        print(f"  {name:>13}: {value:6.2f} s per 4-fit grid (median of {arguments.repeats})")
    print(f"  local / ray = {seconds['local'] / seconds['ray']:.2f}, "
          f"local_1thread / ray = {seconds['local_1thread'] / seconds['ray']:.2f}")
    ray.shutdown()


if __name__ == "__main__":
    main()
