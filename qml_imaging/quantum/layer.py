"""``QuantumLayer``: a circuit template with trainable weights, run by an executor, as an ``nn.Module``."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
from torch import nn

from qml_imaging.quantum.backends import BackendSpec
from qml_imaging.quantum.circuits import CircuitTemplate
from qml_imaging.quantum.executors import Executor
from qml_imaging.quantum.factory import as_executor
from qml_imaging.quantum.shift import GradientNoise
from qml_imaging.quantum.user_circuits import template_from_circuit


class QuantumLayer(nn.Module):
    """Maps ``(B, n_inputs)`` inputs to ``(B, n_outputs)`` real outputs of ``template``: its measurements
    side by side, one column per ``expval`` / ``var`` and ``2**k`` per ``probs`` over ``k`` wires, in the
    order the circuit returns them (``n_inputs`` and ``n_outputs`` are the qubit count for the
    toolkit's templates).

    ``template`` is a :class:`~qml_imaging.quantum.circuits.CircuitTemplate`, or a QNode or quantum
    function taking ``inputs`` and the weight tensors named in ``weight_shapes`` (as ``qml.qnn.TorchLayer``
    takes them; see :func:`~qml_imaging.quantum.user_circuits.template_from_circuit`, which also takes
    ``n_qubits`` for a bare quantum function and ``n_inputs``); its weights are then one flat Parameter
    holding every named tensor in the dict's order (:meth:`named_weight` gives one back).
    Inputs are multiplied by ``template.input_scale`` (the angle per unit feature) before the
    circuit. Leading dimensions beyond one batch dimension are flattened and restored. The weights are a
    torch Parameter of ``template.weight_shape``, initialised ``U(-init_scale, init_scale)``
    (``pi`` for rotation angles) from the global torch generator. ``executor`` runs the circuit: an
    :class:`~qml_imaging.quantum.executors.Executor` (build one per backend spec with
    :func:`qml_imaging.quantum.factory.make_executor` and share it between layers), or a validated
    :class:`~qml_imaging.quantum.backends.BackendSpec` from which this layer builds its own (None:
    the ``fast`` backend). On a sampled backend (shots, Qiskit Aer, IBM) gradients are parameter-shift
    or SPSA estimates (:mod:`qml_imaging.quantum.shift`) and :attr:`gradient_noise` holds the shot-noise
    variance of the last weight gradient. Raises TypeError for anything else (resolve names with ``backend_spec``),
    ValueError for a QNode or function without ``weight_shapes`` and when the template needs more
    qubits than the executor has.
    """

    def __init__(self, template: CircuitTemplate | Callable, executor: Executor | BackendSpec | None = None,
                 weight_shapes: Mapping[str, int | tuple[int, ...]] | None = None, **circuit_options):
        super().__init__()
        if not isinstance(template, CircuitTemplate):
            if weight_shapes is None:
                raise ValueError(f"QuantumLayer of {getattr(template, '__name__', template)!r} needs weight_shapes "
                                 "(a dict naming each weight argument's shape), as qml.qnn.TorchLayer does")
            template = template_from_circuit(template, weight_shapes, **circuit_options)
        self.weight_shapes = {key: (size,) if isinstance(size, int) else tuple(size)
                              for key, size in (weight_shapes or {}).items()}
        self.template = template
        self.use_executor(executor)
        initial = (2 * torch.rand(template.weight_shape) - 1) * template.init_scale
        self.weights = nn.Parameter(initial)
        self.gradient_noise = GradientNoise()

    def use_executor(self, executor: Executor | BackendSpec | None) -> None:
        """Run the circuit on ``executor`` (an executor or a backend spec, as in the constructor) from now
        on, weights unchanged, e.g. to re-evaluate on a noisy device."""
        executor = as_executor(executor)
        executor.check_fits(self.template)
        self.executor = executor

    @property
    def n_qubits(self) -> int:
        return self.template.n_qubits

    @property
    def n_inputs(self) -> int:
        return self.template.n_inputs

    @property
    def n_outputs(self) -> int:
        return self.template.n_outputs

    def named_weight(self, name: str) -> torch.Tensor:
        """The weight tensor ``name`` of ``weight_shapes``: a view of the flat weights (gradients flow).
        Raises KeyError naming the known names."""
        if name not in self.weight_shapes:
            raise KeyError(f"no weight {name!r}; this layer's weights are {list(self.weight_shapes)}")
        sizes = {key: math.prod(shape) for key, shape in self.weight_shapes.items()}
        start = sum(sizes[key] for key in list(sizes)[:list(sizes).index(name)])
        return self.weights[start:start + sizes[name]].reshape(self.weight_shapes[name])

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Outputs ``(..., n_outputs)`` for ``inputs`` ``(..., n_inputs)`` of a floating dtype.

        The circuit runs in float64 for float64 inputs and in float32 otherwise (half and bfloat16
        inputs, and under autocast, which is switched off inside the layer); the outputs have the
        inputs' dtype. Raises TypeError for integer, boolean or complex inputs and ValueError for
        a wrong last dimension or non-finite values.
        """
        self._check_inputs(inputs)
        compute = torch.float64 if inputs.dtype == torch.float64 else torch.float32
        flat = inputs.reshape(-1, self.n_inputs).to(compute)
        if len(flat) == 0:
            return inputs.new_zeros(*inputs.shape[:-1], self.n_outputs)
        with torch.autocast(device_type=flat.device.type, enabled=False):
            if self.template.input_scale != 1.0:
                flat = flat * self.template.input_scale
            outputs = self.executor.expvals(self.template, flat, self.weights.to(compute), self.gradient_noise)
        return outputs.to(inputs.dtype).reshape(*inputs.shape[:-1], self.n_outputs)

    def _check_inputs(self, inputs: torch.Tensor) -> None:
        name = f"QuantumLayer({self.template.name!r})"
        if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point():
            kind = inputs.dtype if isinstance(inputs, torch.Tensor) else type(inputs).__name__
            raise TypeError(f"{name} expects a real floating-point tensor (angles in radians), got {kind}; "
                            "convert with .float()")
        if inputs.ndim < 2 or inputs.shape[-1] != self.n_inputs:
            raise ValueError(f"{name} expects inputs of shape (B, {self.n_inputs}), got {tuple(inputs.shape)}")
        if not torch.isfinite(inputs).all():
            raise ValueError(f"{name} got non-finite inputs (NaN or inf)")

    def random_state(self) -> object:
        """The executor's random state (None for one without a generator of its own): layers are random
        sources (:mod:`qml_imaging.random_sources`), so training checkpoints hold their backend's generators."""
        return self.executor.random_state()

    def set_random_state(self, state: object) -> None:
        """Inverse of :meth:`random_state`."""
        self.executor.set_random_state(state)

    def extra_repr(self) -> str:
        """Template, qubit count and backend, shown in the module's ``repr``."""
        return f"template={self.template.name}, qubits={self.n_qubits}, backend={self.executor.describe()}"
