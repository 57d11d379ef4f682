"""Evaluating a trained hybrid model on IBM Runtime, one Estimator PUB per quantum layer.

A model's quantum layers depend on each other through its classical layers, so they are run in
order: the classical forward pass reaches quantum layer ``k`` with its whole batch of inputs
``(B, n_qubits)``; those inputs become the parameter array of one PUB (one job); when its result is
fetched, the forward pass continues to layer ``k + 1``. A 3-layer QIREN on 1024 pixels is thus 3
jobs, not 3072 circuits submitted one by one.

:class:`HardwareEvaluation` keeps every step in a :class:`~qml_imaging.quantum.jobstore.JobStore`,
so :meth:`~HardwareEvaluation.advance` can stop after any submission (``wait=False``, or a killed
process) and be called again later, from any process: submitted jobs are looked up by id, fetched
once, failed or lost jobs are resubmitted up to ``runtime.max_retries`` times with the reason kept.

Exactly once: every submission is preceded by an intent in the store naming the Runtime job tag of
that attempt, so a process killed between the service accepting a job and the job id being written
leaves enough to find the job again by its tag (see :meth:`HardwareEvaluation._resolve_intent`).
:meth:`~HardwareEvaluation.advance` holds the folder's exclusive lock (``run.lock``, the run-folder
lock of :mod:`qml_imaging.runs`), so two processes never submit or record for one folder at once.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from qml_imaging.quantum.backends import BackendSpec
from qml_imaging.quantum.executors import Executor
from qml_imaging.quantum.ibm import fake_device, fake_device_names, ibm_credentials_present, runtime_service
from qml_imaging.quantum.isa import IsaCircuit
from qml_imaging.quantum.jobstore import DONE, FAILED, JobStore
from qml_imaging.quantum.layer import QuantumLayer
from qml_imaging.quantum.readout import mitigate_z, reported_errors
from qml_imaging.quantum.runtime import (
    FINISHED_OK,
    WAITING,
    hardware_shots,
    job_service,
    transpile_for,
    wait_for,
)
from qml_imaging.runs import holding_lock, make_folder

INPUT_TOLERANCE = 1e-6
"""Largest change (radians) of a layer's inputs between submission and use of its result."""


class PendingLayer(Exception):
    """Quantum layer ``index`` has no result yet; ``inputs`` ``(B, n_qubits)`` are what it needs evaluated."""

    def __init__(self, index: int, inputs: torch.Tensor):
        super().__init__(f"quantum layer {index} awaits its result")
        self.index = index
        self.inputs = inputs


class StoredResultExecutor(Executor):
    """Answers quantum layer ``index`` from the job store (through ``results``, default the stored values), or
    raises :class:`PendingLayer`."""

    def __init__(self, spec: BackendSpec, max_qubits: int, store: JobStore, index: int,
                 results: Callable[[int], np.ndarray | None] | None = None):
        super().__init__(spec, max_qubits)
        self.store = store
        self.index = index
        self.results = results if results is not None else store.result

    def _run(self, template, inputs, weights, noise=None):
        values = self.results(self.index)
        if values is None:
            raise PendingLayer(self.index, inputs.detach())
        submitted = self.store.inputs(self.index)
        if submitted.shape != tuple(inputs.shape) or not np.allclose(
                submitted, inputs.detach().double().numpy(), atol=INPUT_TOLERANCE, rtol=0):
            raise ValueError(f"the inputs of quantum layer {self.index} differ from those submitted; the model or "
                             f"its coordinates changed since ({self.store.path}); evaluate again in a new folder")
        return torch.as_tensor(values, dtype=inputs.dtype)


