"""`validate` checks that a backend can play the role its config key gives it (training, evaluation, noise
measurement) and names the key when it cannot (case f19); sampled executors keep their generators in
training checkpoints (random sources)."""

import pytest
import torch

from qml_imaging.config import ConfigError, config_from_dict, load_config
from qml_imaging.quantum.backends import ROLES, backend_spec
from qml_imaging.quantum.circuits import bottleneck_ansatz
from qml_imaging.quantum.factory import make_executor
from qml_imaging.quantum.layer import QuantumLayer
from tests.conftest import EXPERIMENTS

pytestmark = pytest.mark.qiskit
ZNE = {"backend": "qiskit.aer", "noise_from": "FakeManilaV2", "shots": 100, "optimization_level": 0,
       "zne": {"scale_factors": [1, 3]}}


def test_a_spec_knows_the_roles_it_refuses():
    zne = backend_spec(ZNE)
    assert zne.refuses("training") and zne.refuses("noise") and zne.refuses("evaluation") is None
    assert all(backend_spec(name).refuses(role) is None for name in ("fast", "aer_shots", "ibm_fake_brisbane")
               for role in ROLES)
    with pytest.raises(ValueError, match="unknown backend role 'teaching'"):
        zne.refuses("teaching")


def test_validate_refuses_training_through_zero_noise_extrapolation_naming_the_key(tmp_path):
    (tmp_path / "zne.yaml").write_text("\n".join(f"{key}: {value}" for key, value in
                                                 {**ZNE, "zne": "{scale_factors: [1, 3]}"}.items()))
    model = f"{{kind: qiren, n_qubits: 2, hidden_layers: 1, reuploads: 1, sublayers: 1, backend: {tmp_path / 'zne.yaml'}}}"
    with pytest.raises(ConfigError, match=r"models\.qiren\.backend: backend .* cannot be used for training: "
                                          "zero-noise extrapolation"):
        load_config(EXPERIMENTS / "inr_smoke.yaml", [f"models={{qiren: {model}}}", "reference_model=qiren"])
    config = load_config(EXPERIMENTS / "inr_smoke.yaml", ["models.qiren.backend=aer_shots"])
    assert config.models["qiren"].backend == "aer_shots"


def test_validate_refuses_a_noise_bank_measured_through_zne(tmp_path):
    (tmp_path / "zne.yaml").write_text("\n".join(f"{key}: {value}" for key, value in
                                                 {**ZNE, "zne": "{scale_factors: [1, 3]}"}.items()))
    raw = load_config(EXPERIMENTS / "diffusion_fewshot.yaml", check_files=False).model_dump(mode="json")
    with pytest.raises(ConfigError, match=r"noise\.backend: backend .* cannot be used for noise"):
        config_from_dict(raw, [f"noise.backend={tmp_path / 'zne.yaml'}"], check_files=False)
    with pytest.raises(ConfigError, match=r"unet\.backend: backend .* cannot be used for training"):
        config_from_dict(raw, [f"unet.backend={tmp_path / 'zne.yaml'}"], check_files=False)


def test_a_sampled_executor_resumes_its_generators():
    template = bottleneck_ansatz(2, layers=1, entangler="chain")
    layer = QuantumLayer(template, make_executor(backend_spec("aer_shots"))).double()
    inputs = torch.tensor([[0.2, -0.4], [0.7, 0.1]], dtype=torch.float64)
    layer(inputs)
    state = layer.random_state()
    with torch.no_grad():
        expected = layer(inputs)
    layer.set_random_state(state)
    with torch.no_grad():
        torch.testing.assert_close(layer(inputs), expected, rtol=0, atol=0)
    with pytest.raises(ValueError, match="expected the state of a sampled executor"):
        layer.set_random_state({"seed": 1})
