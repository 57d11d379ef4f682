"""The same templates on every backend: exact backends agree to 1e-5, sampled ones within their shot noise."""

import os

import pytest
import torch

from qml_imaging.config import ConfigError
from qml_imaging.quantum.backends import backend_spec
from qml_imaging.quantum.circuits import bottleneck_ansatz, qiren_block
from qml_imaging.quantum.factory import make_executor
from qml_imaging.quantum.layer import QuantumLayer
from qml_imaging.resources import BACKEND_SPECS, shipped_file, shipped_names
from tests.quantum.conftest import random_batch, reference_expvals

EXACT_BACKENDS = ["fast", "default_qubit", "lightning", pytest.param("aer_statevector", marks=pytest.mark.qiskit)]


@pytest.mark.parametrize("backend", EXACT_BACKENDS)
def test_exact_backends_agree_on_every_template(template, backend):
    inputs, weights = random_batch(template, 4, dtype=torch.float32)
    result = make_executor(backend_spec(backend)).expvals(template, inputs, weights)
    reference = reference_expvals(template, inputs.double(), weights.double())
    assert result.shape == (4, template.n_outputs)
    assert torch.allclose(result.double(), reference, atol=1e-5)


def test_lightning_adjoint_gradients_match_fast():
    template = qiren_block(3, reuploads=2, sublayers=2)
    inputs, weights = random_batch(template, 3)
    grads = []
    for name in ("fast", "lightning"):
        w = weights.clone().requires_grad_()
        make_executor(backend_spec(name)).expvals(template, inputs, w).sum().backward()
        grads.append(w.grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-5)


@pytest.mark.qiskit
def test_aer_shots_agree_within_five_standard_errors():
    template = qiren_block(3, reuploads=1, sublayers=2)
    inputs, weights = random_batch(template, 4)
    config = backend_spec("aer_shots")
    sampled = make_executor(config).expvals(template, inputs, weights).double()
    exact = reference_expvals(template, inputs, weights)
    standard_error = torch.sqrt((1 - exact**2).clamp_min(1e-12) / config.shots)
    assert ((sampled - exact).abs() <= 5 * standard_error + 1e-9).all()
    assert not torch.allclose(sampled, exact, atol=1e-6), "4096 shots cannot reproduce exact values"


@pytest.mark.qiskit
def test_noisy_fake_backend_differs_from_exact_within_tolerance():
    """FakeManilaV2 noise (gate, readout, T1/T2) biases <Z> towards 0; the bias stays below 0.35 here."""
    template = bottleneck_ansatz(3, layers=1, entangler="chain")
    inputs, weights = random_batch(template, 4, seed=2)
    noisy = make_executor(backend_spec("aer_noisy_manila")).expvals(template, inputs, weights).double()
    exact = reference_expvals(template, inputs, weights)
    config = backend_spec("aer_noisy_manila")
    shot_error = 5 * torch.sqrt((1 - exact**2).clamp_min(1e-12) / config.shots)
    difference = (noisy - exact).abs()
    assert (difference > shot_error).any(), "device noise should be visible beyond shot noise"
    assert difference.max() < 0.35


@pytest.mark.qiskit
def test_ibm_path_runs_locally_on_a_fake_backend():
    template = qiren_block(2, reuploads=1, sublayers=1)
    inputs, weights = random_batch(template, 2)
    config = backend_spec({"backend": "ibm", "device_name": "FakeManilaV2", "shots": 2000})
    result = make_executor(config).expvals(template, inputs, weights).double()
    assert torch.allclose(result, reference_expvals(template, inputs, weights), atol=0.35)


@pytest.mark.qiskit
def test_ibm_without_credentials_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("QISKIT_IBM_TOKEN", raising=False)
    monkeypatch.setenv("QISKIT_IBM_CONFIG", str(tmp_path / "absent.json"))
    with pytest.raises(PermissionError, match="no IBM Quantum credentials.*QISKIT_IBM_TOKEN.*FakeManilaV2"):
        make_executor(backend_spec({"backend": "ibm", "device_name": "ibm_brisbane"}))


