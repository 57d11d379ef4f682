"""The circuits PennyLane users write, as circuit templates: a QNode or a quantum function with a
``weight_shapes`` dict, as ``qml.qnn.TorchLayer`` takes them (:func:`template_from_circuit`).

The template's flat weight vector holds every named weight tensor one after the other (in the
dict's order); each call hands the function views of it reshaped to their shapes, so the fast
simulator sees every angle as an element of one weight vector and reuses its plan.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import pennylane as qml
import torch
from pennylane.measurements import ExpectationMP, ProbabilityMP, VarianceMP

from qml_imaging.quantum.circuits import CircuitTemplate


def template_from_circuit(circuit: Callable, weight_shapes: Mapping[str, int | tuple[int, ...]],
                          n_qubits: int | None = None, n_inputs: int | None = None, input_arg: str = "inputs",
                          name: str | None = None, init_scale: float = math.pi) -> CircuitTemplate:
    """A template calling ``circuit(inputs=x, **weights)`` (``input_arg`` names the inputs' argument).

    ``circuit``: a QNode (its quantum function is used; ``n_qubits`` defaults to its device's wire
    count) or a quantum function (``n_qubits`` required). ``weight_shapes``: name -> shape (an int is
    a vector); weights ``(sum of sizes,)``. ``n_inputs``: input features per sample (default
    ``n_qubits``). The outputs are counted by recording the circuit once (:func:`count_outputs`).
    Raises ValueError naming a missing qubit count, a bad shape or a measurement other than
    expval / var / probs.
    """
    function = getattr(circuit, "func", circuit)
    n_qubits = n_qubits if n_qubits is not None else _device_wires(circuit)
    shapes = {key: _shape(key, value) for key, value in weight_shapes.items()}
    sizes = [math.prod(shape) for shape in shapes.values()]

    def run(inputs, weights):
        named, offset = {}, 0
        for (key, shape), size in zip(shapes.items(), sizes):
            named[key] = weights[offset:offset + size].reshape(shape)
            offset += size
        return function(**{input_arg: inputs}, **named)

    width = n_inputs if n_inputs is not None else n_qubits
    label = name or getattr(function, "__name__", "circuit")
    outputs = count_outputs(run, n_qubits, width, (sum(sizes),))
    return CircuitTemplate(label, n_qubits, (sum(sizes),), run, init_scale=init_scale, input_count=width,
                           output_count=outputs)


def count_outputs(function: Callable, n_qubits: int, n_inputs: int, weight_shape: tuple[int, ...]) -> int:
    """Real values per sample that ``function(inputs (1, n_inputs), weights)`` returns: 1 per expval
    or var, ``2**k`` per probs over k wires (all ``n_qubits`` when none are named). Raises ValueError
    naming any other measurement (``qml.state()``, samples), or when there is none."""
    tape = qml.tape.make_qscript(function)(torch.zeros(1, n_inputs, dtype=torch.float64),
                                           torch.zeros(weight_shape, dtype=torch.float64))
    if not tape.measurements:
        raise ValueError("the circuit returns no measurement; return qml.expval, qml.var or qml.probs values")
    count = 0
    for measurement in tape.measurements:
        if isinstance(measurement, ProbabilityMP):
            count += 2 ** (len(measurement.wires) or n_qubits)
        elif isinstance(measurement, (ExpectationMP, VarianceMP)):
            count += 1
        else:
            raise ValueError(f"a layer's circuit returns expval, var and probs values, not {measurement!r}")
    return count


def _device_wires(circuit) -> int:
    device = getattr(circuit, "device", None)
    wires = getattr(device, "wires", None)
    if wires is None:
        raise ValueError("give n_qubits for a quantum function (a QNode on a device with wires gives its own)")
    return len(wires)


def _shape(key: str, value) -> tuple[int, ...]:
    shape = (value,) if isinstance(value, int) else tuple(value)
    if any(isinstance(size, bool) or not isinstance(size, int) or size < 1 for size in shape):
        raise ValueError(f"weight_shapes[{key!r}] must be a positive int or a tuple of them, got {value!r}")
    return shape
