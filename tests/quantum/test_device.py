"""qml.device("qml_imaging.fast"): agreement with default.qubit on everything a QNode measures."""

import importlib.metadata
import tomllib

import numpy as np
import pennylane as qml
import pytest
import torch
from pennylane.devices import device_constructor

from qml_imaging.quantum.device import NAME, FastDevice
from tests.conftest import REPO_ROOT


@pytest.fixture(autouse=True)
def registered():
    """The entry point as ``pip install`` writes it; registered here where the installed metadata predates it."""
    entry = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["pennylane.plugins"]
    assert entry[NAME] == "qml_imaging.quantum.device:FastDevice"
    if NAME not in device_constructor.plugin_devices:
        device_constructor.plugin_devices[NAME] = importlib.metadata.EntryPoint(NAME, entry[NAME], "pennylane.plugins")
    yield


def _circuit(x, w, measure):
    qml.AngleEmbedding(x, wires=range(3), rotation="Y")
    qml.StronglyEntanglingLayers(w, wires=range(3))
    qml.IsingXY(w[0, 0, 0], wires=[0, 2])
    qml.QFT(wires=[0, 1])
    return measure()


MEASUREMENTS = {
    "expvals": lambda: [qml.expval(qml.Z(0)), qml.expval(qml.X(1) @ qml.Y(2))],
    "var_probs": lambda: (qml.var(qml.Hermitian(np.diag([1.0, 2.0, -1.0, 0.5]), wires=[2, 0])),
                          qml.probs(wires=[1, 0])),
    "hamiltonian": lambda: qml.expval(0.3 * qml.X(0) @ qml.Z(1) - 1.1 * qml.Y(2) + 0.2 * qml.Identity(0)),
    "state": lambda: qml.state(),
    "density_matrix": lambda: qml.density_matrix(wires=[0, 2]),
}


def _run(device_name, measure, x, w, **kwargs):
    qnode = qml.QNode(lambda x, w: _circuit(x, w, measure), qml.device(device_name, wires=3, **kwargs))
    return qnode(x, w)


def _flat(result):
    parts = result if isinstance(result, (tuple, list)) else [result]
    flat = torch.cat([torch.as_tensor(p).reshape(-1) for p in parts])
    return torch.view_as_real(flat).reshape(-1) if flat.is_complex() else flat


@pytest.mark.parametrize("kind", sorted(MEASUREMENTS))
@pytest.mark.parametrize("broadcast", [False, True], ids=["single", "broadcast"])
def test_matches_default_qubit_with_gradients(kind, broadcast):
    generator = torch.Generator().manual_seed(1)
    x = torch.rand((4, 3) if broadcast else (3,), generator=generator, dtype=torch.float64)
    w0 = torch.rand(2, 3, 3, generator=generator, dtype=torch.float64)
    results = {}
    for name in (NAME, "default.qubit"):
        w = w0.clone().requires_grad_()
        values = _flat(_run(name, MEASUREMENTS[kind], x, w))
        (values * torch.arange(len(values))).sum().backward()
        results[name] = values.detach(), w.grad
    assert torch.allclose(results[NAME][0], results["default.qubit"][0], atol=1e-10)
    assert torch.allclose(results[NAME][1], results["default.qubit"][1], atol=1e-10)


def test_numpy_parameters_give_numpy_results_and_float32_weights_train():
    x, w = np.array([0.1, 0.2, 0.3]), np.full((1, 3, 3), 0.4)
    ours = _run(NAME, MEASUREMENTS["expvals"], x, w)
    theirs = _run("default.qubit", MEASUREMENTS["expvals"], x, w)
    assert all(isinstance(value, np.ndarray) for value in ours)
    assert np.allclose(ours, theirs, atol=1e-12)
    w32 = torch.full((1, 3, 3), 0.4, requires_grad=True)
    value = _run(NAME, lambda: qml.expval(qml.Z(0)), torch.tensor(x, dtype=torch.float32), w32)
    value.backward()
    assert value.dtype == torch.float32 and w32.grad.dtype == torch.float32  # simulated in complex64
    assert abs(value.item() - theirs[0]) < 1e-5
    forced = _run(NAME, lambda: qml.expval(qml.Z(0)), torch.tensor(x, dtype=torch.float32), w32, c_dtype=np.complex128)
    assert forced.dtype == torch.float64 and abs(forced.item() - theirs[0]) < 1e-7  # float32 angles


@pytest.mark.parametrize("measure", [lambda: qml.sample(wires=[0, 2]), lambda: qml.counts(qml.X(1)),
                                     lambda: (qml.expval(qml.Z(0)), qml.probs(wires=[1]))])
def test_shots_and_seed_sample_as_default_qubit(measure):
    x, w = np.array([0.1, 0.2, 0.3]), np.full((1, 3, 3), 0.7)

    def run(name, seed):
        device = qml.device(name, wires=3, seed=seed)
        return qml.set_shots(qml.QNode(lambda x, w: _circuit(x, w, measure), device), shots=(50, 200))(x, w)

    ours, again, theirs = run(NAME, 7), run(NAME, 7), run("default.qubit", 7)
    assert repr(ours) == repr(again) == repr(theirs)
    assert repr(run(NAME, 8)) != repr(ours)


def test_mid_circuit_measurement_is_deferred():
    def circuit(x):
        qml.RX(x, 0)
        m = qml.measure(0)
        qml.cond(m, qml.RY)(0.5, wires=1)
        return qml.expval(qml.Z(1)), qml.probs(op=m)

    ours = qml.QNode(circuit, qml.device(NAME, wires=3))(0.8)
    theirs = qml.QNode(circuit, qml.device("default.qubit", wires=3))(0.8)
    assert np.allclose(np.concatenate([np.ravel(v) for v in ours]), np.concatenate([np.ravel(v) for v in theirs]))


def test_tracker_draw_and_specs():
    device = qml.device(NAME, wires=2)
    qnode = qml.QNode(lambda x: (qml.RX(x, 0), qml.CNOT([0, 1]), qml.expval(qml.Z(1)))[-1], device)
    with qml.Tracker(device) as tracker:
        qnode(np.array([0.1, 0.2, 0.3]))
    assert tracker.totals["executions"] == 3 and tracker.totals["batches"] == 1
    assert "RX" in qml.draw(qnode)(0.3)
    assert qml.specs(qnode)(0.3)["resources"].gate_types == {"RX": 1, "CNOT": 1}


def test_bad_arguments_are_named():
    with pytest.raises(qml.exceptions.DeviceError, match="at most 20 wires, got 21"):
        FastDevice(wires=21)
    with pytest.raises(qml.exceptions.DeviceError, match="c_dtype"):
        FastDevice(wires=2, c_dtype=np.float32)
    with pytest.raises(qml.exceptions.DeviceError, match="'one-shot'"):
        qml.QNode(lambda: qml.expval(qml.Z(0)), FastDevice(wires=1), mcm_method="one-shot")()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_tensors_run_on_the_gpu():
    x = torch.tensor([0.1, 0.2, 0.3], device="cuda")
    w = torch.full((1, 3, 3), 0.4, device="cuda", dtype=torch.float64, requires_grad=True)
    value = _run(NAME, lambda: qml.expval(qml.Z(0)), x, w)
    value.backward()
    assert value.device.type == "cuda" and w.grad.device.type == "cuda"
    expected = _run("default.qubit", lambda: qml.expval(qml.Z(0)), x.cpu(), w.detach().cpu())
    assert abs(value.item() - float(expected)) < 1e-10
