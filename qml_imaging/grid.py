"""The task-grid runner: every pipeline's grid of independent fits goes through :func:`run_grid`.

A :class:`Task` is one fit, one model or one chunk of pixel fits: a unique name (a relative path such
as ``camera/qiren/seed0``), a picklable module-level function and its arguments (the seed among
them). :func:`run_grid` runs the tasks not yet done as ``grid`` (:class:`~qml_imaging.config.GridSettings`)
says and returns their results in task order with the failures:

* ``executor: local`` runs them on this machine: in this process, one at a time, until one task has
  taken :data:`POOL_AFTER_SECONDS` or more (long enough to pay for starting a Python process); the
  tasks left then run side by side in worker processes (:mod:`qml_imaging.grid_workers`), as many at
  once as ``tasks_at_once`` says (null: this machine's cores // the tasks' threads);
* ``executor: ray`` submits them as Ray tasks with ``num_gpus`` each and their threads as ``num_cpus``,
  at most ``tasks_at_once`` in flight. Without an address Ray starts
  embedded on this machine (``ray.init(address="local")``); ``qml-imaging run --ray-address ADDR``
  (or Ray's own ``RAY_ADDRESS``) joins an existing cluster instead. A Ray session this process
  already started is reused.

With a run folder, the driver (this process) keeps each finished task's result in
``tasks/<name>/result.pt`` (tensors and plain data, loaded with ``weights_only``): a task holding
one is done and is not run again, which is how ``qml-imaging run --resume`` skips finished tasks.
A task writes its own products (checkpoints, its ``tasks/<name>/metrics.jsonl``) from wherever it
runs, so the run folder must be on storage every worker sees: before a task starts, its worker
creates and removes a file in ``tasks/<name>/`` and the grid stops with :class:`GridStorageError`
when it cannot. When a task ends the driver moves the records of its ``metrics.jsonl`` into the
run's ``metrics.jsonl`` (replacing earlier records of the same fits), so the run-level log is
written by one process only.

**Threads.** Each task runs with a fixed number of torch threads: ``grid.num_cpus`` when it is set, else
the task's own ``threads``, which its pipeline chooses from the size of the fit (:func:`threads_for_work`:
one thread for a small fit, whose steps are too short for threads to pay). The count never depends on the
machine or on ``OMP_NUM_THREADS``, because it changes float rounding (a reduction summed in another order)
and a chaotic fit amplifies that into different metrics: the same config gives the same numbers on every
machine with the same CPU kind, and each task's count is recorded in its result (``threads``).

A task that raises (or whose worker dies) runs again up to ``max_retries`` times; then it is
a failure, ``{name: "ErrorType: message"}``, and the other tasks go on. A run-folder error (a
damaged or unsafe checkpoint, an unwritable folder) stops the grid at once. Results are the same
whichever executor, process or number of tasks at once runs them, for the same seeds on CPU: every task
seeds itself and sets its threads, and nothing a task computes depends on which process runs it.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os
import pickle
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from qml_imaging.config import GridSettings
from qml_imaging.extras import MissingExtraError, require
from qml_imaging.grid_workers import WorkerPool, available_cores
from qml_imaging.runs import MetricsLog, RunFolderError, atomic_replace, make_folder, register_run_folder
from qml_imaging.training.checkpoints import load_state_file
from qml_imaging.training.distributed import current_process_group

TASKS_FOLDER = "tasks"
POOL_AFTER_SECONDS = 10.0
"""Local executor: the tasks left after one that took at least this long run in worker processes."""
SMALL_FIT_MULTIPLY_ADDS = 1e8
"""Multiply-adds per training step below which a fit runs on one thread (:func:`threads_for_work`)."""


class GridStorageError(RunFolderError):
    """A worker cannot write the run folder: it is not on storage every worker sees."""


class ExecutorUnavailable(RuntimeError):
    """``executor: ray`` without Ray installed (the message names the install command)."""


@dataclasses.dataclass(frozen=True)
class Task:
    """One independent unit of a grid: ``function(*args)`` (picklable, module-level) under a unique ``name``,
    run with ``threads`` torch threads unless ``grid.num_cpus`` sets them for every task."""

    name: str
    function: Callable[..., Any]
    args: tuple = ()
    threads: int = 1


def threads_for_work(multiply_adds_per_step: float) -> int:
    """Torch threads for a fit whose training step costs about ``multiply_adds_per_step`` (forward pass:
    for a dense network, samples per step x parameters): 1 below :data:`SMALL_FIT_MULTIPLY_ADDS`, else 2.

    A function of the fit alone, never of the machine, so a config gives the same numbers everywhere. Below
    the threshold a step's operations are too short for a thread pool to pay: the README's main job (7e5
    per step) took 257 s with two threads per fit and 67 s with one (issue 33; ``benchmarks/main_job.py`` times
    it). ``ValueError`` for a negative or non-finite count.
    """
    if not math.isfinite(multiply_adds_per_step) or multiply_adds_per_step < 0:
        raise ValueError(f"multiply_adds_per_step must be a finite number >= 0, got {multiply_adds_per_step!r}")
    return 1 if multiply_adds_per_step < SMALL_FIT_MULTIPLY_ADDS else 2


def task_threads(task: Task, grid: GridSettings) -> int:
    """The torch threads ``task`` runs with: ``grid.num_cpus`` when set, else the task's own."""
    return grid.num_cpus or task.threads


