"""QuantumLayer over the circuits PennyLane users write: QNodes, weight_shapes, any outputs."""

import pennylane as qml
import pytest
import torch

from qml_imaging.quantum.backends import backend_spec
from qml_imaging.quantum.layer import QuantumLayer

WEIGHT_SHAPES = {"layers": (2, 4, 3), "phases": 4}


def _qnode(device_name="default.qubit"):
    @qml.qnode(qml.device(device_name, wires=4), interface="torch")
    def circuit(inputs, layers, phases):
        qml.AngleEmbedding(inputs, wires=range(4))
        qml.StronglyEntanglingLayers(layers, wires=range(4))
        for wire in range(4):
            qml.PhaseShift(phases[wire], wires=wire)
        qml.Hadamard(wires=3)
        return qml.expval(qml.Z(0)), qml.var(qml.X(1)), qml.probs(wires=[2, 3])

    return circuit


@pytest.mark.parametrize("backend", ["fast", "default.qubit"])
def test_a_qnode_with_several_weights_and_mixed_outputs_matches_the_qnode(backend):
    """TorchLayer itself cannot stack outputs of different shapes; the QNode's own results are the reference."""
    torch.manual_seed(0)
    layer = QuantumLayer(_qnode(), backend_spec(backend), weight_shapes=WEIGHT_SHAPES).double()
    named = {name: layer.named_weight(name).detach().clone().requires_grad_() for name in WEIGHT_SHAPES}
    x = torch.rand(5, 4, dtype=torch.float64)
    ours = layer(x)
    expval, variance, probabilities = _qnode()(x, **named)
    theirs = torch.cat([expval[:, None], variance[:, None], probabilities], dim=-1)
    assert layer.n_outputs == 6 and ours.shape == theirs.shape == (5, 6)
    assert torch.allclose(ours, theirs, atol=1e-10)
    projection = torch.rand(6, dtype=torch.float64)
    (ours @ projection).sum().backward()
    (theirs @ projection).sum().backward()
    flat = torch.cat([named[name].grad.reshape(-1) for name in WEIGHT_SHAPES])
    assert torch.allclose(layer.weights.grad, flat, atol=1e-10)


def test_same_outputs_as_torchlayer_where_torchlayer_runs():
    @qml.qnode(qml.device("default.qubit", wires=3), interface="torch")
    def circuit(inputs, weights, bias):
        qml.AngleEmbedding(inputs, wires=range(3))
        qml.BasicEntanglerLayers(weights, wires=range(3))
        qml.RY(bias[0], wires=0)
        return [qml.expval(qml.Z(j)) for j in range(3)]

    shapes = {"weights": (2, 3), "bias": (1,)}
    layer = QuantumLayer(circuit, weight_shapes=shapes)
    reference = qml.qnn.TorchLayer(circuit, shapes)
    with torch.no_grad():
        for name in shapes:
            reference.qnode_weights[name].copy_(layer.named_weight(name))
    x = torch.rand(7, 3)
    assert torch.allclose(layer(x), reference(x).float(), atol=1e-5)


def test_probabilities_of_a_quantum_function_with_fewer_inputs_than_qubits():
    def circuit(inputs, weights):
        qml.RY(inputs[..., 0], wires=0)
        qml.RX(inputs[..., 1], wires=2)
        qml.CNOT(wires=[0, 1])
        qml.RZ(weights[0], wires=1)
        qml.CRY(weights[1], wires=[1, 2])
        return qml.probs(wires=[0, 1])

    layer = QuantumLayer(circuit, weight_shapes={"weights": 2}, n_qubits=3, n_inputs=2)
    outputs = layer(torch.rand(5, 2))
    assert outputs.shape == (5, 4) and torch.allclose(outputs.sum(dim=-1), torch.ones(5))
    with pytest.raises(ValueError, match=r"expects inputs of shape \(B, 2\)"):
        layer(torch.rand(5, 3))


def test_bad_circuits_are_named():
    with pytest.raises(ValueError, match="needs weight_shapes"):
        QuantumLayer(_qnode())
    with pytest.raises(ValueError, match="give n_qubits"):
        QuantumLayer(lambda inputs, w: qml.expval(qml.Z(0)), weight_shapes={"w": 1})
    with pytest.raises(ValueError, match=r"not state\(wires=\[\]\)|not StateMP|not state"):
        QuantumLayer(lambda inputs, w: qml.state(), weight_shapes={"w": 1}, n_qubits=1)
    with pytest.raises(ValueError, match=r"weight_shapes\['w'\] must be a positive int"):
        QuantumLayer(_qnode(), weight_shapes={"w": (2, 0)})
    with pytest.raises(KeyError, match="'layers', 'phases'"):
        QuantumLayer(_qnode(), weight_shapes=WEIGHT_SHAPES).named_weight("nope")
