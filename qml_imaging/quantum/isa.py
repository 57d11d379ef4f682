"""Circuit templates as Qiskit ISA circuits and Estimator PUBs.

A template's PennyLane tape (see :mod:`qml_imaging.quantum.circuits`) is rebuilt as a Qiskit
``QuantumCircuit`` in which the trained weights are fixed numbers and the ``n_qubits`` inputs are
free parameters ``x[0] .. x[n-1]``. That circuit is transpiled once to the backend's instruction set
(``generate_preset_pass_manager``); the readout observables <Z_j> follow its layout. A whole batch of
inputs ``(B, n_qubits)`` is then one Estimator PUB: the circuit, observables of shape ``(1, n)``
and parameter values of shape ``(B, 1, n)``, broadcast to expectation values ``(B, n)``.

Wire ``j`` of the template is virtual qubit ``j`` of the circuit. The gate conventions of PennyLane
and Qiskit agree for every gate mapped here (``Rot(phi, theta, omega) = RZ(omega) RY(theta) RZ(phi)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qml_imaging.extras import require
from qml_imaging.quantum.circuits import CircuitTemplate
from qml_imaging.quantum.device_chain import best_chain
from qml_imaging.runs import atomic_replace

TWO_QUBIT_GATES = ("ecr", "cz", "cx", "rzz", "swap")


@dataclass(frozen=True)
class IsaCircuit:
    """A template transpiled for one backend, with its readout observables in the backend's layout."""

    template_name: str
    n_inputs: int
    circuit: object
    """``qiskit.QuantumCircuit`` on the backend's qubits with parameters ``x[0] .. x[n_inputs-1]``."""
    observables: list
    """``SparsePauliOp`` per output, <Z_j> mapped through the layout."""

    @property
    def depth(self) -> int:
        return self.circuit.depth()

    @property
    def two_qubit_gates(self) -> int:
        counts = self.circuit.count_ops()
        return int(sum(counts.get(name, 0) for name in TWO_QUBIT_GATES))

    @property
    def physical_qubits(self) -> list[int]:
        """Backend qubits that carry the template's wires, in wire order."""
        layout = self.circuit.layout
        if layout is None:
            return list(range(self.n_inputs))
        return [int(q) for q in layout.final_index_layout()[: self.n_inputs]]

    def metrics(self) -> dict[str, object]:
        """Plain-data summary: depth, two-qubit gate count, operation counts and physical qubits."""
        return {"depth": self.depth, "two_qubit_gates": self.two_qubit_gates,
                "operations": {name: int(n) for name, n in self.circuit.count_ops().items()},
                "physical_qubits": self.physical_qubits}

    @classmethod
    def from_transpiled(cls, template_name: str, n_inputs: int, circuit) -> IsaCircuit:
        """Wrap a transpiled circuit; the <Z_j> observables follow its layout."""
        SparsePauliOp = require("qiskit.quantum_info", "an ISA circuit").SparsePauliOp
        observables = [SparsePauliOp.from_sparse_list([("Z", [wire], 1.0)], num_qubits=n_inputs)
                       .apply_layout(circuit.layout)
                       for wire in range(n_inputs)]
        return cls(template_name, n_inputs, circuit, observables)

    def save(self, path: str | Path) -> None:
        """Write the circuit (with its layout) as QPY, atomically."""
        qpy = require("qiskit.qpy", "saving an ISA circuit")
        with atomic_replace(path) as temporary, open(temporary, "wb") as handle:
            qpy.dump(self.circuit, handle)

    @classmethod
    def load(cls, path: str | Path, template_name: str, n_inputs: int) -> IsaCircuit:
        """The circuit :meth:`save` wrote."""
        qpy = require("qiskit.qpy", "loading an ISA circuit")
        with open(path, "rb") as handle:
            return cls.from_transpiled(template_name, n_inputs, qpy.load(handle)[0])

    def pub(self, inputs: np.ndarray) -> tuple:
        """The Estimator PUB for ``inputs`` ``(B, n_inputs)`` (radians): results broadcast to ``(B, n_outputs)``."""
        inputs = np.asarray(inputs, dtype=float)
        if inputs.ndim != 2 or inputs.shape[1] != self.n_inputs:
            raise ValueError(f"{self.template_name}: inputs must have shape (B, {self.n_inputs}), got {inputs.shape}")
        return (self.circuit, [self.observables], inputs[:, None, :])


