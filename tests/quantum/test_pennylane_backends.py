"""Any installed PennyLane device as a backend, with its keyword arguments."""

import json

import pytest
import torch

from qml_imaging.cli import main
from qml_imaging.config import ConfigError
from qml_imaging.quantum.backends import backend_spec, pennylane_devices
from qml_imaging.quantum.circuits import qiren_block
from qml_imaging.quantum.factory import make_executor
from tests.conftest import EXPERIMENTS
from tests.quantum.conftest import random_batch

SMOKE = str(EXPERIMENTS / "inr_smoke.yaml")


def _spec(tmp_path, text):
    path = tmp_path / "device.yaml"
    path.write_text(text)
    return str(path)


def test_installed_devices_are_listed_and_named_devices_agree_with_fast():
    assert {"default.qubit", "default.mixed", "lightning.qubit", "qml_imaging.fast"} <= set(pennylane_devices())
    template = qiren_block(3, reuploads=1, sublayers=1)
    inputs, weights = random_batch(template, 3)
    expected = make_executor(backend_spec("fast")).expvals(template, inputs, weights)
    lightning = {"backend": "lightning.qubit", "device_kwargs": {"batch_obs": True}}
    for name in ("default.mixed", "qml_imaging.fast", lightning):
        outputs = make_executor(backend_spec(name)).expvals(template, inputs, weights)
        assert torch.allclose(outputs, expected, atol=1e-10), name


def test_a_config_naming_lightning_with_kwargs_runs(tmp_path):
    spec = _spec(tmp_path, "backend: lightning.qubit\ndevice_kwargs: {batch_obs: true}\n")
    out = tmp_path / "run"
    assert main(["run", SMOKE, "--out", str(out), f"models.qiren.backend={spec}", "size=8", "superres_size=16",
                 "train.epochs=1", "train.eval_every=1", "train.checkpoint_every=1"]) == 0
    assert "lightning.qubit" in (out / "config.yaml").read_text() or spec in (out / "config.yaml").read_text()
    assert "qiren" in json.loads((out / "report.json").read_text())["summary"]["mse"]["camera"]


@pytest.mark.parametrize("text", ["backend: lightning.qbit\n", None])
def test_a_misspelt_device_fails_validate_in_one_line(tmp_path, capsys, text):
    backend = _spec(tmp_path, text) if text else "lightning.qbit"
    assert main(["validate", SMOKE, f"models.qiren.backend={backend}"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "'lightning.qbit'" in error and "'lightning.qubit'" in error


def test_kwargs_a_device_refuses_are_named():
    with pytest.raises(ConfigError, match=r"refuses device_kwargs \{'colour': 'red'\}"):
        make_executor(backend_spec({"backend": "default.qubit", "device_kwargs": {"colour": "red"}}))
    with pytest.raises(ConfigError, match="device_kwargs apply to PennyLane devices"):
        backend_spec({"backend": "fast", "device_kwargs": {"seed": 1}})
