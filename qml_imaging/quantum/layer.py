"""``QuantumLayer``: a circuit template with trainable weights, run by a backend, as an ``nn.Module``."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from qml_imaging.quantum.backends import BackendSpec
from qml_imaging.quantum.circuits import CircuitTemplate
from qml_imaging.quantum.executors import Executor
from qml_imaging.quantum.factory import make_executor


class QuantumLayer(nn.Module):
    """Maps ``(B, n_qubits)`` inputs to ``(B, n_outputs)`` expectation values of ``template``.

    Inputs are multiplied by ``template.input_scale`` (the angle per unit feature) before the
    circuit. Leading dimensions beyond one batch dimension are flattened and restored. The weights are a
    torch Parameter of ``template.weight_shape``, initialised ``U(-init_scale, init_scale)``
    (``pi`` for rotation angles) from the global torch generator. ``backend`` is an executor (build
    one per backend with :func:`qml_imaging.quantum.factory.make_executor` and share it between
    layers), or a backend spec, resolved here into an executor of this layer's own.
    """

    def __init__(self, template: CircuitTemplate, backend: Executor | str | Path | dict | BackendSpec = "fast"):
        super().__init__()
        self.template = template
        self.use_backend(backend)
        initial = (2 * torch.rand(template.weight_shape) - 1) * template.init_scale
        self.weights = nn.Parameter(initial)

    def use_backend(self, backend: Executor | str | Path | dict | BackendSpec) -> None:
        """Run the circuit on ``backend`` from now on (weights unchanged), e.g. to re-evaluate on a noisy device."""
        executor = backend if isinstance(backend, Executor) else make_executor(backend)
        executor.check_fits(self.template)
        self.executor = executor

    @property
    def n_qubits(self) -> int:
        return self.template.n_qubits

    @property
    def n_outputs(self) -> int:
        return self.template.n_outputs

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Expectation values ``(..., n_outputs)`` for ``inputs`` ``(..., n_qubits)`` of a floating dtype.

        The circuit runs in float64 for float64 inputs and in float32 otherwise (half and bfloat16
        inputs, and under autocast, which is switched off inside the layer); the outputs have the
        inputs' dtype. Raises TypeError for integer, boolean or complex inputs and ValueError for
        a wrong last dimension or non-finite values.
        """
        self._check_inputs(inputs)
        compute = torch.float64 if inputs.dtype == torch.float64 else torch.float32
        flat = inputs.reshape(-1, self.n_qubits).to(compute)
        if len(flat) == 0:
            return inputs.new_zeros(*inputs.shape[:-1], self.n_outputs)
        with torch.autocast(device_type=flat.device.type, enabled=False):
            if self.template.input_scale != 1.0:
                flat = flat * self.template.input_scale
            outputs = self.executor.expvals(self.template, flat, self.weights.to(compute))
        return outputs.to(inputs.dtype).reshape(*inputs.shape[:-1], self.n_outputs)

    def _check_inputs(self, inputs: torch.Tensor) -> None:
        name = f"QuantumLayer({self.template.name!r})"
        if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point():
            kind = inputs.dtype if isinstance(inputs, torch.Tensor) else type(inputs).__name__
            raise TypeError(f"{name} expects a real floating-point tensor (angles in radians), got {kind}; "
                            "convert with .float()")
        if inputs.ndim < 2 or inputs.shape[-1] != self.n_qubits:
            raise ValueError(f"{name} expects inputs of shape (B, {self.n_qubits}), got {tuple(inputs.shape)}")
        if not torch.isfinite(inputs).all():
            raise ValueError(f"{name} got non-finite inputs (NaN or inf)")

    def extra_repr(self) -> str:
        """Template, qubit count and backend, shown in the module's ``repr``."""
        return f"template={self.template.name}, qubits={self.n_qubits}, backend={self.executor.describe()}"
