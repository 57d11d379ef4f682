import math

import pennylane as qml
import pytest
import torch

from qml_imaging.extras import QISKIT_MODULES, missing
from qml_imaging.quantum.circuits import bottleneck_ansatz, qiren_block


def random_batch(template, batch, seed=0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    inputs = (2 * torch.rand(batch, template.n_qubits, generator=generator, dtype=dtype) - 1) * math.pi / 2
    weights = (2 * torch.rand(template.weight_shape, generator=generator, dtype=dtype) - 1) * math.pi
    return inputs, weights


def reference_expvals(template, inputs, weights):
    """default.qubit with broadcasting and backprop: PennyLane's own answer."""
    qnode = qml.QNode(template.function, qml.device("default.qubit", wires=template.n_qubits),
                      interface="torch", diff_method="backprop")
    return torch.stack(qnode(inputs, weights), dim=-1)


TEMPLATES = {
    "qiren_4q_L2_K2": lambda: qiren_block(4, reuploads=2, sublayers=2),
    "qiren_3q_L1_K3": lambda: qiren_block(3, reuploads=1, sublayers=3),
    "bottleneck_ring_5q": lambda: bottleneck_ansatz(5, layers=2, entangler="ring"),
    "bottleneck_chain_3q": lambda: bottleneck_ansatz(3, layers=3, entangler="chain"),
}


@pytest.fixture(params=sorted(TEMPLATES))
def template(request):
    return TEMPLATES[request.param]()


# The Qiskit backends are the [qiskit] extra: without it, test modules that import Qiskit at collection
# are left out (their tests carry the `qiskit` marker; a core-only install runs -m "not qiskit").
collect_ignore = ["test_runtime.py", "test_qiskit_templates.py"] if missing(*QISKIT_MODULES) else []
