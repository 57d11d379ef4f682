"""IBM Runtime: EstimatorV2 job services and the batched ``ibm`` executor.

A *job service* submits Estimator PUBs and later answers, by job id alone, whether a job is done and
what it returned, so a caller can stop after submitting and come back from another process. Each
submission may carry a *tag* (a Runtime job tag, unique per attempt); :meth:`find` answers which
job, if any, was accepted under a tag, so a process killed between ``submit`` returning and the job
id being written down can still learn the id instead of submitting again:

- :class:`IbmJobService` talks to IBM Quantum through ``QiskitRuntimeService`` (credentials from
  ``QISKIT_IBM_TOKEN`` / ``QISKIT_IBM_INSTANCE`` / ``QISKIT_IBM_CHANNEL`` or a saved account; never
  written anywhere). Jobs run in a Batch or Session (``runtime.mode``) with the backend YAML's
  resilience level, dynamical decoupling and twirling.
- :class:`LocalJobService` is local testing mode: the same EstimatorV2 with a fake device from
  ``qiskit_ibm_runtime.fake_provider`` (its noise model on Aer). There is no job server, so a job
  runs to completion inside :meth:`~LocalJobService.submit` and its result is kept in a spool folder,
  where IBM would keep it in the cloud. IBM-side options (resilience, decoupling, twirling) have no
  effect in this mode.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from qml_imaging.extras import require
from qml_imaging.quantum.angles import AngleForm, angle_form
from qml_imaging.quantum.backends import BackendSpec
from qml_imaging.quantum.executors import Executor
from qml_imaging.quantum.ibm import fake_device, ibm_device, is_fake_device, runtime_service
from qml_imaging.quantum.isa import IsaCircuit, template_circuit, transpile_template
from qml_imaging.quantum.readout import mitigate_z, reported_errors
from qml_imaging.quantum.shift import Estimate, generator_states, gradient_rule, sampled_expvals, set_generator_states
from qml_imaging.runs import save_arrays_atomic, write_text_atomic

FINISHED_OK, FINISHED_BADLY, WAITING = "DONE", "ERROR", "PENDING"
DEFAULT_HARDWARE_SHOTS = 4096
"""Shots per parameter set when an ``ibm`` backend YAML leaves ``shots`` null."""


@dataclass(frozen=True)
class JobState:
    """``status`` is DONE, ERROR (``detail`` says why; a lost job is an error) or PENDING (``detail``: IBM's status)."""

    status: str
    detail: str = ""


def hardware_shots(spec: BackendSpec) -> int:
    """Shots per parameter set: the YAML's, or :data:`DEFAULT_HARDWARE_SHOTS`."""
    return spec.shots if spec.shots is not None else DEFAULT_HARDWARE_SHOTS


def transpile_for(spec: BackendSpec, template, weights, backend) -> IsaCircuit:
    """``template`` with ``weights`` as an ISA circuit of ``backend`` at the spec's optimisation
    level, seeded by its ``seed`` (0 when unset)."""
    return transpile_template(template, weights, backend, spec.optimization_level, seed=spec.seed or 0)


def configure_estimator(estimator, spec: BackendSpec, *, local: bool, tag: str | None = None) -> None:
    """Set shots, seed (local), the job ``tag`` and the YAML's IBM-side options on an ``EstimatorV2``."""
    estimator.options.default_shots = hardware_shots(spec)
    if tag is not None:
        estimator.options.environment.job_tags = [tag]
    if local:
        if spec.seed is not None:
            estimator.options.simulator.seed_simulator = spec.seed
        return
    runtime = spec.runtime
    estimator.options.resilience_level = runtime.resilience_level
    estimator.options.dynamical_decoupling.enable = runtime.dynamical_decoupling.enable
    estimator.options.dynamical_decoupling.sequence_type = runtime.dynamical_decoupling.sequence_type
    estimator.options.twirling.enable_gates = runtime.twirling.enable_gates
    estimator.options.twirling.enable_measure = runtime.twirling.enable_measure
    estimator.options.twirling.num_randomizations = runtime.twirling.num_randomizations


class LocalJobService:
    """Local testing mode on a fake backend; results spooled under ``spool_dir`` (or kept in memory)."""

    local = True

    def __init__(self, spec: BackendSpec, spool_dir: str | Path | None = None):
        self.spec = spec
        self.device = fake_device(spec.device_name)
        self.spool_dir = Path(spool_dir) if spool_dir is not None else None
        self._memory: dict[str, dict] = {}
        self._tags: dict[str, str] = {}

    def submit(self, pubs: list, tag: str | None = None, seed: int | None = None) -> str:
        """Run ``pubs`` as one job; with ``tag`` the job id is filed under the tag (``local_jobs/tags/``)
        as soon as the job exists, before it runs, the way IBM records a job's tags when it accepts it.
        ``seed`` seeds the simulator instead of the spec's ``seed``."""
        estimator = require("qiskit_ibm_runtime", "IBM Runtime jobs").EstimatorV2(mode=self.device)
        configure_estimator(estimator, self.spec, local=True, tag=tag)
        if seed is not None:
            estimator.options.simulator.seed_simulator = seed
        job = estimator.run(pubs)
        job_id = job.job_id()
        if tag is not None:
            self._file_tag(tag, job_id)
        try:
            result = job.result()
        except Exception as error:
            self._keep(job_id, {"error": f"{type(error).__name__}: {error}"})
        else:
            self._keep(job_id, {"evs": [np.asarray(r.data.evs) for r in result],
                                "stds": [np.asarray(r.data.stds) for r in result]})
        return job_id

    def find(self, tag: str) -> str | None:
        """The id of the job submitted under ``tag``, or None when no job was accepted under it."""
        if self.spool_dir is None:
            return self._tags.get(tag)
        path = self._tag_file(tag)
        if not path.is_file():
            return None
        try:
            filed = json.loads(path.read_text())
            if filed["tag"] != tag:
                raise ValueError(f"it files tag {filed['tag']!r}")
            return str(filed["job_id"])
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"the local job index {path} is damaged ({error}); it was written by qml-imaging's "
                             "local testing mode: delete it and the layer is submitted again") from None

    def state(self, job_id: str) -> JobState:
        """The state of a local-testing-mode job: finished with its kept result, or lost / failed."""
        kept = self._kept(job_id)
        if kept is None:
            return JobState(FINISHED_BADLY, "lost: local testing mode kept no result for this job")
        if "error" in kept:
            return JobState(FINISHED_BADLY, kept["error"])
        return JobState(FINISHED_OK)

    def result(self, job_id: str) -> list[tuple[np.ndarray, np.ndarray]]:
        """``[(evs, stds)]`` per PUB of a finished local job; RuntimeError when it has no result."""
        kept = self._kept(job_id)
        if kept is None or "error" in kept:
            raise RuntimeError(f"job {job_id} has no result: {self.state(job_id).detail}")
        return list(zip(kept["evs"], kept["stds"]))

    def _tag_file(self, tag: str) -> Path:
        return self.spool_dir / "tags" / (re.sub(r"[^A-Za-z0-9._-]", "_", tag) + ".json")

    def _file_tag(self, tag: str, job_id: str) -> None:
        if self.spool_dir is None:
            self._tags[tag] = job_id
            return
        write_text_atomic(self._tag_file(tag), json.dumps({"tag": tag, "job_id": job_id}))

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

    def __init__(self, spec: BackendSpec):
        self.spec = spec
        self.service = runtime_service()
        self.device = ibm_device(self.service, spec.device_name)
        self._mode = None

    def submit(self, pubs: list, tag: str | None = None, seed: int | None = None) -> str:
        """Submit ``pubs`` as one Estimator job, tagged ``tag`` (a Runtime job tag) when given
        (``seed`` is for simulators: hardware shots are not seeded)."""
        del seed
        estimator = require("qiskit_ibm_runtime", "IBM Runtime jobs").EstimatorV2(mode=self._execution_mode())
        configure_estimator(estimator, self.spec, local=False, tag=tag)
        return estimator.run(pubs).job_id()

    def find(self, tag: str) -> str | None:
        """The id of the job accepted under the Runtime job tag ``tag`` on this backend, or None.

        IBM stores a job's tags when it accepts the job, so a job that is not listed under its tag
        was never accepted. Tags are unique per attempt; should two jobs carry one, the oldest is
        the one answered (the same every time).
        """
        found = self.service.jobs(job_tags=[tag], backend_name=self.spec.device_name, limit=None)
        return found[-1].job_id() if found else None

    def state(self, job_id: str) -> JobState:
        """The IBM job's state: done, failed (with IBM's message) or still waiting."""
        job = self.service.job(job_id)
        status = str(job.status())
        if status == "DONE":
            return JobState(FINISHED_OK)
        if status in ("ERROR", "CANCELLED"):
            return JobState(FINISHED_BADLY, f"{status}: {job.error_message() or 'no message'}")
        return JobState(WAITING, status)

    def result(self, job_id: str) -> list[tuple[np.ndarray, np.ndarray]]:
        """``[(evs, stds)]`` per PUB of a finished IBM job (EstimatorV2 results)."""
        result = self.service.job(job_id).result()
        return [(np.asarray(r.data.evs), np.asarray(r.data.stds)) for r in result]

    def _execution_mode(self):
        if self.spec.runtime.mode == "job":
            return self.device
        if self._mode is None:
            runtime = require("qiskit_ibm_runtime", "IBM Runtime jobs")
            self._mode = (runtime.Batch if self.spec.runtime.mode == "batch" else runtime.Session)(backend=self.device)
        return self._mode


