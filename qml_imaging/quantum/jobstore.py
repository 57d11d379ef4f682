"""The job store of a hardware evaluation: ``jobs.json`` plus result files in one folder.

For every quantum layer of the evaluated model it records the PUB layout (parameter sets,
observables, shots, transpiled depth and two-qubit gates), each submission attempt (job id,
backend, times, final state and the reason of a failure) and, once fetched, where the expectation
values are. Everything is written atomically, so a process killed at any point leaves a store that
the next process continues from: jobs are looked up again by id, and a layer whose result has been
recorded is never fetched or counted again.

Before a layer is submitted, an *intent* is written: the Runtime job tag the job will carry
(``qml-imaging:<evaluation id>:layer<k>:attempt<n>``), its PUB layout and the time. A process
killed after the service accepted the job but before its id was recorded leaves the intent; the
next process looks the tag up (see :meth:`~qml_imaging.quantum.hardware.HardwareEvaluation`) instead
of submitting again.

Layout of ``jobs.json``::

    {"backend": "ibm_brisbane", "evaluation_id": "3f2a...", "layers": {"0": {"state": "pending|submitted|done|failed",
      "pub": {...}, "attempts": [{"job_id", "tag", "submitted_at", "finished_at", "state", "detail"}],
      "intent": {"tag", "pub", "created_at"} (only between intent and recorded submission),
      "result_file": "results/layer0.npz", "fetched_at": ...}}}

Times are Unix seconds.
"""

from __future__ import annotations

import json
import time
import uuid
import zipfile
from pathlib import Path

import numpy as np

from qml_imaging.runs import save_arrays_atomic, write_text_atomic

PENDING, SUBMITTED, DONE, FAILED = "pending", "submitted", "done", "failed"
EVALUATION_FILES = ("results", "inputs", "circuits", "local_jobs")
"""Folders an evaluation writes only after ``jobs.json`` exists: finding them without it means it was lost."""


