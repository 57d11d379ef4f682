"""The one place that turns a backend spec into an executor; it knows every executor kind and sits
above all of them (no executor module imports it), as PennyLane's device constructor sits above its devices.
"""

from __future__ import annotations

import os
from pathlib import Path

import pennylane as qml

from qml_imaging.config import ConfigError
from qml_imaging.quantum.backends import (
    OWN_DEVICE,
    PENNYLANE_DEVICE_MAX_QUBITS,
    SIMULATOR_MAX_QUBITS,
    BackendSpec,
    backend_spec,
)
from qml_imaging.quantum.executors import Executor, FastExecutor, QNodeExecutor
from qml_imaging.quantum.ibm import fake_device
from qml_imaging.quantum.runtime import RuntimeExecutor, job_service


def make_executor(spec: str | Path | dict | BackendSpec = "fast") -> Executor:
    """The executor of a backend spec (any form :func:`~qml_imaging.quantum.backends.backend_spec` resolves).

    Raises :class:`~qml_imaging.config.ConfigError` for an unknown spec or ``device_kwargs`` the
    device refuses, ValueError for a spec the device cannot run (a noisy Aer spec without shots),
    PermissionError / RuntimeError when an IBM device cannot be reached.
    """
    spec = backend_spec(spec)
    kind = spec.backend
    if kind == "fast":
        return FastExecutor(spec, SIMULATOR_MAX_QUBITS["fast"])
    if kind == "default.qubit":
        diff = "backprop" if spec.shots is None else "parameter-shift"
        return QNodeExecutor(spec, SIMULATOR_MAX_QUBITS[kind], _device_maker(spec), diff)
    if kind == "lightning.qubit":
        if spec.threads is not None:
            os.environ["OMP_NUM_THREADS"] = str(spec.threads)
        return QNodeExecutor(spec, SIMULATOR_MAX_QUBITS[kind], _device_maker(spec), "adjoint")
    if kind == "qiskit.aer":
        return _aer_executor(spec)
    if kind == "ibm":
        return RuntimeExecutor(spec, job_service(spec))
    return QNodeExecutor(spec, PENNYLANE_DEVICE_MAX_QUBITS, _device_maker(spec), "best")


def _device_maker(spec: BackendSpec):
    """``make_device(n_qubits, seed)`` for a PennyLane device with the spec's ``device_kwargs``; one
    device is built here so that kwargs the device refuses fail now, as a ConfigError naming them."""
    def make_device(n_qubits: int, seed: int | None):
        seeded = {"seed": seed} if seed is not None else {}
        if spec.backend == OWN_DEVICE:  # the class itself: installed metadata may predate its entry point
            from qml_imaging.quantum.device import FastDevice

            return FastDevice(wires=n_qubits, **seeded, **spec.device_kwargs)
        return qml.device(spec.backend, wires=n_qubits, **seeded, **spec.device_kwargs)

    try:
        make_device(1, spec.seed)
    except (TypeError, ValueError, qml.exceptions.DeviceError) as error:
        raise ConfigError(f"backend {spec.backend!r} refuses device_kwargs {spec.device_kwargs}: "
                          f"{type(error).__name__}: {error}") from None
    return make_device


def _aer_executor(spec: BackendSpec) -> QNodeExecutor:
    if spec.noise_from and spec.shots is None:
        raise ValueError("a noisy Aer backend needs shots (noise is sampled); set shots in its YAML")
    options = {"method": spec.method, "optimization_level": spec.optimization_level, **spec.device_kwargs}
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
