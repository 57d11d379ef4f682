"""Worker processes of the local grid executor: grid tasks run side by side on this machine.

:class:`WorkerPool` starts up to ``size`` fresh Python processes (``spawn``: nothing is inherited from
the driver but what a task carries, so a task computes the same numbers in a worker as in the driver),
sends each a task at a time and hands back ``(index, outcome)`` as tasks finish. A worker that dies
(killed, out of memory) reports its task as an error and is replaced; a worker whose driver dies
exits within a second, so a killed run leaves no process writing its folder; Ctrl-C is the driver's to handle. Progress bars are off
in workers (the driver keeps the one bar over the tasks).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.connection import Connection, wait
from collections.abc import Callable
from typing import Any


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the platform tells it, else ``os.cpu_count()``)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _exit_with_driver(driver: int) -> None:
    """In a worker: end this process as soon as its driver (process id ``driver``) is gone."""
    while os.getppid() == driver:
        time.sleep(1.0)
    os._exit(1)


def _serve(connection: Connection, driver: int, function: Callable[..., Any]) -> None:
    """A worker's loop: receive ``(index, *arguments)``, send back ``(index, function(*arguments))``; ``None`` ends it.

    Ctrl-C reaches the driver and its workers alike; a worker ignores it and the driver ends the workers
    (:meth:`WorkerPool.close`), so an interrupted run prints one message, not one traceback per worker."""
    os.environ["TQDM_DISABLE"] = "1"
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_driver, args=(driver,), daemon=True).start()
    while True:
        try:
            message = connection.recv()
        except EOFError:
            return
        if message is None:
            return
        index, *arguments = message
        connection.send((index, function(*arguments)))


class WorkerPool:
    """Up to ``size`` worker processes, started when first needed, each calling ``function`` (module-level, so
    that it pickles) on the arguments of one task at a time."""

    def __init__(self, size: int, function: Callable[..., Any]) -> None:
        self.size = size
        self.function = function
        self.idle: list[tuple[Any, Connection]] = []
        self.busy: dict[Connection, tuple[Any, int]] = {}
        self.context = multiprocessing.get_context("spawn")

    def has_room(self) -> bool:
        return len(self.busy) < self.size

    def submit(self, index: int, *arguments: Any) -> None:
        """Send task ``index`` (``function(*arguments)``) to an idle worker, starting one if none is idle."""
        process, connection = self.idle.pop() if self.idle else self._start()
        connection.send((index, *arguments))
        self.busy[connection] = (process, index)

    def next_done(self) -> tuple[int, Any]:
        """Wait for the next task to finish: ``(index, outcome)``; a dead worker's task is ``("error", text)``."""
        by_sentinel = {process.sentinel: connection for connection, (process, _) in self.busy.items()}
        ready = wait([*self.busy, *by_sentinel])
        answered = [item for item in ready if isinstance(item, Connection)]
        connection = answered[0] if answered else by_sentinel[ready[0]]
        process, index = self.busy.pop(connection)
        try:
            _, outcome = connection.recv() if answered else (index, None)
        except EOFError:
            outcome = None
        if outcome is None:
            process.join(timeout=5)
            return index, ("error", f"the worker process running it died (exit code {process.exitcode})")
        self.idle.append((process, connection))
        return index, outcome

    def close(self) -> None:
        """Stop every worker: idle ones are asked to end, busy ones are terminated."""
        for process, connection in self.idle:
            try:
                connection.send(None)
            except OSError:  # it has ended already
                pass
            process.join(timeout=5)
        for process, _ in self.busy.values():
            process.terminate()
            process.join(timeout=5)
        self.idle.clear()
        self.busy.clear()

    def _start(self) -> tuple[Any, Connection]:
        here, there = self.context.Pipe()
        process = self.context.Process(target=_serve, args=(there, os.getpid(), self.function),
                                       daemon=True)
        process.start()
        there.close()
        return process, here
