"""IBM Runtime: backends, EstimatorV2 job services and the batched ``ibm`` executor.

A *job service* submits Estimator PUBs and later answers, by job id alone, whether a job is done and
what it returned, so a caller can stop after submitting and come back from another process:

- :class:`IbmJobService` talks to IBM Quantum through ``QiskitRuntimeService`` (credentials from
  ``QISKIT_IBM_TOKEN`` / ``QISKIT_IBM_INSTANCE`` / ``QISKIT_IBM_CHANNEL`` or a saved account; never
  written anywhere). Jobs run in a Batch or Session (``runtime.mode``) with the backend YAML's
  resilience level, dynamical decoupling and twirling.
- :class:`LocalJobService` is local testing mode: the same EstimatorV2 with a fake backend from
  ``qiskit_ibm_runtime.fake_provider`` (its noise model on Aer). There is no job server, so a job
  runs to completion inside :meth:`~LocalJobService.submit` and its result is kept in a spool folder,
  where IBM would keep it in the cloud. IBM-side options (resilience, decoupling, twirling) have no
  effect in this mode.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from qml_imaging.quantum.backends import BackendConfig, ibm_credentials_present
from qml_imaging.quantum.executors import Executor
from qml_imaging.quantum.isa import IsaCircuit, transpile_template
from qml_imaging.runs import save_arrays_atomic, write_text_atomic

FINISHED_OK, FINISHED_BADLY, WAITING = "DONE", "ERROR", "PENDING"
DEFAULT_HARDWARE_SHOTS = 4096
"""Shots per parameter set when an ``ibm`` backend YAML leaves ``shots`` null."""


@dataclass(frozen=True)
class JobState:
    """``status`` is DONE, ERROR (``detail`` says why; a lost job is an error) or PENDING (``detail``: IBM's status)."""

    status: str
    detail: str = ""


def fake_backend(name: str):
    """A fake IBM backend from ``qiskit_ibm_runtime.fake_provider`` by class name (``FakeManilaV2``)."""
    from qiskit_ibm_runtime import fake_provider

    backend_class = getattr(fake_provider, name, None)
    if backend_class is None or not name.startswith("Fake"):
        raise ValueError(f"unknown fake backend {name!r}; expected one of {fake_backend_names()}")
    return backend_class()


def fake_backend_names() -> list[str]:
    """Names of the fake backends of ``qiskit_ibm_runtime.fake_provider`` (V2 interface)."""
    from qiskit_ibm_runtime import fake_provider
    from qiskit_ibm_runtime.fake_provider.fake_backend import FakeBackendV2

    return sorted(name for name, value in vars(fake_provider).items()
                  if isinstance(value, type) and issubclass(value, FakeBackendV2) and value is not FakeBackendV2)


def runtime_service():
    """``QiskitRuntimeService`` from the environment or a saved account; clear errors, token never echoed."""
    if not ibm_credentials_present():
        raise PermissionError(
            "no IBM Quantum credentials: set QISKIT_IBM_TOKEN (and QISKIT_IBM_INSTANCE) in the environment, "
            "or save an account once with QiskitRuntimeService.save_account(...); "
            "to test locally use a fake backend such as device_name: FakeManilaV2"
        )
    from qiskit_ibm_runtime import QiskitRuntimeService

    options = {}
    if os.environ.get("QISKIT_IBM_TOKEN"):
        options = {
            "channel": os.environ.get("QISKIT_IBM_CHANNEL", "ibm_quantum_platform"),
            "token": os.environ["QISKIT_IBM_TOKEN"],
            "instance": os.environ.get("QISKIT_IBM_INSTANCE"),
        }
    try:
        return QiskitRuntimeService(**options)
    except Exception as error:  # the service's errors may quote the request; keep the token out of ours
        raise RuntimeError(f"could not open the IBM Quantum service ({type(error).__name__}); check the "
                           "credentials, the instance and the network") from None


def ibm_backend(service, name: str):
    """The IBM backend ``name`` of ``service``, with the names the account can use in the error."""
    try:
        return service.backend(name)
    except Exception as error:
        try:
            known = sorted(b.name for b in service.backends())
        except Exception:
            known = "(could not list them)"
        raise ValueError(f"unknown IBM backend {name!r} ({type(error).__name__}); this account has {known}") from None


def hardware_shots(config: BackendConfig) -> int:
    """Shots per parameter set: the YAML's, or :data:`DEFAULT_HARDWARE_SHOTS`."""
    return config.shots if config.shots is not None else DEFAULT_HARDWARE_SHOTS


def transpile_for(config: BackendConfig, template, weights, backend) -> IsaCircuit:
    """``template`` with ``weights`` as an ISA circuit of ``backend`` at the config's optimisation
    level, seeded by its ``seed`` (0 when unset)."""
    return transpile_template(template, weights, backend, config.optimization_level, seed=config.seed or 0)


def configure_estimator(estimator, config: BackendConfig, *, local: bool) -> None:
    """Set shots, seed (local) and the YAML's IBM-side options on an ``EstimatorV2``."""
    estimator.options.default_shots = hardware_shots(config)
    if local:
        if config.seed is not None:
            estimator.options.simulator.seed_simulator = config.seed
        return
    runtime = config.runtime
    estimator.options.resilience_level = runtime.resilience_level
    estimator.options.dynamical_decoupling.enable = runtime.dynamical_decoupling.enable
    estimator.options.dynamical_decoupling.sequence_type = runtime.dynamical_decoupling.sequence_type
    estimator.options.twirling.enable_gates = runtime.twirling.enable_gates
    estimator.options.twirling.enable_measure = runtime.twirling.enable_measure
    estimator.options.twirling.num_randomizations = runtime.twirling.num_randomizations


class LocalJobService:
    """Local testing mode on a fake backend; results spooled under ``spool_dir`` (or kept in memory)."""

    local = True

    def __init__(self, config: BackendConfig, spool_dir: str | Path | None = None):
        self.config = config
        self.backend = fake_backend(config.device_name)
        self.spool_dir = Path(spool_dir) if spool_dir is not None else None
        self._memory: dict[str, dict] = {}

    def submit(self, pubs: list) -> str:
        from qiskit_ibm_runtime import EstimatorV2

        estimator = EstimatorV2(mode=self.backend)
        configure_estimator(estimator, self.config, local=True)
        job = estimator.run(pubs)
        job_id = job.job_id()
        try:
            result = job.result()
        except Exception as error:
            self._keep(job_id, {"error": f"{type(error).__name__}: {error}"})
        else:
            self._keep(job_id, {"evs": [np.asarray(r.data.evs) for r in result],
                                "stds": [np.asarray(r.data.stds) for r in result]})
        return job_id

    def state(self, job_id: str) -> JobState:
        kept = self._kept(job_id)
        if kept is None:
            return JobState(FINISHED_BADLY, "lost: local testing mode kept no result for this job")
        if "error" in kept:
            return JobState(FINISHED_BADLY, kept["error"])
        return JobState(FINISHED_OK)

    def result(self, job_id: str) -> list[tuple[np.ndarray, np.ndarray]]:
        kept = self._kept(job_id)
        if kept is None or "error" in kept:
            raise RuntimeError(f"job {job_id} has no result: {self.state(job_id).detail}")
        return list(zip(kept["evs"], kept["stds"]))

    def _keep(self, job_id: str, outcome: dict) -> None:
        if self.spool_dir is None:
            self._memory[job_id] = outcome
            return
        if "error" in outcome:
            write_text_atomic(self.spool_dir / f"{job_id}.error.json", json.dumps(outcome))
            return
        arrays = {f"{kind}_{k}": a for kind in ("evs", "stds") for k, a in enumerate(outcome[kind])}
        save_arrays_atomic(self.spool_dir / f"{job_id}.npz", **arrays)

    def _kept(self, job_id: str) -> dict | None:
        if self.spool_dir is None:
            return self._memory.get(job_id)
        error = self.spool_dir / f"{job_id}.error.json"
        if error.is_file():
            return json.loads(error.read_text())
        path = self.spool_dir / f"{job_id}.npz"
        if not path.is_file():
            return None
        with np.load(path) as stored:
            count = sum(1 for key in stored.files if key.startswith("evs_"))
            return {kind: [stored[f"{kind}_{k}"] for k in range(count)] for kind in ("evs", "stds")}


class IbmJobService:
    """IBM Quantum through ``QiskitRuntimeService``; jobs are looked up by id, so any process can fetch them."""

    local = False

    def __init__(self, config: BackendConfig):
        self.config = config
        self.service = runtime_service()
        self.backend = ibm_backend(self.service, config.device_name)
        self._mode = None

    def submit(self, pubs: list) -> str:
        from qiskit_ibm_runtime import EstimatorV2

        estimator = EstimatorV2(mode=self._execution_mode())
        configure_estimator(estimator, self.config, local=False)
        return estimator.run(pubs).job_id()

    def state(self, job_id: str) -> JobState:
        job = self.service.job(job_id)
        status = str(job.status())
        if status == "DONE":
            return JobState(FINISHED_OK)
        if status in ("ERROR", "CANCELLED"):
            return JobState(FINISHED_BADLY, f"{status}: {job.error_message() or 'no message'}")
        return JobState(WAITING, status)

    def result(self, job_id: str) -> list[tuple[np.ndarray, np.ndarray]]:
        result = self.service.job(job_id).result()
        return [(np.asarray(r.data.evs), np.asarray(r.data.stds)) for r in result]

    def _execution_mode(self):
        if self.config.runtime.mode == "job":
            return self.backend
        if self._mode is None:
            from qiskit_ibm_runtime import Batch, Session

            self._mode = (Batch if self.config.runtime.mode == "batch" else Session)(backend=self.backend)
        return self._mode


def ibm_backend_config(spec: str | Path | BackendConfig) -> BackendConfig:
    """An ``ibm`` backend config from a ``hardware_configs`` name or YAML path, or a bare backend name
    (``ibm_brisbane``, ``FakeBrisbane``: default runtime options)."""
    from qml_imaging.config import ConfigError
    from qml_imaging.quantum.backends import backend_config

    try:
        config = backend_config(spec)
    except ConfigError:
        name = str(spec)
        if not name.startswith(("Fake", "ibm_")):
            raise
        config = BackendConfig(backend="ibm", device_name=name)
    if config.backend != "ibm":
        raise ValueError(f"backend {str(spec)!r} is of kind {config.backend!r}; IBM Runtime jobs need a backend of "
                         "kind 'ibm' (a hardware_configs/ibm_*.yaml, an IBM backend name or a Fake* backend name)")
    return config


def job_service(config: BackendConfig, spool_dir: str | Path | None = None) -> LocalJobService | IbmJobService:
    """The job service of an ``ibm`` backend config: local testing mode for ``Fake*`` names."""
    if config.backend != "ibm":
        raise ValueError(f"IBM Runtime jobs need a backend config of kind 'ibm', got {config.backend!r}")
    if config.device_name.startswith("Fake"):
        return LocalJobService(config, spool_dir)
    return IbmJobService(config)


def wait_for(jobs, job_id: str, poll_seconds: float) -> JobState:
    """Poll ``job_id`` until it finishes; returns its final state."""
    while True:
        state = jobs.state(job_id)
        if state.status != WAITING:
            return state
        time.sleep(poll_seconds)


class RuntimeExecutor(Executor):
    """The ``ibm`` executor: a whole batch of inputs is one EstimatorV2 PUB (one job), run synchronously.

    Evaluation only: the outputs carry no gradient. Transpiled circuits are cached per weights.
    """

    def __init__(self, config: BackendConfig, jobs: LocalJobService | IbmJobService | None = None):
        jobs = jobs or job_service(config)
        super().__init__(config, jobs.backend.num_qubits)
        self.jobs = jobs
        self._transpiled: dict[tuple, IsaCircuit] = {}

    def describe(self) -> str:
        return f"'ibm' ({self.config.device_name})"

    def isa_circuit(self, template, weights: torch.Tensor) -> IsaCircuit:
        """``template`` with ``weights`` transpiled for this backend (cached)."""
        values = weights.detach().cpu().double().numpy()
        key = (id(template.function), values.tobytes())
        if key not in self._transpiled:
            self._transpiled[key] = transpile_for(self.config, template, values, self.jobs.backend)
        return self._transpiled[key]

    def _run(self, template, inputs, weights):
        isa = self.isa_circuit(template, weights)
        job_id = self.jobs.submit([isa.pub(inputs.detach().cpu().double().numpy())])
        state = wait_for(self.jobs, job_id, self.config.runtime.poll_seconds)
        if state.status != FINISHED_OK:
            raise RuntimeError(f"IBM Runtime job {job_id} on {self.config.device_name} failed: {state.detail}")
        values, _ = self.jobs.result(job_id)[0]
        return torch.as_tensor(values, dtype=inputs.dtype)
