"""A template as a circuit of single-angle rotations whose angles are an affine map of its arguments.

Parameter-shift and SPSA gradients on sampled backends (:mod:`qml_imaging.quantum.shift`) shift one
*gate angle* at a time, not one input or weight: a re-uploaded input sits in several gates, and the
two-term rule holds per gate. :func:`angle_form` therefore decomposes a template's tape into
``RX``, ``RY``, ``RZ``, ``PhaseShift`` (every generator with eigenvalues ``±1/2``, or ``{0, 1}``, so
``df/dθ = [f(θ + π/2) - f(θ - π/2)] / 2``; Mitarai et al., PRA 98, 032309 (2018); Schuld et al.,
PRA 99, 032331 (2019)) and fixed gates, and records the angles as ``angles = z @ matrix.T + offset``
with ``z = [inputs, weights.flatten()]``. The matrix is the Jacobian of the angles (torch autograd
through PennyLane's decomposition), checked to reproduce the angles at a second, random point:
a template whose angles are not affine in its arguments (an ``arccos`` encoding) is refused.
Readouts must be ``expval(PauliZ(j))``, what every toolkit template returns.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pennylane as qml
import torch
from pennylane.measurements import ExpectationMP

from qml_imaging.extras import require
from qml_imaging.quantum.circuits import CircuitTemplate

SHIFTABLE = {"RX": "rx", "RY": "ry", "RZ": "rz", "PhaseShift": "p"}
"""PennyLane rotations (two-term shift rule, shift π/2) and their Qiskit gate names."""
FIXED = {"CNOT": "cx", "CZ": "cz", "Hadamard": "h", "PauliX": "x", "PauliY": "y", "PauliZ": "z", "S": "s",
         "T": "t", "SX": "sx", "SWAP": "swap"}
"""Gates without parameters and their Qiskit names."""
DROPPED = {"GlobalPhase", "Identity"}
"""Operations that change no expectation value."""


@dataclass(frozen=True, eq=False)
class AngleForm:
    """``template`` as gates ``(name, wires, angle index or None)`` on ``n_qubits`` wires, ``<Z>`` read
    on ``readout`` (one wire per output), angles ``z @ matrix.T + offset`` (float64, ``(G, n_inputs + W)``)."""

    name: str
    n_qubits: int
    n_inputs: int
    operations: tuple[tuple[str, tuple[int, ...], int | None], ...]
    readout: tuple[int, ...]
    matrix: torch.Tensor
    offset: torch.Tensor

    @property
    def n_angles(self) -> int:
        return self.matrix.shape[0]

    @property
    def weight_matrix(self) -> torch.Tensor:
        """``d angles / d weights`` ``(G, W)``."""
        return self.matrix[:, self.n_inputs:]

    def angles(self, inputs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Gate angles ``(B, G)`` (radians, the inputs' dtype) for inputs ``(B, n_inputs)``; differentiable."""
        flat = weights.reshape(1, -1).to(inputs.dtype).expand(inputs.shape[0], -1)
        z = torch.cat([inputs, flat], dim=1)
        return z @ self.matrix.to(z).T + self.offset.to(z)

    def qiskit_circuit(self, measure: bool):
        """The gates as a ``QuantumCircuit`` whose angles are the parameters ``a[0] .. a[G-1]``; with
        ``measure``, every wire measured into the register ``meas`` (clbit j = wire j)."""
        circuit_module = require("qiskit.circuit", "a Qiskit circuit of a template")
        symbols = circuit_module.ParameterVector("a", self.n_angles)
        circuit = circuit_module.QuantumCircuit(self.n_qubits)
        for name, wires, index in self.operations:
            if index is None:
                getattr(circuit, FIXED[name])(*wires)
            else:
                getattr(circuit, SHIFTABLE[name])(symbols[index], *wires)
        if measure:
            circuit.measure_all()
        return circuit

    def pennylane_script(self, angles: np.ndarray, shots: int) -> qml.tape.QuantumScript:
        """The gates with angles ``(N, G)`` broadcast over ``N``, sampling every wire ``shots`` times."""
        operations = [getattr(qml, name)(wires=list(wires)) if index is None
                      else getattr(qml, name)(angles[:, index], wires=list(wires))
                      for name, wires, index in self.operations]
        return qml.tape.QuantumScript(operations, [qml.sample(wires=list(range(self.n_qubits)))], shots=shots)


@functools.lru_cache(maxsize=64)
def angle_form(template: CircuitTemplate) -> AngleForm:
    """The :class:`AngleForm` of ``template`` (cached per template).

    Raises ValueError naming the template when a gate has no two-term shift rule after decomposition,
    a readout is not ``<Z_j>``, or the gate angles are not affine in the inputs and weights.
    """
    size = template.n_inputs + int(np.prod(template.weight_shape, dtype=int))

    def angles_at(z: torch.Tensor) -> torch.Tensor:
        return _tape_angles(template, z)[1]

    origin = torch.zeros(size, dtype=torch.float64)
    operations, offset, readout = _tape_angles(template, origin)
    matrix = (torch.autograd.functional.jacobian(angles_at, origin).reshape(len(offset), size) if len(offset)
              else origin.new_zeros(0, size))
    probe = torch.empty(size, dtype=torch.float64).uniform_(-2.0, 2.0, generator=torch.Generator().manual_seed(0))
    if not torch.allclose(angles_at(probe), offset + matrix @ probe, atol=1e-9):
        raise ValueError(f"template {template.name!r}: its gate angles are not affine in its inputs and weights, "
                         "which parameter-shift gradients on sampled backends need (angle = a*x + b*w + c)")
    return AngleForm(template.name, template.n_qubits, template.n_inputs, operations, readout,
                     matrix.detach(), offset.detach())


def _tape_angles(template: CircuitTemplate, z: torch.Tensor) -> tuple[tuple, torch.Tensor, tuple[int, ...]]:
    """The decomposed gates of ``template`` at ``z = [inputs, weights]``, their angles ``(G,)`` and readout wires."""
    inputs = z[:template.n_inputs]
    weights = z[template.n_inputs:].reshape(template.weight_shape)
    tape = qml.tape.make_qscript(template.function)(inputs, weights)
    (tape,), _ = qml.transforms.decompose(tape, gate_set=set(SHIFTABLE) | set(FIXED) | DROPPED)
    operations: list[tuple[str, tuple[int, ...], int | None]] = []
    angles: list[torch.Tensor] = []
    for operation in tape.operations:
        if operation.name in DROPPED:
            continue
        if operation.name not in SHIFTABLE and operation.name not in FIXED:
            raise ValueError(f"template {template.name!r}: gate {operation.name} has no two-term shift rule; "
                             f"sampled backends differentiate {sorted(SHIFTABLE)} and fixed gates {sorted(FIXED)}")
        index = None
        if operation.name in SHIFTABLE:
            index = len(angles)
            angles.append(torch.as_tensor(operation.data[0], dtype=torch.float64).reshape(()))
        operations.append((operation.name, tuple(int(w) for w in operation.wires), index))
    return tuple(operations), torch.stack(angles) if angles else z.new_zeros(0), _readout(template, tape)


def _readout(template: CircuitTemplate, tape: qml.tape.QuantumScript) -> tuple[int, ...]:
    wires = []
    for measurement in tape.measurements:
        observable = measurement.obs
        if not isinstance(measurement, ExpectationMP) or observable is None or observable.name != "PauliZ":
            raise ValueError(f"template {template.name!r} measures {measurement}; sampled backends estimate "
                             "expval(PauliZ(j)) readouts only")
        wires.append(int(observable.wires[0]))
    return tuple(wires)
