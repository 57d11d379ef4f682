"""IBM Runtime path: ISA circuits, one PUB per layer, the persistent job store, retries and errors."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from qml_imaging.config import ConfigError
from qml_imaging.quantum.backends import BackendSpec, backend_spec, ibm_backend_spec
from qml_imaging.quantum.circuits import qiren_block
from qml_imaging.quantum.hardware import HardwareEvaluation
from qml_imaging.quantum.ibm import fake_device, runtime_service
from qml_imaging.quantum.isa import IsaCircuit, template_circuit, transpile_template
from qml_imaging.quantum.jobstore import JobStore
from qml_imaging.quantum.layer import QuantumLayer
from qml_imaging.quantum.runtime import (
    FINISHED_BADLY,
    JobState,
    LocalJobService,
    configure_estimator,
    job_service,
)
from tests.quantum.conftest import random_batch, reference_expvals

pytestmark = pytest.mark.qiskit

MANILA = BackendSpec(backend="ibm", device_name="FakeManilaV2", shots=8000, seed=7,
                       runtime={"poll_seconds": 0.01, "max_retries": 1})


def exact_isa_expvals(isa, inputs):
    """Noiseless <Z_j> of a transpiled circuit, through its layout: checks the ISA conversion exactly."""
    from qiskit.quantum_info import Statevector

    rows = []
    for values in inputs:
        state = Statevector(isa.circuit.assign_parameters(values))
        rows.append([state.expectation_value(observable).real for observable in isa.observables])
    return torch.tensor(rows, dtype=torch.float64)


def test_template_as_qiskit_circuit_matches_pennylane(template):
    from qiskit.quantum_info import SparsePauliOp, Statevector

    inputs, weights = random_batch(template, 3)
    circuit = template_circuit(template, weights)
    assert len(circuit.parameters) == template.n_qubits
    expected = reference_expvals(template, inputs, weights)
    for row, values in enumerate(inputs.numpy()):
        state = Statevector(circuit.assign_parameters(values))
        for wire in range(template.n_qubits):
            z = SparsePauliOp.from_sparse_list([("Z", [wire], 1.0)], num_qubits=template.n_qubits)
            assert state.expectation_value(z).real == pytest.approx(expected[row, wire].item(), abs=1e-9)


def test_transpiled_circuit_keeps_the_outputs_through_its_layout():
    template = qiren_block(4, reuploads=2, sublayers=2)
    inputs, weights = random_batch(template, 4)
    isa = transpile_template(template, weights, fake_device("FakeManilaV2"), optimization_level=3)
    assert set(isa.circuit.count_ops()) <= {"rz", "sx", "x", "cx", "measure", "barrier"}
    assert isa.two_qubit_gates > 0 and len(isa.physical_qubits) == 4
    torch.testing.assert_close(exact_isa_expvals(isa, inputs.numpy()), reference_expvals(template, inputs, weights),
                               atol=1e-8, rtol=0)
    with pytest.raises(ValueError, match=r"inputs must have shape \(B, 4\), got \(4, 3\)"):
        isa.pub(inputs[:, :3].numpy())


def test_one_pub_evaluates_a_whole_batch_with_shot_and_device_noise():
    template = qiren_block(3, reuploads=1, sublayers=2)
    inputs, weights = random_batch(template, 40)
    jobs = LocalJobService(MANILA)
    isa = transpile_template(template, weights, jobs.device)
    job_id = jobs.submit([isa.pub(inputs.numpy())])
    (values, stds), = jobs.result(job_id)
    assert values.shape == (40, 3) and stds.shape == (40, 3)
    error = np.abs(values - reference_expvals(template, inputs, weights).numpy())
    assert error.mean() < 0.15, "a shallow 3-qubit circuit on Manila's noise stays near the exact values"
    assert (error > 3 * stds).any(), "device noise should show beyond the shot noise"


def small_hybrid_model(n_qubits=3, seed=0):
    torch.manual_seed(seed)
    first = QuantumLayer(qiren_block(n_qubits, reuploads=1, sublayers=2))
    second = QuantumLayer(qiren_block(n_qubits, reuploads=1, sublayers=2))
    return nn.Sequential(nn.Linear(2, n_qubits), first, nn.Linear(n_qubits, n_qubits), nn.Tanh(), second,
                         nn.Linear(n_qubits, 1))


@pytest.fixture
def model_and_inputs():
    model = small_hybrid_model()
    inputs = torch.rand(48, 2, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        exact = model(inputs)
    return model, inputs, exact


def evaluation(model, inputs, folder, config=MANILA, jobs=None):
    """A fresh evaluation object, as a new process would build it from the folder."""
    return HardwareEvaluation(model, inputs, config, folder, jobs=jobs)


def test_every_layer_is_one_job_and_the_result_matches_exact_simulation(model_and_inputs, tmp_path):
    model, inputs, exact = model_and_inputs
    run = evaluation(model, inputs, tmp_path)
    plan = run.plan()
    assert plan["jobs"] == 2 and plan["circuit_executions_unbatched"] == 96
    assert [layer["parameter_sets"] for layer in plan["layers"]] == [48, 48]
    outputs = run.advance()
    assert run.store.jobs_submitted() == 2
    assert torch.mean((outputs - exact) ** 2).item() < 0.01
    for row in run.layer_agreement():
        assert row["correlation"] > 0.95 and 0.3 < row["damping"] <= 1.05  # noise damps, never amplifies
    assert [layer.executor.name for layer in run.layers] == ["fast", "fast"], "the layers' own executors are restored"


def test_detached_submission_is_finished_by_a_later_process_without_resubmitting(model_and_inputs, tmp_path):
    model, inputs, _ = model_and_inputs
    assert evaluation(model, inputs, tmp_path).advance(wait=False) is None
    stored = json.loads((tmp_path / "jobs.json").read_text())
    assert [record["state"] for record in stored["layers"].values()] == ["submitted"]
    later = evaluation(model, inputs, tmp_path)
    outputs = later.advance()
    assert later.store.jobs_submitted() == 2 and later.summary()["results_recorded"] == 2
    fetched_at = [r["fetched_at"] for r in later.store.layers().values()]
    again = evaluation(model, inputs, tmp_path)
    torch.testing.assert_close(again.advance(), outputs)
    assert again.store.jobs_submitted() == 2
    assert [r["fetched_at"] for r in again.store.layers().values()] == fetched_at, "fetched twice"


def test_a_process_killed_after_submission_loses_nothing_and_counts_each_result_once(
        model_and_inputs, tmp_path, monkeypatch):
    model, inputs, exact = model_and_inputs
    original = JobStore.record_result
    calls = {"n": 0}

    def killed_before_second_fetch(store, index, values, stds):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the process dies with layer 1 submitted, its result not yet recorded
        original(store, index, values, stds)

    monkeypatch.setattr(JobStore, "record_result", killed_before_second_fetch)
    with pytest.raises(KeyboardInterrupt):
        evaluation(model, inputs, tmp_path).advance()
    monkeypatch.setattr(JobStore, "record_result", original)
    submitted_job = JobStore(tmp_path, "FakeManilaV2").active_job(1)
    resumed = evaluation(model, inputs, tmp_path)
    outputs = resumed.advance()
    assert resumed.store.jobs_submitted() == 2, "the submitted job was fetched by id, not resubmitted"
    assert resumed.store.layer(1)["attempts"][-1]["job_id"] == submitted_job
    assert torch.mean((outputs - exact) ** 2).item() < 0.01
    with pytest.raises(ValueError, match="results are recorded once"):
        resumed.store.record_result(0, np.zeros((48, 3)), np.zeros((48, 3)))


def test_a_submitted_circuit_is_kept_and_reloaded_with_its_layout(tmp_path):
    template = qiren_block(3, reuploads=1, sublayers=2)
    inputs, weights = random_batch(template, 5)
    isa = transpile_template(template, weights, fake_device("FakeManilaV2"))
    isa.save(tmp_path / "layer.qpy")
    loaded = IsaCircuit.load(tmp_path / "layer.qpy", template.name, 3)
    assert loaded.physical_qubits == isa.physical_qubits
    torch.testing.assert_close(exact_isa_expvals(loaded, inputs.numpy()), reference_expvals(template, inputs, weights),
                               atol=1e-8, rtol=0)


class FailingFirst:
    """A job service whose first ``failures`` jobs end in an error."""

    def __init__(self, inner, failures):
        self.inner, self.failures, self.local, self.device = inner, failures, inner.local, inner.device
        self.failed = set()

    def submit(self, pubs, tag=None):
        job_id = self.inner.submit(pubs, tag=tag)
        if len(self.failed) < self.failures:
            self.failed.add(job_id)
        return job_id

    def find(self, tag):
        return self.inner.find(tag)

    def state(self, job_id):
        if job_id in self.failed:
            return JobState(FINISHED_BADLY, "ERROR: simulated calibration outage")
        return self.inner.state(job_id)

    def result(self, job_id):
        return self.inner.result(job_id)


def test_failed_jobs_are_retried_a_bounded_number_of_times_with_the_reason_kept(model_and_inputs, tmp_path):
    model, inputs, exact = model_and_inputs
    run = evaluation(model, inputs, tmp_path / "once", jobs=FailingFirst(LocalJobService(MANILA), failures=1))
    outputs = run.advance()
    summary = run.summary()
    assert summary["jobs"] == 3 and summary["results_recorded"] == 2
    assert summary["failed_attempts"][0]["reason"] == "ERROR: simulated calibration outage"
    assert torch.mean((outputs - exact) ** 2).item() < 0.01
    hopeless = evaluation(model, inputs, tmp_path / "always", jobs=FailingFirst(LocalJobService(MANILA), failures=9))
    with pytest.raises(RuntimeError, match=r"failed 2 times on FakeManilaV2 \(runtime.max_retries = 1\).*outage"):
        hopeless.advance()


def test_a_lost_local_job_is_resubmitted(model_and_inputs, tmp_path):
    model, inputs, _ = model_and_inputs
    evaluation(model, inputs, tmp_path).advance(wait=False)
    for spooled in (tmp_path / "local_jobs").glob("*.npz"):
        spooled.unlink()
    resumed = evaluation(model, inputs, tmp_path)
    resumed.advance()
    assert resumed.summary()["failed_attempts"][0]["reason"].startswith("lost")
    assert resumed.store.jobs_submitted() == 3


def test_changed_inputs_are_refused(model_and_inputs, tmp_path):
    model, inputs, _ = model_and_inputs
    evaluation(model, inputs, tmp_path).advance(wait=False)
    evaluation(model, inputs, tmp_path).advance(wait=False)
    with pytest.raises(ValueError, match="inputs of quantum layer 0 differ from those submitted"):
        evaluation(model, inputs + 0.1, tmp_path).advance()


def test_layers_wider_than_the_backend_and_unknown_backends_are_clear_errors(tmp_path, monkeypatch):
    model = small_hybrid_model(n_qubits=6)
    with pytest.raises(ValueError, match="quantum layer 0 \\(qiren\\) needs 6 qubits but device 'FakeManilaV2' has 5"):
        evaluation(model, torch.zeros(2, 2), tmp_path)
    with pytest.raises(ConfigError, match="unknown fake device 'FakeNowhere'.*FakeManilaV2"):
        ibm_backend_spec("FakeNowhere")
    with pytest.raises(ConfigError, match="backend 'aer_shots' is of kind 'qiskit.aer'; IBM Runtime jobs need"):
        ibm_backend_spec("aer_shots")
    with pytest.raises(ConfigError, match="unknown backend 'brisbane'"):
        ibm_backend_spec("brisbane")
    with pytest.raises(ConfigError, match="runtime options apply to backend 'ibm' only"):
        backend_spec({"backend": "qiskit.aer", "runtime": {"mode": "session"}})


def test_missing_credentials_are_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("QISKIT_IBM_TOKEN", raising=False)
    monkeypatch.setenv("QISKIT_IBM_CONFIG", str(tmp_path / "absent.json"))
    with pytest.raises(PermissionError, match="no IBM Quantum credentials.*QISKIT_IBM_TOKEN.*save_account"):
        job_service(ibm_backend_spec("ibm_brisbane"))


def test_a_failing_service_never_echoes_the_token(monkeypatch):
    import qiskit_ibm_runtime

    secret = "tok-123-secret"
    monkeypatch.setenv("QISKIT_IBM_TOKEN", secret)

    def refuse(**options):
        raise ValueError(f"invalid token {options['token']}")

    monkeypatch.setattr(qiskit_ibm_runtime, "QiskitRuntimeService", refuse)
    with pytest.raises(RuntimeError) as error:
        runtime_service()
    assert secret not in str(error.value) and error.value.__cause__ is None


def test_yaml_runtime_options_reach_the_estimator():
    from qiskit_ibm_runtime import EstimatorV2

    config = ibm_backend_spec("ibm_example")
    estimator = EstimatorV2(mode=fake_device("FakeManilaV2"))
    configure_estimator(estimator, config, local=False)
    options = estimator.options
    assert options.default_shots == 4096 and options.resilience_level == 1
    assert options.dynamical_decoupling.enable and options.dynamical_decoupling.sequence_type == "XY4"
    assert options.twirling.enable_measure and not options.twirling.enable_gates


def test_backend_listing_has_the_fake_devices_without_credentials():
    from qml_imaging.quantum.hardware import list_backends

    rows = {row["name"]: row for row in list_backends(include_ibm=False)}
    assert rows["FakeManilaV2"]["qubits"] == 5 and rows["FakeBrisbane"]["qubits"] == 127
    assert {row["kind"] for row in rows.values()} == {"fake"}


class FakeRuntimeJob:
    def __init__(self, status, message=None):
        self._status, self._message = status, message

    def status(self):
        return self._status

    def error_message(self):
        return self._message

    def result(self):
        class Data:
            evs, stds = np.ones((2, 3)), np.zeros((2, 3))

        class Pub:
            data = Data()

        return [Pub()]


def test_ibm_job_service_maps_runtime_states_and_submits_in_a_batch_with_the_yaml_options(monkeypatch):
    import qiskit_ibm_runtime

    from qml_imaging.quantum import runtime

    jobs = {"a": FakeRuntimeJob("DONE"), "b": FakeRuntimeJob("QUEUED"), "c": FakeRuntimeJob("ERROR", "qubit 3 down"),
            "d": FakeRuntimeJob("CANCELLED")}

    class Service:
        def job(self, job_id):
            return jobs[job_id]

    created = []
    real_estimator = qiskit_ibm_runtime.EstimatorV2

    class RecordingEstimator:
        def __init__(self, mode):
            self.mode = mode
            self.options = real_estimator(mode=fake_device("FakeManilaV2")).options
            created.append(self)

        def run(self, pubs):
            self.pubs = pubs
            return type("Job", (), {"job_id": lambda self: "new-job"})()

    class RecordingBatch:
        def __init__(self, backend):
            self.backend = backend

    monkeypatch.setattr(runtime, "runtime_service", Service)
    monkeypatch.setattr(runtime, "ibm_device", lambda service, name: fake_device("FakeManilaV2"))
    monkeypatch.setattr(qiskit_ibm_runtime, "EstimatorV2", RecordingEstimator)
    monkeypatch.setattr(qiskit_ibm_runtime, "Batch", RecordingBatch)
    service = job_service(ibm_backend_spec("ibm_example"))
    assert not service.local
    assert [service.state(j).status for j in "abcd"] == ["DONE", "PENDING", "ERROR", "ERROR"]
    assert service.state("c").detail == "ERROR: qubit 3 down" and service.state("b").detail == "QUEUED"
    (values, _), = service.result("a")
    assert values.shape == (2, 3)
    assert service.submit(["pub"]) == "new-job" and service.submit(["pub"]) == "new-job"
    assert isinstance(created[0].mode, RecordingBatch) and created[0].mode is created[1].mode, "one batch per process"
    assert created[0].options.dynamical_decoupling.sequence_type == "XY4"


class Counting:
    """A job service that counts the jobs submitted through it (one per process in these tests)."""

    def __init__(self, inner, fail_before_submit=False):
        self.inner, self.local, self.device = inner, inner.local, inner.device
        self.fail_before_submit = fail_before_submit
        self.submitted = []

    def submit(self, pubs, tag=None):
        if self.fail_before_submit:
            raise ConnectionError("the connection dropped before the service accepted the job")
        job_id = self.inner.submit(pubs, tag=tag)
        self.submitted.append(job_id)
        return job_id

    def find(self, tag):
        return self.inner.find(tag)

    def state(self, job_id):
        return self.inner.state(job_id)

    def result(self, job_id):
        return self.inner.result(job_id)


def spooled(folder):
    """A new process's local-testing-mode service on ``folder``'s spool."""
    return Counting(LocalJobService(MANILA, spool_dir=folder / "local_jobs"))


def test_a_job_accepted_but_not_recorded_is_found_by_its_tag_and_not_submitted_again(
        model_and_inputs, tmp_path, monkeypatch):
    model, inputs, exact = model_and_inputs
    original = JobStore.record_submission

    def killed_after_the_service_accepted(store, index, job_id, *args):
        if index == 1:
            raise KeyboardInterrupt  # the process dies with job_id known to the service, not to the store
        original(store, index, job_id, *args)

    monkeypatch.setattr(JobStore, "record_submission", killed_after_the_service_accepted)
    first = spooled(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        evaluation(model, inputs, tmp_path, jobs=first).advance()
    monkeypatch.setattr(JobStore, "record_submission", original)
    orphan = first.submitted[-1]
    intent = JobStore(tmp_path, "FakeManilaV2").intent(1)
    assert intent["tag"] == f"qml-imaging:{JobStore(tmp_path, 'FakeManilaV2').evaluation_id}:layer1:attempt1"
    second = spooled(tmp_path)
    resumed = evaluation(model, inputs, tmp_path, jobs=second)
    outputs = resumed.advance()
    assert len(first.submitted) + len(second.submitted) == 2 and second.submitted == [], "one job per layer in all"
    assert resumed.store.layer(1)["attempts"] == [
        {"job_id": orphan, "submitted_at": intent["created_at"], "state": "done", "tag": intent["tag"],
         "finished_at": resumed.store.layer(1)["attempts"][0]["finished_at"]}]
    assert resumed.store.intent(1) is None and resumed.store.jobs_submitted() == 2
    assert torch.mean((outputs - exact) ** 2).item() < 0.01
    assert len(list((tmp_path / "local_jobs").glob("*.npz"))) == 2


def test_an_intent_whose_job_was_never_accepted_is_cleared_and_submitted_once(model_and_inputs, tmp_path):
    model, inputs, _ = model_and_inputs
    with pytest.raises(ConnectionError):
        evaluation(model, inputs, tmp_path, jobs=Counting(LocalJobService(MANILA, tmp_path / "local_jobs"),
                                                          fail_before_submit=True)).advance()
    lost_tag = JobStore(tmp_path, "FakeManilaV2").intent(0)["tag"]
    again = spooled(tmp_path)
    resumed = evaluation(model, inputs, tmp_path, jobs=again)
    resumed.advance()
    assert len(again.submitted) == 2 and resumed.store.jobs_submitted() == 2
    tags = [resumed.store.layer(i)["attempts"][0]["tag"] for i in (0, 1)]
    assert tags[0] == lost_tag, "the never-accepted tag is free: the first accepted job of layer 0 carries it"
    assert [again.inner.find(tag) for tag in tags] == again.submitted


def test_a_second_process_on_an_evaluation_folder_is_refused(model_and_inputs, tmp_path):
    import subprocess
    import sys

    from qml_imaging.runs import RunInUseError

    model, inputs, _ = model_and_inputs
    tmp_path.mkdir(exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from qml_imaging.runs import holding_lock\n"
         "with holding_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)", str(tmp_path)],
        stdout=subprocess.PIPE, text=True)
    jobs = spooled(tmp_path)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunInUseError, match=f"{tmp_path}.*in use by another process \\(pid {holder.pid}\\)"):
            evaluation(model, inputs, tmp_path, jobs=jobs).advance()
    finally:
        holder.kill()
        holder.wait()
    assert jobs.submitted == [] and not (tmp_path / "jobs.json").exists(), "nothing read, submitted or written"
    evaluation(model, inputs, tmp_path, jobs=jobs).advance(wait=False)  # the lock went with its process
    assert len(jobs.submitted) == 1


def test_a_folder_that_lost_its_job_store_is_refused_not_restarted(model_and_inputs, tmp_path):
    model, inputs, _ = model_and_inputs
    evaluation(model, inputs, tmp_path).advance()
    before = (tmp_path / "results" / "layer0.npz").read_bytes()
    (tmp_path / "jobs.json").unlink()
    jobs = spooled(tmp_path)
    with pytest.raises(RuntimeError, match=r"jobs.json is missing but .* holds an evaluation \(results/ \(2 files\), "
                                           r"inputs/ \(2 files\), circuits/ \(2 files\), local_jobs/.*restore jobs.json"):
        evaluation(model, inputs, tmp_path, jobs=jobs).advance()
    assert jobs.submitted == [] and (tmp_path / "results" / "layer0.npz").read_bytes() == before


def test_a_damaged_job_store_or_result_file_is_named_with_the_way_to_recover(model_and_inputs, tmp_path):
    model, inputs, _ = model_and_inputs
    evaluation(model, inputs, tmp_path).advance()
    store = tmp_path / "jobs.json"
    intact = store.read_text()
    for damage in (intact[: len(intact) // 2], "[]", '{"backend": "FakeManilaV2"}', "\xff\xfe"):
        store.write_text(damage, errors="surrogateescape")
        with pytest.raises(ValueError, match=f"{store} is damaged: .*restore it from a backup.*hardware submit"):
            evaluation(model, inputs, tmp_path)
    store.write_text(intact)
    result = tmp_path / "results" / "layer1.npz"
    result.write_bytes(result.read_bytes()[:50])
    job = json.loads(intact)["layers"]["1"]["attempts"][0]["job_id"]
    with pytest.raises(ValueError, match=f"{result}, the result of quantum layer 1 \\(job {job}\\), is missing or "
                                         "damaged.*restore it from a backup"):
        evaluation(model, inputs, tmp_path).advance()


def test_ibm_jobs_carry_their_tag_and_are_found_by_it(monkeypatch):
    import qiskit_ibm_runtime

    from qml_imaging.quantum import runtime

    asked = []

    class Service:
        def jobs(self, **filters):
            asked.append(filters)
            if filters["job_tags"] == ["qml-imaging:e:layer0:attempt1"]:
                return [type("Job", (), {"job_id": lambda self, i=i: i})() for i in ("newer", "older")]
            return []

    real_estimator = qiskit_ibm_runtime.EstimatorV2
    created = []

    class RecordingEstimator:
        def __init__(self, mode):
            self.options = real_estimator(mode=fake_device("FakeManilaV2")).options
            created.append(self)

        def run(self, pubs):
            return type("Job", (), {"job_id": lambda self: "new-job"})()

    monkeypatch.setattr(runtime, "runtime_service", Service)
    monkeypatch.setattr(runtime, "ibm_device", lambda service, name: fake_device("FakeManilaV2"))
    monkeypatch.setattr(qiskit_ibm_runtime, "EstimatorV2", RecordingEstimator)
    monkeypatch.setattr(qiskit_ibm_runtime, "Batch", lambda backend: backend)
    service = job_service(ibm_backend_spec("ibm_example"))
    assert service.submit(["pub"], tag="qml-imaging:e:layer0:attempt1") == "new-job"
    assert created[0].options.environment.job_tags == ["qml-imaging:e:layer0:attempt1"]
    assert service.find("qml-imaging:e:layer0:attempt1") == "older"
    assert service.find("qml-imaging:e:layer0:attempt2") is None
    assert asked[0]["job_tags"] == ["qml-imaging:e:layer0:attempt1"] and asked[0]["backend_name"] == "ibm_brisbane"
