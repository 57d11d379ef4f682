"""Every shipped backend spec with shots or noise honours its seed (case f20): the same seed gives the
same numbers, another seed other numbers, on the expectation path (a layer's outputs) and the sample
path (a noise bank), whatever NumPy's and torch's global generators hold."""

import numpy as np
import pytest
import torch

from qml_imaging.quantum.backends import backend_spec
from qml_imaging.quantum.circuits import bottleneck_ansatz
from qml_imaging.quantum.ibm import is_fake_device
from qml_imaging.quantum.layer import QuantumLayer
from qml_imaging.quantum.noise import NoiseBank
from qml_imaging.resources import BACKEND_SPECS, shipped_names

pytestmark = pytest.mark.qiskit
for extra_module in ("qiskit_aer", "qiskit_ibm_runtime", "pennylane_qiskit"):
    pytest.importorskip(extra_module)  # the shipped specs are read at collection; the core install lacks [qiskit]


def _seeded_specs() -> list[str]:
    """Shipped specs that sample (shots) or add noise; real IBM devices need credentials and are left out."""
    names = []
    for name in shipped_names(BACKEND_SPECS):
        spec = backend_spec(name)
        if spec.backend == "ibm" and not is_fake_device(spec.device_name):
            continue
        if spec.shots is not None or spec.noise_from or spec.backend == "ibm":
            names.append(name)
    return names


def _params(names: list[str]) -> list:
    """Specs on FakeBrisbane are marked slow: building its 127-qubit noise model takes about 8 s and each
    noisy Aer or local Runtime job several seconds more (``.ci/run`` runs them with ``-m slow``)."""
    return [pytest.param(name, marks=pytest.mark.slow) if "brisbane" in name else name for name in names]


SEEDED = _seeded_specs()
TEMPLATE = bottleneck_ansatz(2, layers=1, entangler="chain")
WEIGHTS = torch.tensor([[[0.4, 1.1], [-0.3, 0.8]]], dtype=torch.float64)
INPUTS = torch.tensor([[0.3, 0.3], [0.1, -0.4]], dtype=torch.float64)


def _outputs(name: str, seed: int, global_seed: int) -> np.ndarray:
    np.random.seed(global_seed)
    torch.manual_seed(global_seed)
    spec = backend_spec({**backend_spec(name).model_dump(exclude_unset=True), "seed": seed})
    layer = QuantumLayer(TEMPLATE, spec).double()
    with torch.no_grad():
        layer.weights.copy_(WEIGHTS)
        return layer(INPUTS).numpy()


def test_every_shipped_spec_with_shots_or_noise_is_covered():
    assert {"aer_shots", "aer_noisy_manila", "aer_noisy_brisbane", "aer_noisy_brisbane_zne",
            "ibm_fake_brisbane"} <= set(SEEDED)


@pytest.mark.parametrize("name", _params(SEEDED))
def test_expectation_values_follow_the_spec_seed(name):
    first = _outputs(name, 1234, global_seed=0)
    np.testing.assert_array_equal(_outputs(name, 1234, global_seed=1), first)
    assert not np.array_equal(_outputs(name, 99, global_seed=0), first)


@pytest.mark.parametrize("name", _params([name for name in SEEDED if backend_spec(name).zne is None]))
def test_noise_bank_follows_its_seed(name):
    def bank(seed, global_seed):
        np.random.seed(global_seed)
        torch.manual_seed(global_seed)
        return NoiseBank.generate(60, backend_spec(name), n_qubits=3, seed=seed).samples.numpy()

    first = bank(5, 0)
    np.testing.assert_array_equal(bank(5, 1), first)
    assert not np.array_equal(bank(6, 0), first)