@dataclasses.dataclass
class GridOutcome:
    """``results[i]`` is task ``i``'s return value (``None`` when it failed); ``failures`` maps the
    names of failed tasks to ``"ErrorType: message"``; ``ran`` names the tasks run by this call
    (not loaded as done); ``threads[i]`` is the torch thread count task ``i`` runs with."""

    results: list[Any]
    failures: dict[str, str]
    ran: list[str]
    threads: list[int] = dataclasses.field(default_factory=list)

    def raise_failures(self) -> None:
        """Raise ``RuntimeError`` naming every failed task and its error (for grids whose results are
        all needed, such as the chunks of one evaluation)."""
        if self.failures:
            raise RuntimeError("tasks failed: " + "; ".join(f"{name}: {error}" for name, error in self.failures.items()))


def task_folder(run_path: str | Path, name: str) -> Path:
    """The folder of task ``name`` in the run folder ``run_path``: its result, metrics and own products."""
    return register_run_folder(run_path) / TASKS_FOLDER / name


def run_grid(tasks: Sequence[Task], grid: GridSettings, run_path: str | Path | None = None, *,
             label: str = "tasks", progress: bool = True) -> GridOutcome:
    """Run every task of ``tasks`` not yet done; return their results in task order and the failures.

    ``run_path``: the run folder where finished results are kept (``None``: nothing is kept and no
    task is skipped). ``label`` names the progress bar (one bar over the tasks: done, running,
    failed). Raises ``ValueError`` for duplicate task names, :class:`ExecutorUnavailable` for
    ``executor: ray`` without Ray, and :class:`GridStorageError` when a worker cannot write the run folder.
    """
    names = [task.name for task in tasks]
    if len(set(names)) != len(names):
        raise ValueError(f"task names must be unique; repeated: {sorted({n for n in names if names.count(n) > 1})}")
    path = Path(run_path) if run_path is not None else None
    keeper = current_process_group().is_main  # under torchrun, rank 0 alone writes
    results: list[Any] = [_stored_result(path, task.name) if path is not None else None for task in tasks]
    pending = [index for index, result in enumerate(results) if result is None]
    executor = _RayExecutor(grid) if grid.executor == "ray" and pending else _LocalExecutor(grid)
    bar = tqdm(total=len(tasks), initial=len(tasks) - len(pending), desc=label, disable=not progress)
    failures: dict[str, str] = {}
    attempts: collections.Counter[int] = collections.Counter()
    queue = collections.deque(pending)
    try:
        while queue or executor.running:
            while queue and executor.has_room():
                index = queue.popleft()
                executor.submit(index, tasks[index], path, task_threads(tasks[index], grid))
            index, (kind, value) = executor.next_done()
            task = tasks[index]
            if kind == "fatal":
                raise value
            attempts[index] += 1
            if kind == "ok":
                if path is not None and keeper:
                    _keep(path, task.name, value)
                results[index] = value
                bar.update(1)
            elif attempts[index] <= grid.max_retries:
                queue.append(index)
            else:
                failures[task.name] = value
                bar.update(1)
            bar.set_postfix(running=len(executor.running), failed=len(failures), refresh=False)
    finally:
        executor.cancel()
        bar.close()
    return GridOutcome(results, {n: failures[n] for n in names if n in failures}, [names[i] for i in pending],
                       [task_threads(task, grid) for task in tasks])


def run_task(task: Task, run_path: str | None, threads: int) -> tuple[str, Any]:
    """Run ``task`` with ``threads`` torch threads where it was sent (this process, a worker process or a Ray
    worker): ``("ok", result)``, ``("error", text)``
    for an exception it raised (retried, then reported), or ``("fatal", error)`` for a run folder this
    worker cannot write or holding a damaged or unsafe file (:class:`~qml_imaging.runs.RunFolderError`,
    which stops the grid: retrying cannot help)."""
    if run_path is not None:
        problem = storage_problem(Path(run_path), task.name)
        if problem is not None:
            return "fatal", GridStorageError(problem)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return "ok", task.function(*task.args)
    except RunFolderError as error:
        return "fatal", error
    except Exception as error:  # reported with the task's name; the other tasks go on
        return "error", _describe(error)
    finally:
        torch.set_num_threads(previous)


def storage_problem(run_path: Path, name: str) -> str | None:
    """Why this process cannot write task ``name``'s folder in ``run_path`` (``None`` when it can):
    it creates the folder if needed, then creates and removes a file in it."""
    host = socket.gethostname()
    advice = ("the run folder must be on storage every worker sees (a shared file system mounted at the same "
              "path on every node; README, 'Scale out')")
    if not run_path.is_dir():
        return f"worker on {host} sees no run folder {run_path}; {advice}"
    folder = task_folder(run_path, name)
    probe = folder / f".write-check-{host}-{os.getpid()}"
    try:
        make_folder(folder)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        return f"worker on {host} cannot write {folder} ({error.strerror or error}); {advice}"
    return None


