"""Seeded random circuits against default.qubit (float64): outputs and both gradients.

Circuits of 2-10 qubits draw from the full gate set (parametric and constant, one- to three-qubit,
QubitUnitary, DiagonalQubitUnitary, PauliRot, controlled operations) with parameters taken from
weights, inputs, constants and expressions mixing them, and from the full measurement set
(expval and var of Pauli words, sums and products, Hermitian, Projector; probs of wires and of an
observable; fewer values than qubits). Every circuit runs under each execution strategy of the
fast simulator at batch sizes below and above the fusion thresholds.
"""

import numpy as np
import pennylane as qml
import pytest
import torch

from qml_imaging.quantum import fast
from qml_imaging.quantum.fast import FastOptions, Strategy
from qml_imaging.quantum.fast.costs import FUSE_MAX_QUBITS

N_CIRCUITS = 216
CHUNKS = 12

ONE_QUBIT_PARAMETRIC = [(qml.RX, 1), (qml.RY, 1), (qml.RZ, 1), (qml.PhaseShift, 1), (qml.Rot, 3), (qml.U3, 3)]
ONE_QUBIT_CONSTANT = [qml.Hadamard, qml.PauliX, qml.PauliY, qml.PauliZ, qml.S, qml.T, qml.SX]
TWO_QUBIT_PARAMETRIC = [(qml.CRX, 1), (qml.CRY, 1), (qml.CRZ, 1), (qml.CRot, 3), (qml.IsingXX, 1), (qml.IsingYY, 1),
                        (qml.IsingZZ, 1), (qml.ControlledPhaseShift, 1)]
TWO_QUBIT_CONSTANT = [qml.CNOT, qml.CZ, qml.CY, qml.SWAP]
THREE_QUBIT_CONSTANT = [qml.Toffoli, qml.CSWAP]


def _random_unitary(rng, dimension):
    matrix = rng.normal(size=(dimension, dimension)) + 1j * rng.normal(size=(dimension, dimension))
    q, r = np.linalg.qr(matrix)
    return q * (np.diagonal(r) / np.abs(np.diagonal(r)))


def _random_hermitian(rng, dimension):
    matrix = rng.normal(size=(dimension, dimension)) + 1j * rng.normal(size=(dimension, dimension))
    return (matrix + matrix.conj().T) / 2