@pytest.mark.qiskit
def test_unknown_backend_names_and_keys_are_clear_errors():
    with pytest.raises(ConfigError, match="unknown backend 'aer_noisy_manilla'.*aer_noisy_manila"):
        backend_spec("aer_noisy_manilla")
    with pytest.raises(ConfigError, match="shotz.*allowed keys"):
        backend_spec({"backend": "qiskit.aer", "shotz": 10})
    with pytest.raises(ConfigError, match="backend"):
        backend_spec({"backend": "cirq"})
    with pytest.raises(ConfigError, match="needs device_name"):
        backend_spec({"backend": "ibm"})
    with pytest.raises(ConfigError, match="shots are not supported by backend 'fast'"):
        backend_spec({"backend": "fast", "shots": 100})
    with pytest.raises(ConfigError, match="unknown fake device 'FakeNowhereV2'"):
        backend_spec({"backend": "qiskit.aer", "noise_from": "FakeNowhereV2", "shots": 10})


@pytest.mark.qiskit
def test_every_shipped_hardware_config_validates():
    names = shipped_names(BACKEND_SPECS)
    assert set(names) >= {"fast", "default_qubit", "lightning", "aer_statevector", "aer_shots",
                          "aer_noisy_manila", "ibm_example"}
    for name in names:
        assert backend_spec(name).backend
        assert backend_spec(str(shipped_file(BACKEND_SPECS, name))) == backend_spec(name)


def test_a_config_cannot_hold_a_token_and_the_error_does_not_echo_it():
    secret = "s3cr3t-token-value"
    with pytest.raises(ConfigError) as error:
        backend_spec({"backend": "ibm", "device_name": "ibm_brisbane", "token": secret})
    assert "token" in str(error.value) and secret not in str(error.value)


@pytest.mark.qiskit
def test_more_qubits_than_the_device_is_refused():
    with pytest.raises(ValueError, match="needs 8 qubits but backend 'qiskit.aer' \\(FakeManilaV2\\) has 5"):
        QuantumLayer(qiren_block(8), backend_spec("aer_noisy_manila"))


@pytest.mark.qiskit
def test_zero_noise_extrapolation_brings_noisy_aer_closer_to_exact():
    template = qiren_block(3, reuploads=2, sublayers=2)
    inputs, weights = random_batch(template, 4)
    exact = reference_expvals(template, inputs, weights)
    noisy = {"backend": "qiskit.aer", "noise_from": "FakeManilaV2", "shots": 20000, "seed": 1,
             "method": "density_matrix", "optimization_level": 0}
    unmitigated = make_executor(backend_spec(noisy)).expvals(template, inputs, weights).double()
    mitigated = make_executor(backend_spec({**noisy, "zne": {"scale_factors": [1, 3, 5]}}))
    mitigated = mitigated.expvals(template, inputs, weights).double()
    unmitigated_error = (unmitigated - exact).abs().mean().item()
    mitigated_error = (mitigated - exact).abs().mean().item()
    assert unmitigated_error > 0.03, "the noise model should visibly bias this circuit"
    assert mitigated_error < 0.7 * unmitigated_error


@pytest.mark.qiskit
def test_zero_noise_extrapolation_settings_are_checked():
    noisy = {"backend": "qiskit.aer", "noise_from": "FakeManilaV2", "shots": 100}
    with pytest.raises(ConfigError, match="zne needs optimization_level 0, got 1.*cancel the folded gate pairs"):
        backend_spec({**noisy, "zne": {}})
    with pytest.raises(ConfigError, match="odd integers >= 1, got \\[1, 2\\]"):
        backend_spec({**noisy, "optimization_level": 0, "zne": {"scale_factors": [1, 2]}})
    with pytest.raises(ConfigError, match="zne applies to backend 'qiskit.aer' only"):
        backend_spec({"backend": "fast", "zne": {}})


def test_a_backend_yaml_with_a_syntax_error_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("backend: [fast\nshots: 3\n")
    with pytest.raises(ConfigError, match=f"{path}: not valid YAML"):
        backend_spec(str(path))


