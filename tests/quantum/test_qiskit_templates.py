"""Qiskit circuits as templates: agreement with Qiskit's own Statevector, with and without input gradients."""

import numpy as np
import pennylane as qml
import pytest
import torch
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter, ParameterVector
from qiskit.circuit.library import efficient_su2, real_amplitudes, zz_feature_map
from qiskit.quantum_info import SparsePauliOp, Statevector

from qml_imaging.quantum.backends import backend_spec
from qml_imaging.quantum.layer import QuantumLayer
from qml_imaging.quantum.qiskit_templates import qiskit_template


def _feature_map_and_ansatz(n):
    feature_map, ansatz = zz_feature_map(n, reps=2), real_amplitudes(n, reps=2)
    return feature_map.compose(ansatz), list(feature_map.parameters), list(ansatz.parameters)


def _mixed_parameters():
    """Single Parameters, an ansatz's vector given out of order, an expression of an input and a weight."""
    a, b, c = Parameter("a"), Parameter("b"), Parameter("c")
    ansatz = efficient_su2(3, reps=1)
    circuit = QuantumCircuit(3)
    circuit.ry(a, 0)
    circuit.rx(2 * b, 1)
    circuit.rz(c, 2)
    circuit.compose(ansatz, inplace=True)
    circuit.crx(a * ansatz.parameters[0], 0, 2)
    return circuit, [c, a, b], list(reversed(list(ansatz.parameters)))


CASES = {"zz_feature_map+real_amplitudes": lambda: _feature_map_and_ansatz(3), "mixed": _mixed_parameters}


def _statevector_expvals(circuit, inputs, weights, x, w):
    """<Z_j> from Qiskit's Statevector of the circuit with numbers bound (Qiskit's own simulation)."""
    rows = []
    for sample in x:
        bound = circuit.assign_parameters({**dict(zip(inputs, sample.tolist())), **dict(zip(weights, w.tolist()))})
        state = Statevector(bound)
        rows.append([state.expectation_value(SparsePauliOp.from_sparse_list([("Z", [j], 1)], circuit.num_qubits)).real
                     for j in range(circuit.num_qubits)])
    return torch.tensor(rows, dtype=torch.float64)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("input_gradients", [False, True])
@pytest.mark.parametrize("backend", ["fast", "default.qubit"])
def test_matches_qiskit_statevector(case, input_gradients, backend):
    circuit, inputs, weights = CASES[case]()
    template = qiskit_template(circuit, inputs, weights)
    layer = QuantumLayer(template, backend_spec(backend)).double()
    generator = torch.Generator().manual_seed(3)
    x = torch.rand(5, 3, generator=generator, dtype=torch.float64).requires_grad_(input_gradients)
    outputs = layer(x)
    expected = _statevector_expvals(circuit, inputs, weights, x.detach(), layer.weights.detach())
    assert torch.allclose(outputs.detach(), expected, atol=1e-10)
    outputs.sum().backward()
    assert layer.weights.grad is not None and torch.isfinite(layer.weights.grad).all()
    assert (x.grad is not None) == input_gradients


def test_input_gradients_match_finite_differences():
    circuit, inputs, weights = _feature_map_and_ansatz(2)
    template = qiskit_template(circuit, inputs, weights)
    layer = QuantumLayer(template).double()
    x = torch.tensor([[0.3, -0.7]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: layer(v), (x,), atol=1e-7)


def test_other_measurements_and_bad_parameters():
    circuit, inputs, weights = _feature_map_and_ansatz(2)
    template = qiskit_template(circuit, inputs, weights, measurements=lambda: [qml.expval(qml.X(0) @ qml.X(1))] * 2)
    x, w = torch.tensor([[0.2, 0.4]], dtype=torch.float64), torch.linspace(0, 1, len(weights), dtype=torch.float64)
    bound = circuit.assign_parameters({**dict(zip(inputs, [0.2, 0.4])), **dict(zip(weights, w.tolist()))})
    expected = Statevector(bound).expectation_value(SparsePauliOp("XX")).real
    assert np.isclose(QuantumLayer(template).executor.expvals(template, x, w)[0, 0].item(), expected, atol=1e-10)
    with pytest.raises(ValueError, match=r"parameters \['x\[1\]'\] are not given"):
        qiskit_template(circuit, inputs[:1], weights)
    circuit3, inputs3, weights3 = _feature_map_and_ansatz(3)
    fewer = qiskit_template(circuit3, inputs3[:2], weights3 + inputs3[2:])  # x[2] trained as a weight
    assert fewer.n_inputs == 2 and QuantumLayer(fewer)(torch.rand(4, 2)).shape == (4, 3)
    with pytest.raises(ValueError, match="repeated"):
        qiskit_template(circuit, inputs, weights + weights[:1])
    vector = ParameterVector("v", 1)
    with pytest.raises(ValueError, match="not in the circuit"):
        qiskit_template(circuit, inputs, weights + list(vector))