def job_service(spec: BackendSpec, spool_dir: str | Path | None = None) -> LocalJobService | IbmJobService:
    """The job service of an ``ibm`` backend spec: local testing mode for ``Fake*`` device names."""
    if spec.backend != "ibm":
        raise ValueError(f"IBM Runtime jobs need a backend spec of kind 'ibm', got {spec.backend!r}")
    if is_fake_device(spec.device_name):
        return LocalJobService(spec, spool_dir)
    return IbmJobService(spec)


def wait_for(jobs, job_id: str, poll_seconds: float) -> JobState:
    """Poll ``job_id`` until it finishes; returns its final state."""
    while True:
        state = jobs.state(job_id)
        if state.status != WAITING:
            return state
        time.sleep(poll_seconds)


class EstimatorRunner:
    """Runs angle forms (:mod:`qml_imaging.quantum.angles`) through a job service: one EstimatorV2 PUB
    of ``N`` parameter sets per call, the form's ISA circuit transpiled once; covariances are the
    estimator's ``stds`` squared on the diagonal (its readouts' correlations are not reported). Local
    jobs are seeded from a generator seeded by the spec's ``seed``."""

    def __init__(self, spec: BackendSpec, jobs: LocalJobService | IbmJobService):
        self.spec, self.jobs = spec, jobs
        self.seeds = np.random.default_rng(spec.seed)
        self._isa: dict[int, tuple] = {}

    def __call__(self, form: AngleForm, sets: np.ndarray) -> Estimate:
        circuit, observables = self._circuit(form)
        values = sets[:, [parameter.index for parameter in circuit.parameters]]
        job_id = self.jobs.submit([(circuit, [observables], values[:, None, :])],
                                  seed=int(self.seeds.integers(2**31)))
        state = wait_for(self.jobs, job_id, self.spec.runtime.poll_seconds)
        if state.status != FINISHED_OK:
            raise RuntimeError(f"IBM Runtime job {job_id} on {self.spec.device_name} failed: {state.detail}")
        evs, stds = self.jobs.result(job_id)[0]
        means = np.asarray(evs, dtype=np.float64).reshape(len(sets), -1)
        variances = np.asarray(stds, dtype=np.float64).reshape(len(sets), -1) ** 2
        return Estimate(means, variances[:, :, None] * np.eye(means.shape[1]))

    def _circuit(self, form: AngleForm) -> tuple:
        if id(form) not in self._isa:
            generate_preset_pass_manager = require("qiskit.transpiler", "transpiling").generate_preset_pass_manager
            manager = generate_preset_pass_manager(backend=self.jobs.device, seed_transpiler=self.spec.seed or 0,
                                                   optimization_level=self.spec.optimization_level)
            circuit = manager.run(form.qiskit_circuit(measure=False))
            SparsePauliOp = require("qiskit.quantum_info", "an observable").SparsePauliOp
            observables = [SparsePauliOp.from_sparse_list([("Z", [wire], 1.0)], num_qubits=form.n_qubits)
                           .apply_layout(circuit.layout) for wire in form.readout]
            self._isa[id(form)] = (circuit, observables)
        return self._isa[id(form)]


