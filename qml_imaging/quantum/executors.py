"""Executors: run a :class:`~qml_imaging.quantum.circuits.CircuitTemplate` on a batch.

Every executor maps ``(inputs (B, n_qubits), weights)`` to expectation values ``(B, n_outputs)``
as a torch tensor, differentiable with respect to both (backprop for ``fast`` and ``default.qubit``,
adjoint for ``lightning.qubit``, parameter shift for Qiskit Aer) except on ``ibm`` backends, where
a batch is one EstimatorV2 job (:class:`~qml_imaging.quantum.runtime.RuntimeExecutor`, evaluation only).
"""

from __future__ import annotations

import os

import torch

from qml_imaging.quantum.backends import (
    SIMULATOR_MAX_QUBITS,
    BackendConfig,
    ZeroNoiseExtrapolation,
)
from qml_imaging.quantum.circuits import CircuitTemplate
from qml_imaging.quantum.simulator import expectation_values


class Executor:
    """Runs templates; subclasses set ``max_qubits`` and implement :meth:`_run`."""

    def __init__(self, config: BackendConfig, max_qubits: int):
        self.config = config
        self.max_qubits = max_qubits

    @property
    def name(self) -> str:
        return self.config.backend

    def check_fits(self, template: CircuitTemplate) -> None:
        """Raise ValueError when ``template`` needs more qubits than this backend has."""
        if template.n_qubits > self.max_qubits:
            raise ValueError(
                f"template {template.name!r} needs {template.n_qubits} qubits but backend {self.describe()} "
                f"has {self.max_qubits}"
            )

    def expvals(self, template: CircuitTemplate, inputs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        self.check_fits(template)
        return self._run(template, inputs, weights)

    def describe(self) -> str:
        return repr(self.name)

    def _run(self, template: CircuitTemplate, inputs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class FastExecutor(Executor):
    """Batched torch statevector simulation of the template's own PennyLane tape."""

    def _run(self, template, inputs, weights):
        return expectation_values(template.function, inputs, weights, template.n_qubits)


class QNodeExecutor(Executor):
    """Runs the template as a PennyLane QNode on a device; one QNode per template is cached."""

    def __init__(self, config: BackendConfig, max_qubits: int, make_device, diff_method: str):
        super().__init__(config, max_qubits)
        self._make_device = make_device
        self._diff_method = diff_method
        self._qnodes: dict[int, object] = {}

    def describe(self) -> str:
        detail = self.config.noise_from
        return f"{self.name!r}" + (f" ({detail})" if detail else "")

    def _qnode(self, template: CircuitTemplate):
        import pennylane as qml

        key = id(template.function)
        if key not in self._qnodes:
            device = self._make_device(template.n_qubits)
            qnode = qml.QNode(template.function, device, interface="torch", diff_method=self._diff_method)
            shots = self.config.shots
            qnode = qml.set_shots(qnode, shots=shots) if shots is not None else qnode
            self._qnodes[key] = with_zne(qnode, self.config.zne) if self.config.zne is not None else qnode
        return self._qnodes[key]

    def _run(self, template, inputs, weights):
        outputs = self._qnode(template)(inputs, weights)
        stacked = torch.stack([torch.as_tensor(o) for o in outputs], dim=-1)
        return stacked.reshape(inputs.shape[0], -1).to(inputs.dtype)


def with_zne(qnode, zne: ZeroNoiseExtrapolation):
    """``qnode`` mitigated by zero-noise extrapolation: each circuit is folded globally
    (``U (U^dagger U)^k``, noise scale ``2k + 1``), run at every scale factor, and the expectation
    values are extrapolated to scale 0 (Richardson: the polynomial through all points; linear: a
    least-squares line)."""
    import pennylane as qml

    if zne.extrapolation == "richardson":
        extrapolate, options = qml.noise.richardson_extrapolate, None
    else:
        extrapolate, options = qml.noise.poly_extrapolate, {"order": 1}
    return qml.noise.mitigate_with_zne(qnode, scale_factors=zne.scale_factors, folding=qml.noise.fold_global,
                                       extrapolate=extrapolate, extrapolate_kwargs=options)


def make_executor(config: BackendConfig) -> Executor:
    """The executor for a validated backend config."""
    import pennylane as qml

    kind = config.backend
    if kind == "fast":
        return FastExecutor(config, SIMULATOR_MAX_QUBITS["fast"])
    if kind == "default.qubit":
        diff = "backprop" if config.shots is None else "parameter-shift"
        return QNodeExecutor(config, SIMULATOR_MAX_QUBITS[kind],
                             lambda n: qml.device("default.qubit", wires=n, seed=config.seed), diff)
    if kind == "lightning.qubit":
        if config.threads is not None:
            os.environ["OMP_NUM_THREADS"] = str(config.threads)
        return QNodeExecutor(config, SIMULATOR_MAX_QUBITS[kind], lambda n: qml.device("lightning.qubit", wires=n), "adjoint")
    if kind == "qiskit.aer":
        return _aer_executor(config)
    return _ibm_executor(config)


def _aer_executor(config: BackendConfig) -> QNodeExecutor:
    import pennylane as qml

    options = {"method": config.method, "optimization_level": config.optimization_level}
    if config.seed is not None:
        options["seed_simulator"] = config.seed
    max_qubits = SIMULATOR_MAX_QUBITS["qiskit.aer"]
    if config.noise_from:
        from qiskit_aer.noise import NoiseModel

        from qml_imaging.quantum.runtime import fake_backend

        fake = fake_backend(config.noise_from)
        options["noise_model"] = NoiseModel.from_backend(fake)
        max_qubits = fake.num_qubits
    if config.noise_from and config.shots is None:
        raise ValueError("a noisy Aer backend needs shots (noise is sampled); set shots in its YAML")
    return QNodeExecutor(config, max_qubits, lambda n: qml.device("qiskit.aer", wires=n, **options), "parameter-shift")


def _ibm_executor(config: BackendConfig) -> Executor:
    from qml_imaging.quantum.runtime import RuntimeExecutor

    return RuntimeExecutor(config)