class HardwareEvaluation:
    """``model(inputs)`` on an ``ibm`` backend, every quantum layer one job, persisted in ``folder``.

    ``model``: an ``nn.Module`` whose :class:`QuantumLayer` modules run in the order of
    ``model.modules()``; ``inputs``: the batch ``(B, ...)`` to evaluate (e.g. pixel coordinates).
    ``jobs``: a job service (default: from ``spec``; local testing mode keeps its results in
    ``folder/local_jobs``). ``log`` receives one line per submission, result and failure.
    """

    def __init__(self, model: nn.Module, inputs: torch.Tensor, spec: BackendSpec, folder: str | Path, jobs=None,
                 log: Callable[[str], None] = lambda message: None):
        self.model = model
        self.log = log
        self.inputs = inputs
        self.spec = spec
        self.folder = Path(folder)
        self.jobs = jobs if jobs is not None else job_service(spec, spool_dir=self.folder / "local_jobs")
        self.store = JobStore(self.folder, spec.device_name)
        self.layers = [m for m in model.modules() if isinstance(m, QuantumLayer)]
        if not self.layers:
            raise ValueError(f"{type(model).__name__} has no QuantumLayer to evaluate on hardware")
        for index, layer in enumerate(self.layers):
            if layer.n_qubits > self.jobs.device.num_qubits:
                raise ValueError(f"quantum layer {index} ({layer.template.name}) needs {layer.n_qubits} qubits but "
                                 f"device {spec.device_name!r} has {self.jobs.device.num_qubits}")
        self._isa: dict[int, IsaCircuit] = {}

    def isa_circuit(self, index: int) -> IsaCircuit:
        """Layer ``index``'s circuit, trained weights fixed, transpiled for the backend (the one
        submitted before, if any, as kept in ``circuits/``)."""
        if index not in self._isa:
            layer = self.layers[index]
            kept = self._circuit_file(index)
            if kept.is_file():
                self._isa[index] = IsaCircuit.load(kept, layer.template.name, layer.n_qubits)
            else:
                self._isa[index] = transpile_for(self.spec, layer.template, layer.weights.detach().double(),
                                                 self.jobs.device)
        return self._isa[index]

    def layer_result(self, index: int) -> np.ndarray | None:
        """Layer ``index``'s <Z> values ``(B, n_outputs)`` as stored, corrected for the reported readout errors of
        their physical qubits when the spec asks for ``readout_mitigation``; None before its result is in."""
        values = self.store.result(index)
        if values is None or not self.spec.readout_mitigation:
            return values
        return mitigate_z(values, self.readout_errors(index))

    def readout_errors(self, index: int) -> np.ndarray:
        """``(n, 2)`` ``[p10, p01]`` the device reports for the qubits that read layer ``index``'s wires."""
        return reported_errors(self.jobs.device.target, self.isa_circuit(index).physical_qubits)

    def _circuit_file(self, index: int) -> Path:
        return self.folder / "circuits" / f"layer{index}.qpy"

    def plan(self) -> dict:
        """What :meth:`advance` will submit, before anything is submitted."""
        batch = len(self.inputs)
        layers = []
        for index, layer in enumerate(self.layers):
            isa = self.isa_circuit(index)
            layers.append({"layer": index, "template": layer.template.name, "qubits": layer.n_qubits,
                           "parameter_sets": batch, "observables": layer.n_outputs, **isa.metrics()})
        return {"backend": self.spec.device_name, "backend_qubits": self.jobs.device.num_qubits,
                "local_testing_mode": self.jobs.local, "shots": hardware_shots(self.spec),
                "readout_mitigation": self.spec.readout_mitigation,
                "circuits": len(self.layers), "parameter_sets": batch * len(self.layers),
                "jobs": len(self.layers), "circuit_executions_unbatched": batch * len(self.layers),
                "layers": layers}

    def advance(self, wait: bool = True) -> torch.Tensor | None:
        """Carry the evaluation as far as it goes; the model's outputs once every layer has its result.

        ``wait=False`` returns None right after a submission or when a submitted job is still
        running (come back later); ``wait=True`` polls every ``runtime.poll_seconds`` until done.

        The folder's lock is held throughout: another process working on the same folder makes this
        raise :class:`~qml_imaging.runs.RunInUseError` before anything is read, submitted or recorded.
        """
        make_folder(self.folder)
        with holding_lock(self.folder):
            self.store.reload()  # what the last holder of the lock wrote
            if not self.store.path.is_file():
                self.store.save()  # jobs.json first: evaluation files without it mean it was lost
            return self._advance(wait)

    def _advance(self, wait: bool) -> torch.Tensor | None:
        executors = [layer.executor for layer in self.layers]
        for index, layer in enumerate(self.layers):
            layer.executor = StoredResultExecutor(self.spec, self.jobs.device.num_qubits, self.store, index,
                                                  self.layer_result)
        self.model.eval()
        try:
            while True:
                try:
                    with torch.no_grad():
                        return self.model(self.inputs)
                except PendingLayer as pending:
                    if not self._progress(pending, wait):
                        return None
        finally:
            for layer, executor in zip(self.layers, executors):
                layer.executor = executor

    def status(self) -> list[dict]:
        """Per layer: its state, job ids, for a running job the service's current status and, for a
        submission whose job id was never recorded, its tag (``unrecorded_tag``)."""
        rows = []
        for index in range(len(self.layers)):
            record = self.store.layer(index)
            row = {"layer": index, "state": record["state"], "jobs": [a["job_id"] for a in record["attempts"]],
                   "failures": [a.get("detail", "") for a in record["attempts"] if a["state"] == FAILED]}
            job_id = self.store.active_job(index)
            if job_id is not None:
                row["service_status"] = self.jobs.state(job_id).status
            intent = self.store.intent(index)
            if intent is not None:
                row["unrecorded_tag"] = intent["tag"]  # a submission whose job id was never written; fetch looks it up
            rows.append(row)
        return rows

    def summary(self) -> dict:
        """Job count, retries and times from the store (Unix seconds), for the report."""
        layers = self.store.layers()
        attempts = [a for record in layers.values() for a in record["attempts"]]
        finished = [a["finished_at"] for a in attempts if "finished_at" in a]
        return {
            "jobs": self.store.jobs_submitted(),
            "layers": len(self.layers),
            "results_recorded": sum(record["state"] == DONE for record in layers.values()),
            "failed_attempts": [{"layer": i, "job_id": a["job_id"], "reason": a.get("detail", "")}
                                for i, record in layers.items() for a in record["attempts"] if a["state"] == FAILED],
            "wall_seconds": max(finished) - min(a["submitted_at"] for a in attempts) if finished else None,
        }

    def layer_agreement(self) -> list[dict]:
        """Per finished layer: its hardware ``<Z>`` against an exact evaluation of the same submitted inputs.

        The hardware values are readout-corrected when the spec asks for it (:meth:`layer_result`).
        ``correlation`` (Pearson, all outputs), ``damping`` (least-squares slope of hardware on exact:
        1 = no loss of contrast, depolarising noise pulls it towards 0) and ``rmse``. This separates
        a layer's own error from the error it inherits from the layers before it.
        """
        rows = []
        for index, layer in enumerate(self.layers):
            measured = self.layer_result(index)
            if measured is None:
                continue
            inputs = torch.as_tensor(self.store.inputs(index))
            exact = layer.executor.expvals(layer.template, inputs, layer.weights.detach().double()).numpy()
            rows.append({"layer": index, "correlation": float(np.corrcoef(measured.ravel(), exact.ravel())[0, 1]),
                         "damping": float((measured * exact).sum() / (exact * exact).sum()),
                         "rmse": float(np.sqrt(np.mean((measured - exact) ** 2)))})
        return rows

    def _progress(self, pending: PendingLayer, wait: bool) -> bool:
        """Move layer ``pending.index`` one step; False when the caller should stop for now."""
        index = pending.index
        if self.store.intent(index) is not None:
            self._resolve_intent(index)
        job_id = self.store.active_job(index)
        if job_id is not None:
            state = wait_for(self.jobs, job_id, self.spec.runtime.poll_seconds) if wait else self.jobs.state(job_id)
            if state.status == WAITING:
                return False
            if state.status == FINISHED_OK:
                values, stds = self.jobs.result(job_id)[0]
                self.store.record_result(index, values, stds)
                self.log(f"layer {index}: fetched job {job_id} ({len(values)} parameter sets)")
                return True
            self.store.record_failure(index, state.detail)
            self.log(f"layer {index}: job {job_id} failed: {state.detail}")
        failures = self.store.failed_attempts(index)
        if len(failures) > self.spec.runtime.max_retries:
            reasons = "; ".join(f"{a['job_id']}: {a['detail']}" for a in failures)
            raise RuntimeError(f"quantum layer {index} failed {len(failures)} times on {self.spec.device_name} "
                               f"(runtime.max_retries = {self.spec.runtime.max_retries}): {reasons}")
        self._submit(index, pending.inputs)
        return wait

    def _resolve_intent(self, index: int) -> None:
        """Settle layer ``index``'s intent left by a process that stopped before recording its job id.

        The job service is asked for the job carrying the intent's tag. Found: that job id is
        recorded as the attempt, exactly as if the process had lived, and nothing is submitted.
        Not found: the intent is cleared and the layer is submitted again under a new tag. This is
        safe because a service files a job's tags when it accepts the job (IBM Runtime stores them
        with the job; local testing mode writes ``local_jobs/tags/`` as the job is created, before it
        runs), and the lookup happens only after the process that held the intent is gone (the
        folder's lock passed to this one): a job not visible under its tag was never accepted, so
        it will never run, and submitting again cannot make a second job.
        """
        intent = self.store.intent(index)
        job_id = self.jobs.find(intent["tag"])
        if job_id is None:
            self.store.clear_intent(index)
            self.log(f"layer {index}: no job was accepted under tag {intent['tag']}; submitting it again")
            return
        self.store.record_submission(index, job_id, intent["pub"], self.store.inputs(index), intent["created_at"])
        self.log(f"layer {index}: found job {job_id} under tag {intent['tag']} (submitted by a process that "
                 "stopped before recording it); not submitted again")

    def _submit(self, index: int, inputs: torch.Tensor) -> None:
        isa = self.isa_circuit(index)
        values = inputs.double().numpy()
        pub = {"parameter_values_shape": [len(values), 1, isa.n_inputs], "observables_shape": [1, isa.n_inputs],
               "result_shape": [len(values), isa.n_inputs], "shots": hardware_shots(self.spec),
               "depth": isa.depth, "two_qubit_gates": isa.two_qubit_gates, "physical_qubits": isa.physical_qubits}
        tag = self.store.next_tag(index)
        self.store.record_intent(index, tag, pub, values)  # before the service can accept anything
        isa.save(self._circuit_file(index))
        submitted_at = time.time()
        job_id = self.jobs.submit([isa.pub(values)], tag=tag)
        self.store.record_submission(index, job_id, pub, values, submitted_at)
        self.log(f"layer {index}: submitted job {job_id} to {self.spec.device_name} under tag {tag} "
                 f"({len(values)} parameter sets, {isa.two_qubit_gates} two-qubit gates)")


def list_backends(include_ibm: bool | None = None) -> list[dict]:
    """Backends to evaluate on: every fake backend (local testing mode) and, with credentials, IBM's.

    Each row: ``name``, ``qubits``, ``kind`` ("fake" or "ibm") and, for IBM, ``pending_jobs`` (queue).
    """
    with warnings.catch_warnings():  # some fake backends warn that their error values are not typical
        warnings.simplefilter("ignore", UserWarning)
        rows = [{"name": name, "qubits": fake_device(name).num_qubits, "kind": "fake"} for name in fake_device_names()]
    if include_ibm is None:
        include_ibm = ibm_credentials_present()
    if include_ibm:
        for backend in runtime_service().backends():
            try:
                queue = backend.status().pending_jobs
            except Exception:
                queue = None
            rows.append({"name": backend.name, "qubits": backend.num_qubits, "kind": "ibm", "pending_jobs": queue})
    return rows