class RuntimeExecutor(Executor):
    """The ``ibm`` executor: a whole batch of inputs is one EstimatorV2 PUB (one job), run synchronously.

    Evaluation only: the outputs carry no gradient. Transpiled circuits are cached per weights. With the
    spec's ``readout_mitigation`` each <Z_j> is corrected for its physical qubit's reported readout errors
    (:mod:`qml_imaging.quantum.readout`).
    Without gradients the weights are bound into the circuit before transpiling (cached per weights)
    and the inputs are the PUB's parameters. When the inputs or weights need gradients, the batch and
    every circuit its parameter-shift or SPSA gradient needs are one PUB of the template's gate angles
    (:class:`EstimatorRunner`; :mod:`qml_imaging.quantum.shift`), the ISA circuit transpiled once.
    """

    def __init__(self, spec: BackendSpec, jobs: LocalJobService | IbmJobService):
        super().__init__(spec, jobs.device.num_qubits)
        self.jobs = jobs
        self._transpiled: dict[tuple, IsaCircuit] = {}
        self.runner = EstimatorRunner(spec, jobs)
        self.rule = gradient_rule(spec)

    def describe(self) -> str:
        """``'ibm'`` with the device name."""
        return f"'ibm' ({self.spec.device_name})"

    def isa_circuit(self, template, weights: torch.Tensor) -> IsaCircuit:
        """``template`` with ``weights`` transpiled for this backend (cached)."""
        values = weights.detach().cpu().double().numpy()
        key = (id(template.function), values.tobytes())
        if key not in self._transpiled:
            self._transpiled[key] = transpile_for(self.spec, template, values, self.jobs.device)
        return self._transpiled[key]

    def random_state(self) -> dict:
        """The training runner's seed generator and SPSA's direction generator, as plain data."""
        return generator_states(self.runner.seeds, self.rule)

    def set_random_state(self, state: object) -> None:
        """Inverse of :meth:`random_state`."""
        set_generator_states(self.runner.seeds, self.rule, state)

    def _run(self, template, inputs, weights, noise=None):
        if torch.is_grad_enabled() and (inputs.requires_grad or weights.requires_grad):
            form = angle_form(template)
            return sampled_expvals(form, form.angles(inputs, weights), self.runner, self.rule, noise).to(inputs.dtype)
        isa = self.isa_circuit(template, weights)
        job_id = self.jobs.submit([isa.pub(inputs.detach().cpu().double().numpy())])
        state = wait_for(self.jobs, job_id, self.spec.runtime.poll_seconds)
        if state.status != FINISHED_OK:
            raise RuntimeError(f"IBM Runtime job {job_id} on {self.spec.device_name} failed: {state.detail}")
        values, _ = self.jobs.result(job_id)[0]
        if self.spec.readout_mitigation:
            values = mitigate_z(values, reported_errors(self.jobs.device.target, isa.physical_qubits))
        return torch.as_tensor(values, dtype=inputs.dtype)

    def _sample(self, template, weights, shots, seed):
        generate_preset_pass_manager = require("qiskit.transpiler", "transpiling").generate_preset_pass_manager
        SamplerV2 = require("qiskit_ibm_runtime", "IBM Runtime jobs").SamplerV2

        circuit = template_circuit(template, weights.detach().cpu().double().numpy())
        circuit.measure_all()
        manager = generate_preset_pass_manager(backend=self.jobs.device, optimization_level=self.spec.optimization_level,
                                               seed_transpiler=self.spec.seed or 0)
        sampler = SamplerV2(mode=self.jobs.device)
        if seed is not None and self.jobs.local:
            sampler.options.simulator.seed_simulator = seed
        outcomes = sampler.run([manager.run(circuit)], shots=shots).result()[0].data.meas
        return np.unpackbits(outcomes.array, axis=1)[:, -template.n_qubits:][:, ::-1]  # clbit 0 is the last bit
