"""``qml.device("qml_imaging.fast", wires=..., shots=..., seed=...)``: the fast simulator as a PennyLane device.

Registered through the ``pennylane.plugins`` entry point (``pyproject.toml``), so any QNode, ``TorchLayer``,
``qml.draw`` or ``qml.specs`` can use it. Gates run on :mod:`qml_imaging.quantum.fast` (batched
torch statevector, backprop); operations without a matrix are decomposed by the device's preprocessing.
Exact ``expval`` / ``var`` / ``probs`` come from the simulator's readout; every other measurement
(``qml.state()``, ``density_matrix``, entropies) and every finite-shot measurement is taken from the
simulated final state by PennyLane's own measurement functions (``pennylane.devices.qubit.measure`` and
``measure_with_samples``), so ``shots=`` and ``seed=`` behave as on ``default.qubit`` (samples drawn from
the exact distribution with a NumPy generator seeded by ``seed``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pennylane as qml
import torch
from pennylane.devices import Device, ExecutionConfig
from pennylane.devices.modifiers import simulator_tracking, single_tape_support
from pennylane.devices.preprocess import (
    decompose,
    no_sampling,
    validate_device_wires,
    validate_measurements,
    validate_observables,
)
from pennylane.devices.qubit import measure, measure_with_samples
from pennylane.exceptions import DeviceError
from pennylane.math import Interface
from pennylane.measurements import SampleMeasurement, StateMeasurement
from pennylane.transforms import defer_measurements
from pennylane.transforms.core import CompilePipeline

from qml_imaging.quantum.backends import MAX_SIMULATED_QUBITS
from qml_imaging.quantum.tapes import reads_out, run_readout, run_state

NAME = "qml_imaging.fast"

NATIVE_GATES = frozenset({
    "Identity", "PauliX", "PauliY", "PauliZ", "Hadamard", "S", "T", "SX", "RX", "RY", "RZ", "Rot", "PhaseShift",
    "U1", "U2", "U3", "CNOT", "CY", "CZ", "CH", "SWAP", "ISWAP", "CSWAP", "Toffoli", "CRX", "CRY", "CRZ", "CRot",
    "ControlledPhaseShift", "IsingXX", "IsingYY", "IsingZZ", "IsingXY", "MultiRZ", "PauliRot", "QubitUnitary",
    "MultiControlledX", "GlobalPhase",
})
"""Gates the graph decomposition targets; any other operation with a matrix also runs natively."""

DERIVATIVE_INTERFACES = (Interface.TORCH, Interface.NUMPY)
"""Interfaces whose parameters the simulator differentiates by backprop (torch; NumPy needs no gradient)."""


def supports_operation(operation: qml.operation.Operator) -> bool:
    """Whether the simulator runs ``operation`` as it is: it has a matrix (mid-circuit measurements are deferred)."""
    return operation.has_matrix and not isinstance(operation, qml.ops.MidMeasure)


def _accepts_analytic(measurement) -> bool:
    return isinstance(measurement, StateMeasurement)


def _accepts_sampled(measurement) -> bool:
    return isinstance(measurement, SampleMeasurement)


def _observable_supported(observable) -> bool:
    if isinstance(observable, qml.ops.CompositeOp):
        return all(_observable_supported(o) for o in observable.operands)
    if isinstance(observable, qml.ops.SymbolicOp):
        return _observable_supported(observable.base)
    return observable.has_diagonalizing_gates or observable.has_matrix


def _observable_sampled(observable) -> bool:
    if isinstance(observable, qml.ops.CompositeOp):
        return all(_observable_sampled(o) for o in observable.operands)
    if isinstance(observable, qml.ops.SymbolicOp):
        return _observable_sampled(observable.base)
    return observable.has_diagonalizing_gates


@simulator_tracking
@single_tape_support
class FastDevice(Device):
    """The fast batched torch simulator as a PennyLane device.

    Args: ``wires`` (a count or labels; None: the circuit's own), ``shots`` (deprecated on devices in
    PennyLane 0.45 as on ``default.qubit``; prefer ``qml.set_shots``), ``seed`` (``"global"``: drawn
    from NumPy's global generator, None: OS entropy, an int: reproducible samples), ``c_dtype``
    (None, the default: complex64 when every torch gate parameter is float32, as ``TorchLayer`` passes
    them, else complex128; ``np.complex64`` or ``np.complex128`` force one precision).
    Raises DeviceError for more than :data:`~qml_imaging.quantum.backends.MAX_SIMULATED_QUBITS` wires
    or another ``c_dtype``.
    """

    def __init__(self, wires=None, shots=None, seed="global", c_dtype=None):
        super().__init__(wires=wires, shots=shots)
        if self.wires is not None and len(self.wires) > MAX_SIMULATED_QUBITS:
            raise DeviceError(f"{NAME} simulates at most {MAX_SIMULATED_QUBITS} wires, got {len(self.wires)}")
        if c_dtype is not None and c_dtype not in (np.complex64, np.complex128):
            raise DeviceError(f"{NAME} c_dtype must be None, numpy.complex64 or numpy.complex128, got {c_dtype!r}")
        self._real = None if c_dtype is None else torch.float32 if c_dtype == np.complex64 else torch.float64
        self._rng = np.random.default_rng(np.random.randint(0, 10_000_000) if seed == "global" else seed)

    @property
    def name(self) -> str:
        return NAME

    def supports_derivatives(self, execution_config: ExecutionConfig | None = None, circuit=None) -> bool:
        """Backprop with the torch interface (exact results only); other methods go through PennyLane's transforms."""
        if execution_config is None:
            return True
        if execution_config.gradient_method not in ("backprop", "best"):
            return False
        if execution_config.interface not in DERIVATIVE_INTERFACES:
            return False
        return circuit is None or not circuit.shots

    def setup_execution_config(self, config: ExecutionConfig | None = None, circuit=None) -> ExecutionConfig:
        """``best`` gradients become backprop; mid-circuit measurements are deferred (the only method here)."""
        config = config or ExecutionConfig()
        method = config.mcm_config.mcm_method
        if method not in (None, "deferred"):
            raise DeviceError(f"{NAME} supports mid-circuit measurement method 'deferred', not {method!r}")
        updates = {"mcm_config": replace(config.mcm_config, mcm_method="deferred")}
        if config.gradient_method == "best":
            updates["gradient_method"] = "backprop"
        if config.use_device_gradient is None:
            updates["use_device_gradient"] = updates.get("gradient_method", config.gradient_method) == "backprop"
        if config.grad_on_execution is None:
            updates["grad_on_execution"] = False
        if config.use_device_jacobian_product is None:
            updates["use_device_jacobian_product"] = False
        return replace(config, **updates)

    def preprocess_transforms(self, execution_config: ExecutionConfig | None = None) -> CompilePipeline:
        """Defer mid-circuit measurements, decompose operations without a matrix, validate wires,
        measurements and observables; with backprop, refuse finite shots."""
        config = execution_config or ExecutionConfig()
        pipeline = CompilePipeline()
        pipeline.add_transform(defer_measurements, allow_postselect=True)
        pipeline.add_transform(decompose, stopping_condition=supports_operation, target_gates=set(NATIVE_GATES),
                               device_wires=self.wires, name=NAME)
        pipeline.add_transform(validate_device_wires, self.wires, name=NAME)
        pipeline.add_transform(validate_measurements, analytic_measurements=_accepts_analytic,
                               sample_measurements=_accepts_sampled, name=NAME)
        pipeline.add_transform(validate_observables, stopping_condition=_observable_supported,
                               stopping_condition_shots=_observable_sampled, name=NAME)
        if config.gradient_method == "backprop":
            pipeline.add_transform(no_sampling, name=f"backprop + {NAME}")
        return pipeline

    def execute(self, circuits, execution_config: ExecutionConfig | None = None):
        """Results of each circuit in PennyLane's layout (one value per measurement, a leading batch
        dimension for broadcast circuits, a tuple per shot vector entry); torch tensors when any gate
        parameter is one, else NumPy arrays."""
        return tuple(self._simulate(circuit) for circuit in circuits)

    def _simulate(self, circuit: qml.tape.QuantumScript):
        circuit = circuit.map_to_standard_wires()
        real, device, as_torch = self._precision(circuit)
        if reads_out(circuit):
            values = run_readout(circuit, real, device)
            results = _split(circuit, values)
        else:
            results = self._measure_state(circuit, run_state(circuit, real, device), as_torch)
        if not as_torch:
            results = _to_numpy(results)
        return results[0] if len(circuit.measurements) == 1 and not circuit.shots.has_partitioned_shots else results

    def _precision(self, circuit) -> tuple[torch.dtype, torch.device, bool]:
        tensors = [p for p in circuit.get_parameters(trainable_only=False) if isinstance(p, torch.Tensor)]
        device = tensors[0].device if tensors else torch.device("cpu")
        single = bool(tensors) and all(t.dtype == torch.float32 for t in tensors)
        real = self._real or (torch.float32 if single else torch.float64)
        return real, device, bool(tensors)

    def _measure_state(self, circuit, state: torch.Tensor, as_torch: bool):
        batched = circuit.batch_size is not None
        n = max(len(circuit.wires), 1)
        state = state.reshape((-1,) + (2,) * n) if batched else state.reshape((2,) * n)
        if not as_torch:
            state = state.detach().cpu().numpy()
        if not circuit.shots:
            return tuple(measure(m, state, is_state_batched=batched) for m in circuit.measurements)
        results = measure_with_samples(circuit.measurements, state, shots=circuit.shots, is_state_batched=batched,
                                       rng=self._rng)
        if len(circuit.measurements) == 1 and circuit.shots.has_partitioned_shots:
            return tuple(result[0] for result in results)
        return results


def _split(circuit, values: torch.Tensor) -> tuple:
    """The readout columns ``(B or 1, n_values)`` as one result per measurement."""
    results, start = [], 0
    for measurement in circuit.measurements:
        probs = isinstance(measurement, qml.measurements.ProbabilityMP)
        width = 2 ** len(measurement.wires or circuit.wires) if probs else 1
        part = values[:, start:start + width]
        start += width
        part = part if circuit.batch_size is not None else part[0]
        results.append(part if width > 1 else part[..., 0])
    return tuple(results)


def _to_numpy(results):
    if isinstance(results, tuple):
        return tuple(_to_numpy(r) for r in results)
    return results.detach().cpu().numpy() if isinstance(results, torch.Tensor) else results
