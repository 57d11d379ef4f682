"""The one place that turns a backend spec into an executor; it knows every executor kind and sits
above all of them (no executor module imports it), as PennyLane's device constructor sits above its devices.
"""

from __future__ import annotations

import os
from pathlib import Path

import pennylane as qml

from qml_imaging.quantum.backends import SIMULATOR_MAX_QUBITS, BackendSpec, backend_spec
from qml_imaging.quantum.executors import Executor, FastExecutor, QNodeExecutor
from qml_imaging.quantum.ibm import fake_device
from qml_imaging.quantum.runtime import RuntimeExecutor, job_service


def make_executor(spec: str | Path | dict | BackendSpec = "fast") -> Executor:
    """The executor of a backend spec (any form :func:`~qml_imaging.quantum.backends.backend_spec` resolves).

    Raises :class:`~qml_imaging.config.ConfigError` for an unknown spec, ValueError for a spec the
    device cannot run (a noisy Aer spec without shots), PermissionError / RuntimeError when an IBM
    device cannot be reached.
    """
    spec = backend_spec(spec)
    kind = spec.backend
    if kind == "fast":
        return FastExecutor(spec, SIMULATOR_MAX_QUBITS["fast"])
    if kind == "default.qubit":
        diff = "backprop" if spec.shots is None else "parameter-shift"
        return QNodeExecutor(spec, SIMULATOR_MAX_QUBITS[kind],
                             lambda n, seed: qml.device("default.qubit", wires=n, seed=seed), diff)
    if kind == "lightning.qubit":
        if spec.threads is not None:
            os.environ["OMP_NUM_THREADS"] = str(spec.threads)
        return QNodeExecutor(spec, SIMULATOR_MAX_QUBITS[kind],
                             _lightning_device, "adjoint")
    if kind == "qiskit.aer":
        return _aer_executor(spec)
    return RuntimeExecutor(spec, job_service(spec))


def _lightning_device(n_qubits: int, seed: int | None):
    seeded = {"seed": seed} if seed is not None else {}
    return qml.device("lightning.qubit", wires=n_qubits, **seeded)


def _aer_executor(spec: BackendSpec) -> QNodeExecutor:
    if spec.noise_from and spec.shots is None:
        raise ValueError("a noisy Aer backend needs shots (noise is sampled); set shots in its YAML")
    options = {"method": spec.method, "optimization_level": spec.optimization_level}
    max_qubits = SIMULATOR_MAX_QUBITS["qiskit.aer"]
    if spec.noise_from:
        from qiskit_aer.noise import NoiseModel

        device = fake_device(spec.noise_from)
        options["noise_model"] = NoiseModel.from_backend(device)
        max_qubits = device.num_qubits

    def make_device(n_qubits: int, seed: int | None):
        seeded = {**options, "seed_simulator": seed} if seed is not None else options
        return qml.device("qiskit.aer", wires=n_qubits, **seeded)

    return QNodeExecutor(spec, max_qubits, make_device, "parameter-shift")
