"""Qiskit circuits as circuit templates: :func:`qiskit_template`.

A ``QuantumCircuit`` whose gate angles are Qiskit ``Parameter`` s (or ``ParameterVector`` elements and
arithmetic expressions of them, such as ``zz_feature_map``'s ``2 (pi - x0)(pi - x1)``) becomes a
:class:`~qml_imaging.quantum.circuits.CircuitTemplate`: the inputs fill the parameters named as inputs
(one column each), the weights those named as weights. The conversion is PennyLane-Qiskit's
(``qml.from_qiskit``); PennyLane-Qiskit binds any value that does not require a gradient into the
Qiskit circuit, which fails for a batch of angles ("Cannot assign object ... to parameter"), so every
value reaches it as a tensor that requires a gradient (a detached view where the caller's does not,
so no gradient flows back to a caller who did not ask for one).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import pennylane as qml
import torch

from qml_imaging.quantum.circuits import CircuitTemplate
from qml_imaging.quantum.user_circuits import count_outputs


def qiskit_template(circuit, inputs: Sequence, weights: Sequence, measurements: Callable[[], list] | None = None,
                    name: str = "qiskit", init_scale: float = math.pi, input_scale: float = 1.0) -> CircuitTemplate:
    """A template running ``circuit`` (a ``qiskit.QuantumCircuit`` without classical bits in use).

    ``inputs``: the Parameters fed by the template's inputs, in column order (a ``ParameterVector`` or
    a list; ``QuantumLayer`` then reads ``(B, len(inputs))`` inputs);
    ``weights``: the trainable Parameters, in the order of the template's flat weight vector of shape
    ``(len(weights),)``. Every parameter of ``circuit`` must be in exactly one of the two.
    ``measurements()`` returns the PennyLane measurements on wires ``0..n-1`` (Qiskit qubit ``j`` is
    wire ``j``; any expval, var or probs, counted into ``n_outputs``); default ``<Z_j>`` on every qubit.
    Raises ValueError naming parameters that are missing, repeated or not in the circuit.
    """
    inputs, weights = list(inputs), list(weights)
    _check_parameters(circuit, inputs, weights)
    n_qubits = circuit.num_qubits
    load = qml.from_qiskit(circuit)
    measure = measurements or (lambda: [qml.expval(qml.Z(j)) for j in range(n_qubits)])

    def function(x, w):
        values = {**_parameter_values(inputs, _unbound(x).movedim(-1, 0)), **_parameter_values(weights, _unbound(w))}
        load(params=values, wires=range(n_qubits))
        return measure()

    outputs = count_outputs(function, n_qubits, len(inputs), (len(weights),))
    return CircuitTemplate(name, n_qubits, (len(weights),), function, init_scale=init_scale, input_scale=input_scale,
                           input_count=len(inputs), output_count=outputs)


def _check_parameters(circuit, inputs: list, weights: list) -> None:
    named = inputs + weights
    repeated = sorted({p.name for p in named if named.count(p) > 1})
    missing = sorted(p.name for p in circuit.parameters if p not in named)
    foreign = sorted(p.name for p in named if p not in set(circuit.parameters))
    for problem, names in (("repeated", repeated), ("not given as inputs or weights", missing),
                           ("not in the circuit", foreign)):
        if names:
            raise ValueError(f"qiskit_template: parameters {names} are {problem}; every parameter of the circuit "
                             "must be named once, as an input or as a weight")


def _parameter_values(parameters: list, values) -> dict:
    """PennyLane-Qiskit's ``params`` mapping for ``parameters[i]`` taking ``values[i]``: a Parameter to its
    value, a ParameterVector to all its elements' values (PennyLane-Qiskit looks elements up through
    their vector); a vector given whole and in order maps to ``values`` itself (views keep the fast
    simulator's plan reusable)."""
    vector = getattr(parameters[0], "vector", None) if parameters else None
    if vector is not None and parameters == list(vector):
        return {vector: values}
    mapping, vectors = {}, {}
    for i, parameter in enumerate(parameters):
        if getattr(parameter, "vector", None) is None:
            mapping[parameter] = values[i]
        else:
            vectors.setdefault(parameter.vector, {})[parameter.index] = values[i]
    for vector, elements in vectors.items():
        like = next(iter(elements.values()))
        mapping[vector] = torch.stack([elements.get(i, torch.zeros_like(like)) for i in range(len(vector))])
    return mapping


def _unbound(value):
    """``value`` as PennyLane-Qiskit leaves it symbolic: requiring a gradient (a detached copy of the
    view if the caller's does not, so the caller's graph is untouched)."""
    if isinstance(value, torch.Tensor):
        return value if value.requires_grad else value.detach().requires_grad_()
    return qml.numpy.array(value, requires_grad=True)