def random_circuit(seed):
    """``(function, n_qubits, n_weights)``: a random circuit recipe, fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    n = int(rng.choice([2, 3, 3, 4, 4, 5, 6, 10])) if seed % 12 else int(rng.integers(7, 11))
    n_weights = 6
    recipe = []  # (kind, payload)
    for _ in range(int(rng.integers(4, 14 if n <= 6 else 8))):
        wires = [int(w) for w in rng.permutation(n)]
        choice = rng.random()
        if choice < 0.35:
            gate, count = ONE_QUBIT_PARAMETRIC[rng.integers(len(ONE_QUBIT_PARAMETRIC))]
            recipe.append(("param", gate, [_parameter(rng, n, n_weights) for _ in range(count)], wires[:1]))
        elif choice < 0.5:
            recipe.append(("const", ONE_QUBIT_CONSTANT[rng.integers(len(ONE_QUBIT_CONSTANT))], None, wires[:1]))
        elif choice < 0.65:
            gate, count = TWO_QUBIT_PARAMETRIC[rng.integers(len(TWO_QUBIT_PARAMETRIC))]
            recipe.append(("param", gate, [_parameter(rng, n, n_weights) for _ in range(count)], wires[:2]))
        elif choice < 0.78:
            recipe.append(("const", TWO_QUBIT_CONSTANT[rng.integers(len(TWO_QUBIT_CONSTANT))], None, wires[:2]))
        elif choice < 0.82 and n >= 3:
            recipe.append(("const", THREE_QUBIT_CONSTANT[rng.integers(2)], None, wires[:3]))
        elif choice < 0.86:
            k = int(rng.integers(1, 3))
            recipe.append(("unitary", None, _random_unitary(rng, 2**k), wires[:k]))
        elif choice < 0.89:
            k = int(rng.integers(1, 3))
            recipe.append(("diagonal", None, np.exp(1j * rng.uniform(0, 6, size=2**k)), wires[:k]))
        elif choice < 0.93:
            k = int(rng.integers(1, min(n, 3) + 1))
            word = "".join(rng.choice(list("XYZ"), size=k))
            recipe.append(("paulirot", word, _parameter(rng, n, n_weights), wires[:k]))
        elif choice < 0.96:
            recipe.append(("multirz", None, _parameter(rng, n, n_weights), wires[: int(rng.integers(2, min(n, 3) + 1))]))
        else:
            recipe.append(("ctrl", None, _parameter(rng, n, n_weights), wires[:2]))
    measurements = [_measurement(rng, n) for _ in range(int(rng.integers(1, min(n, 4) + 1)))]

    def circuit(inputs, weights):
        for kind, gate, payload, wires in recipe:
            if kind == "param":
                values = [_value(p, inputs, weights) for p in payload]
                if len(values) > 1:  # default.qubit cannot mix Python numbers and tensors in one Rot
                    values = [torch.tensor(v, dtype=torch.float64) if isinstance(v, float) else v for v in values]
                gate(*values, wires=wires)
            elif kind == "const":
                gate(wires=wires)
            elif kind == "unitary":
                qml.QubitUnitary(payload, wires=wires)
            elif kind == "diagonal":
                qml.DiagonalQubitUnitary(payload, wires=wires)
            elif kind == "paulirot":
                qml.PauliRot(_value(payload, inputs, weights), gate, wires=wires)
            elif kind == "multirz":
                qml.MultiRZ(_value(payload, inputs, weights), wires=wires)
            else:
                qml.ctrl(qml.RY(_value(payload, inputs, weights), wires=wires[1]), control=wires[0])
        return [build() for build in measurements]

    return circuit, n, n_weights


def _parameter(rng, n, n_weights):
    """A gate parameter: a weight, an input column, a constant, or an expression mixing them."""
    kind = rng.choice(["weight", "input", "constant", "expression"], p=[0.35, 0.3, 0.15, 0.2])
    return (str(kind), int(rng.integers(n_weights)), int(rng.integers(n)), float(rng.uniform(-3, 3)))


def _value(parameter, inputs, weights):
    kind, w, x, c = parameter
    if kind == "weight":
        return weights[w]
    if kind == "input":
        return inputs[..., x]
    if kind == "constant":
        return c
    return 0.5 * weights[w] + c * inputs[..., x]


def _measurement(rng, n):
    wires = [int(w) for w in rng.permutation(n)]
    pick = int(rng.integers(11))
    hermitian = _random_hermitian(rng, 2)
    hermitian2 = _random_hermitian(rng, 4)
    bits = [int(b) for b in rng.integers(0, 2, size=2)]
    variance = rng.random() < 0.3
    k = 1 + int(rng.integers(2))
    measure = qml.var if variance else qml.expval
    builders = [
        lambda: measure(qml.PauliZ(wires[0])),
        lambda: measure(qml.PauliX(wires[0])),
        lambda: measure(qml.PauliY(wires[0]) @ qml.PauliZ(wires[1])),
        lambda: measure(qml.Hermitian(hermitian, wires=wires[0])),
        lambda: measure(qml.Hermitian(hermitian2, wires=wires[:2])),
        lambda: measure(qml.Projector(bits, wires=wires[:2])),
        lambda: measure(qml.Hamiltonian([0.3, -1.2], [qml.PauliX(wires[0]), qml.PauliZ(wires[0]) @ qml.PauliY(wires[1])])),
        lambda: measure(qml.sum(qml.s_prod(0.7, qml.PauliZ(wires[1])), qml.Hermitian(hermitian, wires=wires[0]))),
        lambda: measure(qml.sum(qml.Hermitian(hermitian, wires=wires[0]), qml.PauliX(wires[0]))),
        lambda: qml.probs(wires=wires[:k]),
        lambda: qml.probs(op=qml.PauliX(wires[0])),
    ]
    return builders[pick]


def _flatten(outputs, batch):
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    columns = [torch.as_tensor(o).reshape(o.shape[0] if o.ndim == 2 or (o.ndim == 1 and batch > 1 and o.shape[0] == batch) else 1, -1)
               for o in outputs]
    return torch.cat([c.expand(batch, -1) for c in columns], dim=-1)


def _run_both(circuit, n, n_weights, batch, seed, options=None):
    generator = torch.Generator().manual_seed(seed)
    inputs = (torch.rand(batch, n, generator=generator, dtype=torch.float64) * 2 - 1) * 2
    weights = (torch.rand(n_weights, generator=generator, dtype=torch.float64) * 2 - 1) * 3
    results = []
    for reference in (False, True):
        x, w = inputs.clone().requires_grad_(), weights.clone().requires_grad_()
        if reference:
            qnode = qml.QNode(circuit, qml.device("default.qubit", wires=n), interface="torch", diff_method="backprop")
            outputs = _flatten(qnode(x, w), batch)
        else:
            outputs = fast.expectation_values(circuit, x, w, n, options or FastOptions())
        projection = torch.linspace(-1, 1.3, outputs.shape[-1], dtype=torch.float64)
        if outputs.requires_grad:  # False where no parameter comes from inputs or weights
            (outputs @ projection).sum().backward()
        results.append((outputs.detach(), x.grad if x.grad is not None else torch.zeros_like(x),
                        w.grad if w.grad is not None else torch.zeros_like(w)))
    return results


STRATEGIES = [(Strategy.COST_MODEL, None), (Strategy.DENSE, None), (Strategy.STRUCTURED, 1),
              (Strategy.STRUCTURED, 2), (Strategy.STRUCTURED, 3), (Strategy.COST_MODEL, 4)]


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_random_circuits_agree_with_default_qubit(chunk):
    for seed in range(chunk, N_CIRCUITS, CHUNKS):
        circuit, n, n_weights = random_circuit(seed)
        strategy, group = STRATEGIES[seed % len(STRATEGIES)]
        if strategy is Strategy.DENSE and n > FUSE_MAX_QUBITS:
            strategy = Strategy.COST_MODEL
        options = FastOptions(strategy, group)
        # below and above every fusion threshold: 1 sample, a few, and at least 2**n for small n
        batch = [1, 3, 2**n + 1 if n <= 5 else 5][seed % 3]
        (ours, ours_dx, ours_dw), (ref, ref_dx, ref_dw) = _run_both(circuit, n, n_weights, batch, seed, options)
        context = f"seed {seed}: {n} qubits, batch {batch}, {options}"
        assert ours.shape == ref.shape, context
        assert torch.allclose(ours, ref, atol=1e-9), context
        assert torch.allclose(ours_dx, ref_dx, atol=1e-8), context
        assert torch.allclose(ours_dw, ref_dw, atol=1e-8), context
