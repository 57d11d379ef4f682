"""The one place that turns a backend spec into an executor; it knows every executor kind and sits
above all of them (no executor module imports it), as PennyLane's device constructor sits above its devices.

Names (``"fast"``, ``"aer_shots"``, a YAML path, an installed PennyLane device) are resolved into a
validated :class:`~qml_imaging.quantum.backends.BackendSpec` once, at the edge (config validation,
the CLI), with :func:`~qml_imaging.quantum.backends.backend_spec`; below it only specs and executors travel.
"""

from __future__ import annotations

import pennylane as qml

from qml_imaging.config import ConfigError
from qml_imaging.extras import QISKIT_MODULES, check
from qml_imaging.quantum.backends import (
    OWN_DEVICE,
    PENNYLANE_DEVICE_MAX_QUBITS,
    SIMULATOR_MAX_QUBITS,
    BackendSpec,
    backend_spec,
)
from qml_imaging.quantum.executors import Executor, FastExecutor, QNodeExecutor
from qml_imaging.quantum.fast import DEFAULT_OPTIONS, FastOptions
from qml_imaging.quantum.ibm import fake_device
from qml_imaging.quantum.runtime import RuntimeExecutor, job_service
from qml_imaging.quantum.sampled import AerRunner, PennyLaneRunner, SampledExecutor, device_noise_model


def make_executor(spec: BackendSpec, options: FastOptions = DEFAULT_OPTIONS) -> Executor:
    """The executor of a validated backend spec (``options``: how the ``fast`` kind executes).

    Raises TypeError for anything but a :class:`BackendSpec` (resolve a name with
    :func:`~qml_imaging.quantum.backends.backend_spec` first), :class:`~qml_imaging.config.ConfigError`
    for ``device_kwargs`` the device refuses, ValueError for a spec the device cannot run (a noisy Aer
    spec without shots), PermissionError / RuntimeError when an IBM device cannot be reached.
    """
    if not isinstance(spec, BackendSpec):
        raise TypeError(f"make_executor takes a BackendSpec, got {type(spec).__name__} {spec!r}; resolve a backend "
                        "spec name or YAML path with qml_imaging.quantum.backends.backend_spec first")
    kind = spec.backend
    if kind == "fast":
        return FastExecutor(spec, SIMULATOR_MAX_QUBITS["fast"], options)
    if kind == "default.qubit" and spec.shots is None:
        return QNodeExecutor(spec, SIMULATOR_MAX_QUBITS[kind], _device_maker(spec), "backprop")
    if kind == "lightning.qubit":
        return QNodeExecutor(spec, SIMULATOR_MAX_QUBITS[kind], _device_maker(spec), "adjoint")
    if kind == "qiskit.aer":
        return _aer_executor(spec)
    if kind == "ibm":
        return RuntimeExecutor(spec, job_service(spec))
    max_qubits = SIMULATOR_MAX_QUBITS.get(kind, PENNYLANE_DEVICE_MAX_QUBITS)
    if spec.shots is not None:
        return SampledExecutor(spec, max_qubits, PennyLaneRunner(spec, _device_maker(spec)))
    return QNodeExecutor(spec, max_qubits, _device_maker(spec), "best")


def as_executor(executor: Executor | BackendSpec | None) -> Executor:
    """``executor`` itself, or the executor of a backend spec (None: the shipped ``fast`` spec);
    raises TypeError as :func:`make_executor` for anything else (a name is resolved at the edge)."""
    if isinstance(executor, Executor):
        return executor
    return make_executor(backend_spec("fast") if executor is None else executor)


def _device_maker(spec: BackendSpec):
    """``make_device(n_qubits, seed)`` for a PennyLane device with the spec's ``device_kwargs``; one
    device is built here so that kwargs the device refuses fail now, as a ConfigError naming them.
    A lightning.qubit spec's ``threads`` is set on the OpenMP runtime Lightning ships (its own libgomp)
    once a device has loaded it, so Lightning does not fight torch's threads; no environment variable is set."""
    def make_device(n_qubits: int, seed: int | None):
        seeded = {"seed": seed} if seed is not None else {}
        if spec.backend == OWN_DEVICE:  # the class itself: installed metadata may predate its entry point
            from qml_imaging.quantum.device import FastDevice

            return FastDevice(wires=n_qubits, **seeded, **spec.device_kwargs)
        device = qml.device(spec.backend, wires=n_qubits, **seeded, **spec.device_kwargs)
        if spec.backend == "lightning.qubit" and spec.threads is not None:
            limit_openmp_threads("pennylane_lightning", spec.threads)
        return device

    try:
        make_device(1, spec.seed)
    except (TypeError, ValueError, qml.exceptions.DeviceError) as error:
        raise ConfigError(f"backend {spec.backend!r} refuses device_kwargs {spec.device_kwargs}: "
                          f"{type(error).__name__}: {error}") from None
    return make_device


def limit_openmp_threads(package: str, threads: int) -> int:
    """Set to ``threads`` the OpenMP thread count (for this thread's parallel regions) of every loaded
    OpenMP runtime whose file lies in ``package``'s folders (threadpoolctl); returns how many it set."""
    from threadpoolctl import ThreadpoolController

    runtimes = [runtime for runtime in ThreadpoolController().select(user_api="openmp").lib_controllers
                if f"/{package}" in runtime.filepath]
    for runtime in runtimes:
        runtime.set_num_threads(threads)
    return len(runtimes)


def _aer_executor(spec: BackendSpec) -> Executor:
    """Aer through its primitives (:class:`~qml_imaging.quantum.sampled.AerRunner`); a spec with ``zne``
    through PennyLane-qiskit's device, which ``qml.noise.mitigate_with_zne`` folds (evaluation only)."""
    if spec.noise_from and spec.shots is None:
        raise ValueError("a noisy Aer backend needs shots (noise is sampled); set shots in its YAML")
    check("backend 'qiskit.aer'", *QISKIT_MODULES)
    if spec.zne is None:
        max_qubits = fake_device(spec.noise_from).num_qubits if spec.noise_from else SIMULATOR_MAX_QUBITS[spec.backend]
        return SampledExecutor(spec, max_qubits, AerRunner(spec))
    options = {"method": spec.method, "optimization_level": spec.optimization_level, **spec.device_kwargs}
    max_qubits = SIMULATOR_MAX_QUBITS["qiskit.aer"]
    if spec.noise_from:
        options["noise_model"] = device_noise_model(spec.noise_from)
        max_qubits = fake_device(spec.noise_from).num_qubits

    def make_device(n_qubits: int, seed: int | None):
        seeded = {**options, "seed_simulator": seed} if seed is not None else options
        return qml.device("qiskit.aer", wires=n_qubits, **seeded)

    return QNodeExecutor(spec, max_qubits, make_device, "parameter-shift")