def _stored_result(run_path: Path, name: str) -> Any:
    path = task_folder(run_path, name) / "result.pt"
    return load_state_file(path) if path.is_file() else None


def _keep(run_path: Path, name: str, result: Any) -> None:
    """Driver side of a finished task: its metrics into the run's log, then its result (the done mark)."""
    folder = task_folder(run_path, name)
    records = MetricsLog(folder / "metrics.jsonl").records()
    if records:
        MetricsLog(run_path / "metrics.jsonl").replace_fits(records)
    with atomic_replace(folder / "result.pt") as temporary:
        torch.save(result, temporary)


def _pickles(task: Task) -> bool:
    """Whether ``task`` can travel to a worker process (a closure cannot: such a grid stays in this process)."""
    try:
        pickle.dumps(task)
    except (pickle.PicklingError, AttributeError, TypeError):
        return False
    return True


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


class _LocalExecutor:
    """On this machine: in this process one task at a time, then (after a task that took at least
    :data:`POOL_AFTER_SECONDS`) in worker processes, ``grid.tasks_at_once`` at a time (null: cores // threads)."""

    def __init__(self, grid: GridSettings) -> None:
        self.grid = grid
        self.pool: WorkerPool | None = None
        self.running: collections.OrderedDict[int, tuple] = collections.OrderedDict()

    def has_room(self) -> bool:
        return self.pool.has_room() if self.pool is not None else not self.running

    def submit(self, index: int, task: Task, run_path: Path | None, threads: int) -> None:
        path = str(run_path) if run_path is not None else None
        self.running[index] = (task, path, threads)
        if self.pool is not None:
            self.pool.submit(index, task, path, threads)

    def next_done(self) -> tuple[int, tuple[str, Any]]:
        if self.pool is not None:
            index, outcome = self.pool.next_done()
            del self.running[index]
            return index, outcome
        index, (task, path, threads) = self.running.popitem(last=False)
        started = time.perf_counter()
        outcome = run_task(task, path, threads)
        size = self.grid.tasks_at_once or available_cores() // threads
        if time.perf_counter() - started >= POOL_AFTER_SECONDS and size > 1 and _pickles(task):
            self.pool = WorkerPool(size, run_task)
        return index, outcome

    def cancel(self) -> None:
        if self.pool is not None:
            self.pool.close()
        self.running.clear()


class _RayExecutor:
    """Ray tasks, embedded on this machine or on the cluster at ``RAY_ADDRESS``; at most ``tasks_at_once`` in flight."""

    def __init__(self, grid: GridSettings):
        self.ray = import_ray()
        address = os.environ.get("RAY_ADDRESS") or None
        if not self.ray.is_initialized():
            if address is None:
                self.ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False,
                              log_to_driver=False, configure_logging=False)
            else:
                self.ray.init(address=address, log_to_driver=False, configure_logging=False)
        embedded = address is None
        self.limit = grid.tasks_at_once or (max(1, available_cores() // (grid.num_cpus or 1)) if embedded else 10**9)
        self.remote = self.ray.remote(num_gpus=grid.num_gpus, max_retries=0)(run_task)
        self.running: dict[Any, int] = {}

    def has_room(self) -> bool:
        return len(self.running) < self.limit

    def submit(self, index: int, task: Task, run_path: Path | None, threads: int) -> None:
        remote = self.remote.options(num_cpus=threads)
        self.running[remote.remote(task, str(run_path) if run_path is not None else None, threads)] = index

    def next_done(self) -> tuple[int, tuple[str, Any]]:
        (ref,), _ = self.ray.wait(list(self.running), num_returns=1)
        index = self.running.pop(ref)
        try:
            return index, self.ray.get(ref)
        except self.ray.exceptions.RayError as error:  # the worker died or the task could not run
            return index, ("error", _describe(error))

    def cancel(self) -> None:
        for ref in self.running:
            self.ray.cancel(ref, force=True)
        self.running.clear()


def check_ray_address(address: str, timeout: float = 5.0) -> None:
    """Refuse a cluster address nothing answers on (``ray.init`` would wait for it without end): a
    ``HOST:PORT`` or ``ray://HOST:PORT`` address must accept a TCP connection within ``timeout`` seconds.
    ``auto`` and other forms are left to Ray. Raises :class:`ExecutorUnavailable` naming the address."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as error:
        raise ExecutorUnavailable(f"no Ray cluster answers at {address} ({error.strerror or error}); check the "
                                  "address (`ray status` on the head node shows it) or drop --ray-address to run "
                                  "Ray on this machine") from None


def import_ray():
    """The ``ray`` module, or :class:`ExecutorUnavailable` naming the install command."""
    try:
        return require("ray", "grid.executor 'ray'")
    except MissingExtraError as error:
        raise ExecutorUnavailable(f"{error} (or use grid.executor=local)") from None