def template_circuit(template: CircuitTemplate, weights) -> object:
    """``template`` with numeric ``weights`` as a Qiskit circuit whose inputs are parameters ``x``."""
    import pennylane as qml
    qiskit_circuit = require("qiskit.circuit", "a Qiskit circuit of a template")
    QuantumCircuit, ParameterVector = qiskit_circuit.QuantumCircuit, qiskit_circuit.ParameterVector

    symbols = ParameterVector("x", template.n_qubits)
    inputs = np.empty(template.n_qubits, dtype=object)
    inputs[:] = list(symbols)
    weights = np.asarray(weights.detach().cpu() if hasattr(weights, "detach") else weights, dtype=float)
    tape = qml.tape.make_qscript(template.function)(inputs, weights)
    (tape,), _ = qml.transforms.decompose(tape, gate_set=set(_GATES))
    circuit = QuantumCircuit(template.n_qubits)
    for operation in tape.operations:
        angles = [_angle(value) for value in operation.data]
        _GATES[operation.name](circuit, angles, list(operation.wires))
    return circuit


def transpile_template(template: CircuitTemplate, weights, backend, optimization_level: int = 1,
                       seed: int = 0) -> IsaCircuit:
    """Transpile ``template`` (weights fixed) to ``backend``'s ISA with the preset pass manager.

    A chain template (``template.chain_uses``) starts from the layout that puts wire ``j`` on qubit ``j`` of
    the backend's best chain (:func:`~qml_imaging.quantum.device_chain.best_chain`), so routing adds no SWAP.
    ``seed`` seeds the stochastic layout and routing passes; even so, equally good layouts can
    differ between calls, so a circuit that was submitted is kept (:meth:`IsaCircuit.save`), not rebuilt.
    """
    generate_preset_pass_manager = require("qiskit.transpiler", "transpiling").generate_preset_pass_manager
    if template.n_qubits > backend.num_qubits:
        raise ValueError(f"template {template.name!r} needs {template.n_qubits} qubits but backend "
                         f"{backend.name!r} has {backend.num_qubits}")
    circuit = template_circuit(template, weights)
    layout = None
    if template.chain_uses:
        layout = list(best_chain(backend.target, template.n_qubits, uses=template.chain_uses).qubits)
    manager = generate_preset_pass_manager(backend=backend, optimization_level=optimization_level,
                                           seed_transpiler=seed, initial_layout=layout)
    return IsaCircuit.from_transpiled(template.name, template.n_qubits, manager.run(circuit))


def _angle(value):
    """A gate parameter as a float, or the Qiskit parameter it holds."""
    item = value.item() if isinstance(value, np.ndarray) else value
    return item if hasattr(item, "parameters") else float(item)


def _rot(circuit, angles, wires):
    phi, theta, omega = angles
    circuit.rz(phi, wires[0])
    circuit.ry(theta, wires[0])
    circuit.rz(omega, wires[0])


_GATES = {
    "RX": lambda c, a, w: c.rx(a[0], w[0]),
    "RY": lambda c, a, w: c.ry(a[0], w[0]),
    "RZ": lambda c, a, w: c.rz(a[0], w[0]),
    "Rot": _rot,
    "Hadamard": lambda c, a, w: c.h(w[0]),
    "CNOT": lambda c, a, w: c.cx(w[0], w[1]),
    "CZ": lambda c, a, w: c.cz(w[0], w[1]),
}
