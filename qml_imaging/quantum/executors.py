"""Executors: run a :class:`~qml_imaging.quantum.circuits.CircuitTemplate` on a batch.

Every executor maps ``(inputs (B, n_inputs), weights)`` to the measured values ``(B, n_outputs)``
as a torch tensor, differentiable with respect to both: backprop for ``fast`` and exact ``default.qubit``,
adjoint for ``lightning.qubit``; parameter shift or SPSA over gate angles for sampled backends (shots,
Qiskit Aer, ``ibm``: :mod:`qml_imaging.quantum.sampled`, :class:`~qml_imaging.quantum.runtime.RuntimeExecutor`),
with a batch and all its shifted circuits in one execution. Qiskit Aer with ZNE stays on PennyLane-qiskit
(evaluation only). Every executor draws computational-basis samples of a template's state
(:meth:`Executor.sample_bits`), which is how the noise bank measures its qubits on any backend.

:func:`qml_imaging.quantum.factory.make_executor` builds the executor of a backend spec.
"""

from __future__ import annotations

import numpy as np
import pennylane as qml
import torch

from qml_imaging.quantum.backends import BackendSpec, ZeroNoiseExtrapolation
from qml_imaging.random_sources import generator_state, set_generator_state
from qml_imaging.quantum.circuits import CircuitTemplate
from qml_imaging.quantum.fast import DEFAULT_OPTIONS, FastOptions, basis_probabilities, caches, expectation_values
from qml_imaging.quantum.shift import GradientNoise


class Executor:
    """Runs templates; subclasses implement :meth:`_run` and :meth:`_sample`."""

    def __init__(self, spec: BackendSpec, max_qubits: int):
        self.spec = spec
        self.max_qubits = max_qubits

    @property
    def name(self) -> str:
        return self.spec.backend

    def check_fits(self, template: CircuitTemplate) -> None:
        """Raise ValueError when ``template`` needs more qubits than this backend has."""
        if template.n_qubits > self.max_qubits:
            raise ValueError(
                f"template {template.name!r} needs {template.n_qubits} qubits but backend {self.describe()} "
                f"has {self.max_qubits}"
            )

    def expvals(self, template: CircuitTemplate, inputs: torch.Tensor, weights: torch.Tensor,
                noise: GradientNoise | None = None) -> torch.Tensor:
        """Measured values ``(B, n_outputs)`` of ``template`` for ``inputs`` ``(B, n_inputs)`` (radians);
        executors that estimate gradients from shots write the weight gradient's shot-noise variance
        into ``noise`` on backward (exact executors leave it untouched)."""
        self.check_fits(template)
        return self._run(template, inputs, weights, noise)

    def sample_bits(self, template: CircuitTemplate, weights: torch.Tensor, shots: int,
                    seed: int | None = None) -> np.ndarray:
        """``(shots, n_qubits)`` uint8 outcomes of measuring every wire of ``template``'s state
        (inputs all zero) in the computational basis; wire 0 is column 0. ``seed`` seeds the simulator
        (None: the executor's own generator, seeded by the spec's ``seed``, or the global torch
        generator for ``fast``)."""
        self.check_fits(template)
        if shots < 1:
            raise ValueError(f"shots must be >= 1, got {shots}")
        return self._sample(template, weights, shots, seed)

    def random_state(self) -> object:
        """State of the generators this executor draws from as it runs, as tensors and plain data; None when
        it keeps none (exact simulation; :meth:`sample_bits` is seeded per call). An executor that samples
        from a generator of its own overrides this and :meth:`set_random_state`, and training checkpoints
        then hold its state (:mod:`qml_imaging.random_sources`; layers forward to their executor)."""
        return None

    def set_random_state(self, state: object) -> None:
        """Inverse of :meth:`random_state` (nothing to restore here)."""

    def describe(self) -> str:
        """A short name of the backend for reports and ``repr``."""
        return repr(self.name)

    def _run(self, template: CircuitTemplate, inputs: torch.Tensor, weights: torch.Tensor,
             noise: GradientNoise | None = None) -> torch.Tensor:
        raise NotImplementedError

    def _sample(self, template: CircuitTemplate, weights: torch.Tensor, shots: int, seed: int | None) -> np.ndarray:
        raise NotImplementedError


class FastExecutor(Executor):
    """Batched torch statevector simulation of the template's own PennyLane tape
    (:mod:`qml_imaging.quantum.fast`), executed with ``options`` (default: the cost model decides)."""

    def __init__(self, spec: BackendSpec, max_qubits: int, options: FastOptions = DEFAULT_OPTIONS):
        super().__init__(spec, max_qubits)
        self.options = options
        caches.hold(self)  # the simulator's caches are released when the last fast executor is collected

    def _run(self, template, inputs, weights, noise=None):
        return expectation_values(template.function, inputs, weights, template.n_qubits, self.options)

    def _sample(self, template, weights, shots, seed):
        inputs = torch.zeros(1, template.n_inputs, dtype=torch.float64)
        probabilities = basis_probabilities(template.function, inputs, weights.double(), template.n_qubits,
                                            self.options)[0]
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        outcomes = torch.multinomial(probabilities, shots, replacement=True, generator=generator).numpy()
        return basis_bits(outcomes, template.n_qubits)