class JobStore:
    """``folder/jobs.json`` with the inputs and results of every layer under ``folder``, run on the IBM
    (or fake) device ``device_name`` (recorded under the key ``backend``)."""

    def __init__(self, folder: str | Path, device_name: str):
        self.folder = Path(folder)
        self.path = self.folder / "jobs.json"
        self.device_name = device_name
        self.reload()

    def reload(self) -> None:
        """Read ``jobs.json`` again (another process may have written it since).

        A folder with evaluation files (``results/``, ``inputs/``, ``circuits/``, ``local_jobs/``) but
        no ``jobs.json`` is refused: the store was lost, and starting over would submit (and pay for)
        every layer again and overwrite the results. A damaged ``jobs.json`` is refused the same way.
        """
        if self.path.is_file():
            self.data = self._read()
            if self.data["backend"] != self.device_name:
                raise ValueError(f"{self.path} records jobs on {self.data['backend']!r}, not {self.device_name!r}; "
                                 "evaluate on another device in another folder")
            self.data.setdefault("evaluation_id", uuid.uuid4().hex)  # stores written before job tags
            return
        present = [f"{name}/ ({sum(1 for p in (self.folder / name).rglob('*') if p.is_file())} files)"
                   for name in EVALUATION_FILES
                   if (self.folder / name).is_dir() and any(p.is_file() for p in (self.folder / name).rglob("*"))]
        if present:
            raise RuntimeError(
                f"{self.path} is missing but {self.folder} holds an evaluation ({', '.join(present)}); without its "
                "job store the submitted jobs and results cannot be matched, and starting over would submit every "
                f"layer again: restore jobs.json from a backup, or move {self.folder} away and run "
                "`qml-imaging hardware submit` again for a new evaluation")
        self.data = {"backend": self.device_name, "evaluation_id": uuid.uuid4().hex, "layers": {}}

    def _read(self) -> dict:
        try:
            data = json.loads(self.path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            problem = f"not valid JSON ({error})"
        else:
            problem = None
            if not isinstance(data, dict) or not isinstance(data.get("backend"), str) \
                    or not isinstance(data.get("layers"), dict) \
                    or not all(isinstance(r, dict) and isinstance(r.get("attempts"), list) and "state" in r
                               for r in data["layers"].values()):
                problem = "not a job store (it needs \"backend\" and \"layers\" with a state and attempts per layer)"
        if problem is not None:
            raise ValueError(
                f"{self.path} is damaged: {problem}; it is the record of the jobs submitted for this evaluation: "
                f"restore it from a backup (the job ids are also on the IBM Quantum dashboard, tagged "
                f"qml-imaging:...), or move {self.folder} away and run `qml-imaging hardware submit` again")
        return data

    def save(self) -> None:
        """Write ``jobs.json`` (atomically) as it stands; the first write marks the folder as an evaluation."""
        write_text_atomic(self.path, json.dumps(self.data, indent=1) + "\n")

    @property
    def evaluation_id(self) -> str:
        """A random id of this evaluation, part of every job tag."""
        return self.data["evaluation_id"]

    def layer(self, index: int) -> dict:
        """The record of layer ``index`` (a fresh pending one if never submitted)."""
        return self.data["layers"].get(str(index), {"state": PENDING, "attempts": []})

    def layers(self) -> dict[int, dict]:
        """The records of every layer, by layer index in ascending order."""
        return {int(k): v for k, v in sorted(self.data["layers"].items(), key=lambda item: int(item[0]))}

    def active_job(self, index: int) -> str | None:
        """Job id of layer ``index``'s submitted, not yet fetched attempt."""
        record = self.layer(index)
        return record["attempts"][-1]["job_id"] if record["state"] == SUBMITTED else None

    def failed_attempts(self, index: int) -> list[dict]:
        """The failed submissions of layer ``index``."""
        return [a for a in self.layer(index)["attempts"] if a["state"] == FAILED]

    def next_tag(self, index: int) -> str:
        """The Runtime job tag of layer ``index``'s next attempt, unique to this evaluation and attempt."""
        return f"qml-imaging:{self.evaluation_id}:layer{index}:attempt{len(self.layer(index)['attempts']) + 1}"

    def intent(self, index: int) -> dict | None:
        """Layer ``index``'s intent to submit (``tag``, ``pub``, ``created_at``), if its job id is not recorded yet."""
        return self.layer(index).get("intent")

    def record_intent(self, index: int, tag: str, pub: dict, inputs: np.ndarray) -> None:
        """Layer ``index`` is about to be submitted under ``tag``; written (with ``inputs``) before the
        service is called, so a process killed before :meth:`record_submission` can be resumed by tag."""
        record = self.layer(index)
        if record.get("intent") is not None:
            raise ValueError(f"layer {index} already has an unresolved submission under tag "
                             f"{record['intent']['tag']!r}; resolve it before submitting again")
        save_arrays_atomic(self._inputs_file(index), inputs=inputs)
        record.update(intent={"tag": tag, "pub": pub, "created_at": time.time()},
                      inputs_file=str(self._inputs_file(index).relative_to(self.folder)))
        self._put(index, record)

    def clear_intent(self, index: int) -> None:
        """Forget layer ``index``'s intent: no job was accepted under its tag."""
        record = self.layer(index)
        record.pop("intent", None)
        self._put(index, record)

    def record_submission(self, index: int, job_id: str, pub: dict, inputs: np.ndarray, submitted_at: float) -> None:
        """Layer ``index`` was submitted as ``job_id`` at ``submitted_at``; ``inputs`` ``(B, n)`` are kept
        to check its result against. Resolves the layer's intent (its tag is kept with the attempt)."""
        save_arrays_atomic(self._inputs_file(index), inputs=inputs)
        record = self.layer(index)
        intent = record.pop("intent", None)
        record.update(state=SUBMITTED, pub=pub, inputs_file=str(self._inputs_file(index).relative_to(self.folder)))
        attempt = {"job_id": job_id, "submitted_at": submitted_at, "state": SUBMITTED}
        if intent is not None:
            attempt["tag"] = intent["tag"]
        record["attempts"].append(attempt)
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
        """The inputs ``(B, n_qubits)`` submitted for layer ``index``, or None before its submission."""
        record = self.layer(index)
        if "inputs_file" not in record:
            return None
        return self._load(index, record["inputs_file"], "inputs", "the inputs submitted for")

    def result(self, index: int) -> np.ndarray | None:
        """Layer ``index``'s recorded expectation values ``(B, n)``, or None."""
        record = self.layer(index)
        if record["state"] != DONE:
            return None
        return self._load(index, record["result_file"], "values", "the result of")

    def _load(self, index: int, relative: str, key: str, what: str) -> np.ndarray:
        """Array ``key`` of the file ``relative`` (to the folder); a missing or damaged file is a clear error."""
        path = self.folder / relative
        try:
            with np.load(path) as stored:
                return stored[key]
        except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as error:
            jobs = [a["job_id"] for a in self.layer(index)["attempts"]]
            raise ValueError(
                f"{path}, {what} quantum layer {index} (job {jobs[-1] if jobs else 'none'}), is missing or damaged "
                f"({type(error).__name__}: {error}); restore it from a backup, or move {self.folder} away and run "
                "`qml-imaging hardware submit` again") from None

    def jobs_submitted(self) -> int:
        """How many jobs were submitted, over every layer and attempt."""
        return sum(len(record["attempts"]) for record in self.data["layers"].values())

    def _inputs_file(self, index: int) -> Path:
        return self.folder / "inputs" / f"layer{index}.npz"

    def _put(self, index: int, record: dict) -> None:
        self.data["layers"][str(index)] = record
        self.save()