@pytest.mark.qiskit
def test_repeated_zne_scale_factors_are_refused():
    spec = {"backend": "qiskit.aer", "shots": 100, "optimization_level": 0, "noise_from": "FakeManilaV2"}
    with pytest.raises(ConfigError, match=r"scale_factors must be distinct .* got \[1, 1\]"):
        backend_spec({**spec, "zne": {"scale_factors": [1, 1]}})


@pytest.mark.qiskit
def test_bare_ibm_and_fake_device_names_resolve_to_ibm_specs():
    assert backend_spec("ibm_brisbane").device_name == "ibm_brisbane"
    assert backend_spec("FakeManilaV2").backend == "ibm"


@pytest.mark.parametrize("name", ["fast", "aer_shots"])
def test_executors_and_layers_take_specs_not_names(name):
    with pytest.raises(TypeError, match="make_executor takes a BackendSpec, got str .*backend_spec first"):
        make_executor(name)
    with pytest.raises(TypeError, match="make_executor takes a BackendSpec, got str"):
        QuantumLayer(qiren_block(2, 1, 1), name)


def test_lightning_threads_limit_its_own_openmp_runtime_without_environment_variables(monkeypatch):
    from threadpoolctl import ThreadpoolController

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    spec = backend_spec("lightning")
    assert spec.threads == 1
    template = qiren_block(2, 1, 1)
    inputs, weights = random_batch(template, 2)
    result = make_executor(spec).expvals(template, inputs, weights)
    assert torch.allclose(result, reference_expvals(template, inputs, weights), atol=1e-10)
    runtimes = [runtime for runtime in ThreadpoolController().select(user_api="openmp").lib_controllers
                if "/pennylane_lightning" in runtime.filepath]
    assert runtimes and all(runtime.num_threads == 1 for runtime in runtimes)
    assert "OMP_NUM_THREADS" not in os.environ


def test_grid_tasks_get_the_resolved_backend_spec(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from qml_imaging.config import load_config
    from qml_imaging.pipelines.inr import image
    from qml_imaging.quantum.backends import BackendSpec

    resolved = []
    monkeypatch.setattr("qml_imaging.pipelines.inr.fitting.backend_spec",
                        lambda name: resolved.append(name) or backend_spec(name))
    captured = []

    def stop(tasks, *args, **kwargs):
        captured.extend(tasks)
        raise KeyboardInterrupt

    monkeypatch.setattr(image, "run_grid", stop)
    config = load_config("qiren_camera", ["images=[camera]", "seeds=1"])
    with pytest.raises(KeyboardInterrupt):
        image.run(config, SimpleNamespace(path=tmp_path))
    qiren = [task for task in captured if "/qiren/" in task.name]
    assert qiren and resolved == sorted({spec.backend for spec in config.models.values() if spec.kind == "qiren"})
    for task in qiren:
        assert all(isinstance(spec, BackendSpec) for spec in task.function.keywords["backend_specs"].values())


def test_a_backend_spec_is_found_by_name_in_the_current_folder(monkeypatch, tmp_path, capsys):
    from qml_imaging.cli import main
    from qml_imaging.quantum.backends import BackendName

    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_lab.yaml").write_text("backend: default.qubit\n")
    assert backend_spec("my_lab").backend == "default.qubit"
    assert backend_spec("my_lab.yaml").backend == "default.qubit"
    from pydantic import TypeAdapter

    assert TypeAdapter(BackendName).validate_python("my_lab") == str(tmp_path / "my_lab.yaml")  # resumable anywhere
    with pytest.raises(ConfigError, match=r"unknown backend 'my_ibm': no my_ibm.yaml or my_ibm.yml in the current "
                                          r"folder \(.*\), and not a shipped backend spec"):
        backend_spec("my_ibm")
    assert main(["hardware", "plan", str(tmp_path / "run"), "--backend", "my_ibm"]) == 2
    error = capsys.readouterr().err.strip()
    assert "no my_ibm.yaml or my_ibm.yml in the current folder" in error and "\n" not in error, error