def basis_bits(outcomes: np.ndarray, n_qubits: int) -> np.ndarray:
    """Computational-basis indices ``(shots,)`` as bits ``(shots, n_qubits)`` uint8, wire 0 the most significant."""
    return ((outcomes[:, None] >> np.arange(n_qubits - 1, -1, -1)) & 1).astype(np.uint8)


class QNodeExecutor(Executor):
    """Runs the template as a PennyLane QNode on a device; one QNode per template is cached.

    A device that samples shots from a NumPy generator of its own (``default.qubit``, ``qml_imaging.fast``
    with shots) advances it on every call; :meth:`random_state` holds those generators' states, one per
    device in the order the templates were first run, so a resumed fit samples what an uninterrupted one would.
    """

    def __init__(self, spec: BackendSpec, max_qubits: int, make_device, diff_method: str):
        super().__init__(spec, max_qubits)
        self._make_device = make_device
        self._diff_method = diff_method
        self._qnodes: dict[int, object] = {}
        self._devices: list = []
        self._restored: list = []  # states for devices not made yet (a resumed fit restores before its first call)

    def random_state(self) -> list | None:
        """States of the devices' shot generators (None for a device without one); None without such devices."""
        states = [generator_state(device._rng) if isinstance(getattr(device, "_rng", None), np.random.Generator)
                  else None for device in self._devices]
        return states if any(state is not None for state in states) else None

    def set_random_state(self, state: object) -> None:
        """Inverse of :meth:`random_state`; a device made later takes its state when it is made."""
        self._restored = list(state) if isinstance(state, list) else []
        for index in range(len(self._devices)):
            self._restore_device(index)

    def _restore_device(self, index: int) -> None:
        if index < len(self._restored) and self._restored[index] is not None:
            set_generator_state(self._devices[index]._rng, self._restored[index])

    def describe(self) -> str:
        """The backend's name, with the fake device its noise comes from."""
        detail = self.spec.noise_from
        return f"{self.name!r}" + (f" ({detail})" if detail else "")

    def _qnode(self, template: CircuitTemplate):
        key = id(template.function)
        if key not in self._qnodes:
            device = self._make_device(template.n_qubits, self.spec.seed)
            self._devices.append(device)
            self._restore_device(len(self._devices) - 1)
            qnode = qml.QNode(template.function, device, interface="torch", diff_method=self._diff_method)
            shots = self.spec.shots
            qnode = qml.set_shots(qnode, shots=shots) if shots is not None else qnode
            self._qnodes[key] = with_zne(qnode, self.spec.zne) if self.spec.zne is not None else qnode
        return self._qnodes[key]

    def _run(self, template, inputs, weights, noise=None):
        outputs = self._qnode(template)(inputs, weights)
        return output_columns(outputs, inputs.shape[0]).to(inputs.dtype)

    def _sample(self, template, weights, shots, seed):
        wires = list(range(template.n_qubits))
        device = self._make_device(template.n_qubits, seed)
        tape = qml.tape.make_qscript(template.function)(np.zeros(template.n_inputs), weights.detach().double().numpy())
        sampling = qml.tape.QuantumScript(tape.operations, [qml.sample(wires=wires)], shots=shots)
        (samples,) = qml.execute([sampling], device)
        return np.asarray(samples, dtype=np.uint8).reshape(shots, template.n_qubits)


def output_columns(outputs, batch: int) -> torch.Tensor:
    """A QNode's results (one tensor, or one per measurement: ``()``, ``(B,)``, ``(2**k,)`` or ``(B, 2**k)``)
    side by side as ``(batch, n_values)``, in the order returned."""
    parts = outputs if isinstance(outputs, (tuple, list)) else [outputs]
    return torch.cat([torch.as_tensor(part).reshape(batch, -1) for part in parts], dim=-1)


def with_zne(qnode, zne: ZeroNoiseExtrapolation):
    """``qnode`` mitigated by zero-noise extrapolation: each circuit is folded globally
    (``U (U^dagger U)^k``, noise scale ``2k + 1``), run at every scale factor, and the expectation
    values are extrapolated to scale 0 (Richardson: the polynomial through all points; linear: a
    least-squares line). Source: PennyLane ``qml.noise.mitigate_with_zne``."""
    if zne.extrapolation == "richardson":
        extrapolate, options = qml.noise.richardson_extrapolate, None
    else:
        extrapolate, options = qml.noise.poly_extrapolate, {"order": 1}
    return qml.noise.mitigate_with_zne(qnode, scale_factors=zne.scale_factors, folding=qml.noise.fold_global,
                                       extrapolate=extrapolate, extrapolate_kwargs=options)
