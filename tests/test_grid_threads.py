"""Threads and worker processes of the grid: each fit's thread count comes from its size, never from the
machine, so the headline numbers are the same under 1 and 2 threads and in worker processes; a worker that
dies reports its task and the others finish."""

import json
from pathlib import Path

import pytest
import torch

from qml_imaging import grid as grid_module
from qml_imaging.cli import main
from qml_imaging.config import GridSettings
from qml_imaging.grid import Task, run_grid, threads_for_work
from qml_imaging.grid_workers import WorkerPool
from tests.conftest import EXPERIMENTS
from tests.grid_helpers import value_or_die

SMOKE = str(EXPERIMENTS / "inr_smoke.yaml")
TWO_MODELS = ("models={qiren: {kind: qiren, lr: 0.03, n_qubits: 4, hidden_layers: 2, reuploads: 1, sublayers: 2}, "
              "tanh: {kind: tanh, lr: 0.01, hidden_layers: 2}}")


def test_threads_follow_the_fit_size_only():
    assert threads_for_work(32 * 32 * 657) == 1  # the README's main job: every fit on one thread
    assert threads_for_work(1e9) == 2
    with pytest.raises(ValueError, match="finite number >= 0, got nan"):
        threads_for_work(float("nan"))


def smoke_run(out: Path, *overrides: str) -> tuple[dict, str, list[dict]]:
    assert main(["run", SMOKE, "train.epochs=10", *overrides, "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    summary = {key: value for key, value in report["summary"].items() if key != "seconds_per_fit"}
    rows = [line.split("|") for line in (out / "table.md").read_text().splitlines() if line.startswith("|")]
    table = ["|".join(cells[:8] + cells[9:]) for cells in rows]  # without "s per fit"
    return summary, "\n".join(table), report["details"]["fits"]


def test_headline_table_is_the_same_under_one_and_two_threads_and_in_worker_processes(tmp_path, monkeypatch):
    """The driver under 1 thread running every fit in this process, then under 2 threads sending the QIREN fit
    (run after the classical one) to a worker process: the same summary and table (seconds per fit aside),
    every fit on its own one thread."""
    monkeypatch.setattr(grid_module, "POOL_AFTER_SECONDS", 1e9)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        inline = smoke_run(tmp_path / "inline", TWO_MODELS)
        torch.set_num_threads(2)
        monkeypatch.setattr(grid_module, "POOL_AFTER_SECONDS", 0.0)  # workers from the second fit on
        in_workers = smoke_run(tmp_path / "workers", TWO_MODELS, "grid.tasks_at_once=2")
    finally:
        torch.set_num_threads(previous)
    assert in_workers[0] == inline[0]
    assert in_workers[1] == inline[1]
    assert [fit["threads"] for fit in in_workers[2]] == [1, 1]


def test_a_worker_that_dies_is_reported_with_its_task_and_the_others_finish():
    pool = WorkerPool(2, value_or_die)
    try:
        pool.submit(0, 1)
        pool.submit(1, -3)
        assert not pool.has_room()
        done = dict(pool.next_done() for _ in range(2))
        pool.submit(2, 4)  # on the surviving worker or a new one
        done.update([pool.next_done()])
    finally:
        pool.close()
    assert done == {0: 1, 1: ("error", "the worker process running it died (exit code 3)"), 2: 4}


def test_the_local_grid_moves_to_worker_processes_after_a_long_task(monkeypatch):
    monkeypatch.setattr(grid_module, "POOL_AFTER_SECONDS", 0.0)
    started = []
    monkeypatch.setattr(grid_module, "WorkerPool",
                        lambda size, function: started.append(size) or WorkerPool(size, function))
    tasks = [Task(f"t{i}", value_or_die, (value,)) for i, value in enumerate([1, 2, -3])]
    outcome = run_grid(tasks, GridSettings(tasks_at_once=2, max_retries=0), None, progress=False)
    assert started == [2]
    assert outcome.results == [1, 2, None]
    assert outcome.failures == {"t2": "the worker process running it died (exit code 3)"}
