"""The job store of a hardware evaluation: ``jobs.json`` plus result files in one folder.

For every quantum layer of the evaluated model it records the PUB layout (parameter sets,
observables, shots, transpiled depth and two-qubit gates), each submission attempt (job id,
backend, times, final state and the reason of a failure) and, once fetched, where the expectation
values are. Everything is written atomically, so a process killed at any point leaves a store that
the next process continues from: jobs are looked up again by id, and a layer whose result has been
recorded is never fetched or counted again.

Layout of ``jobs.json``::

    {"backend": "ibm_brisbane", "layers": {"0": {"state": "pending|submitted|done|failed",
      "pub": {...}, "attempts": [{"job_id", "submitted_at", "finished_at", "state", "detail"}],
      "result_file": "results/layer0.npz", "fetched_at": ...}}}

Times are Unix seconds.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from qml_imaging.runs import save_arrays_atomic, write_text_atomic

PENDING, SUBMITTED, DONE, FAILED = "pending", "submitted", "done", "failed"


class JobStore:
    """``folder/jobs.json`` with the inputs and results of every layer under ``folder``."""

    def __init__(self, folder: str | Path, backend: str):
        self.folder = Path(folder)
        self.path = self.folder / "jobs.json"
        if self.path.is_file():
            self.data = json.loads(self.path.read_text())
            if self.data["backend"] != backend:
                raise ValueError(f"{self.path} records jobs on {self.data['backend']!r}, not {backend!r}; "
                                 "evaluate on another backend in another folder")
        else:
            self.data = {"backend": backend, "layers": {}}

    @property
    def backend(self) -> str:
        return self.data["backend"]

    def layer(self, index: int) -> dict:
        """The record of layer ``index`` (a fresh pending one if never submitted)."""
        return self.data["layers"].get(str(index), {"state": PENDING, "attempts": []})

    def layers(self) -> dict[int, dict]:
        return {int(k): v for k, v in sorted(self.data["layers"].items(), key=lambda item: int(item[0]))}

    def active_job(self, index: int) -> str | None:
        """Job id of layer ``index``'s submitted, not yet fetched attempt."""
        record = self.layer(index)
        return record["attempts"][-1]["job_id"] if record["state"] == SUBMITTED else None

    def failed_attempts(self, index: int) -> list[dict]:
        return [a for a in self.layer(index)["attempts"] if a["state"] == FAILED]

    def record_submission(self, index: int, job_id: str, pub: dict, inputs: np.ndarray, submitted_at: float) -> None:
        """Layer ``index`` was submitted as ``job_id`` at ``submitted_at``; ``inputs`` ``(B, n)`` are kept
        to check its result against."""
        save_arrays_atomic(self._inputs_file(index), inputs=inputs)
        record = self.layer(index)
        record.update(state=SUBMITTED, pub=pub, inputs_file=str(self._inputs_file(index).relative_to(self.folder)))
        record["attempts"].append({"job_id": job_id, "submitted_at": submitted_at, "state": SUBMITTED})
        self._put(index, record)

    def record_failure(self, index: int, detail: str) -> None:
        """The active job of layer ``index`` failed (or was lost) for the reason ``detail``."""
        record = self.layer(index)
        record["attempts"][-1].update(state=FAILED, detail=detail, finished_at=time.time())
        record["state"] = FAILED
        self._put(index, record)

    def record_result(self, index: int, values: np.ndarray, stds: np.ndarray) -> None:
        """Store layer ``index``'s expectation values ``(B, n)`` once; a second call is an error."""
        record = self.layer(index)
        if record["state"] != SUBMITTED:
            raise ValueError(f"layer {index} is {record['state']!r}, not awaiting a result; results are recorded once")
        result_file = self.folder / "results" / f"layer{index}.npz"
        save_arrays_atomic(result_file, values=values, stds=stds)
        now = time.time()
        record["attempts"][-1].update(state=DONE, finished_at=now)
        record.update(state=DONE, result_file=str(result_file.relative_to(self.folder)), fetched_at=now)
        self._put(index, record)

    def inputs(self, index: int) -> np.ndarray | None:
        record = self.layer(index)
        if "inputs_file" not in record:
            return None
        with np.load(self.folder / record["inputs_file"]) as stored:
            return stored["inputs"]

    def result(self, index: int) -> np.ndarray | None:
        """Layer ``index``'s recorded expectation values ``(B, n)``, or None."""
        record = self.layer(index)
        if record["state"] != DONE:
            return None
        with np.load(self.folder / record["result_file"]) as stored:
            return stored["values"]

    def jobs_submitted(self) -> int:
        return sum(len(record["attempts"]) for record in self.data["layers"].values())

    def _inputs_file(self, index: int) -> Path:
        return self.folder / "inputs" / f"layer{index}.npz"

    def _put(self, index: int, record: dict) -> None:
        self.data["layers"][str(index)] = record
        write_text_atomic(self.path, json.dumps(self.data, indent=1) + "\n")
