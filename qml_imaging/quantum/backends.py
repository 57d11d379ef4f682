"""Backends are data: a YAML file in ``hardware_configs/`` names a backend and its options, and
:func:`load_backend` turns it into an :class:`Executor` that runs any circuit template.

=================  ===========================================================================
``backend``        what runs the circuit
=================  ===========================================================================
``fast``           batched torch statevector (:mod:`qml_imaging.quantum.simulator`), backprop
``default.qubit``  PennyLane's simulator, parameter broadcasting + backprop
``lightning.qubit`` PennyLane Lightning, adjoint differentiation (one circuit per sample)
``qiskit.aer``     Qiskit Aer: exact (``shots: null``), sampled, or noisy with a fake IBM
                   device's noise model (``noise_from: FakeManilaV2``); parameter-shift gradients
``ibm``            an IBM Quantum backend by name through qiskit-ibm-runtime: a batch is one
                   EstimatorV2 PUB (:mod:`qml_imaging.quantum.runtime`); a fake backend name
                   (``FakeManilaV2``) runs the same path locally ("local testing mode")
=================  ===========================================================================

Credentials for ``ibm`` come from ``QISKIT_IBM_TOKEN`` / ``QISKIT_IBM_INSTANCE`` (and
``QISKIT_IBM_CHANNEL``) or an account saved with ``QiskitRuntimeService.save_account``; they are
never stored in configs, logs or reports.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, get_args

import yaml
from pydantic import Field, model_validator

from qml_imaging.config import ConfigError, Section, validate

class DynamicalDecoupling(Section):
    """EstimatorV2 ``dynamical_decoupling`` options (IBM hardware only)."""

    enable: bool = Field(False, description="insert pulse sequences on idle qubits")
    sequence_type: Literal["XX", "XpXm", "XY4"] = Field("XX", description="the decoupling sequence")


class Twirling(Section):
    """EstimatorV2 ``twirling`` options (IBM hardware only)."""

    enable_gates: bool = Field(False, description="Pauli-twirl two-qubit gates")
    enable_measure: bool = Field(True, description="twirl measurements (TREX readout mitigation)")
    num_randomizations: int | Literal["auto"] = Field("auto", description="twirled circuit instances per PUB")


class RuntimeOptions(Section):
    """How ``ibm`` backends submit: execution mode, error suppression and mitigation, retries."""

    mode: Literal["batch", "session", "job"] = Field(
        "batch", description="batch: independent jobs run back to back; session: exclusive access between jobs; "
                             "job: each job on its own")
    resilience_level: int = Field(1, ge=0, le=2, description="0 none, 1 readout mitigation (TREX), 2 adds ZNE")
    dynamical_decoupling: DynamicalDecoupling = Field(default_factory=DynamicalDecoupling)
    twirling: Twirling = Field(default_factory=Twirling)
    max_retries: int = Field(2, ge=0, description="resubmissions of a failed or lost job before giving up")
    poll_seconds: float = Field(10.0, gt=0, description="seconds between status checks while waiting for a job")


class ZeroNoiseExtrapolation(Section):
    """PennyLane ZNE (``qml.noise.mitigate_with_zne``): global unitary folding, then extrapolation to zero noise."""

    scale_factors: list[int] = Field([1, 3, 5], min_length=2, description="odd noise scale factors (1 = the circuit)")
    extrapolation: Literal["richardson", "linear"] = Field(
        "richardson", description="richardson: polynomial through all points; linear: least-squares line")


SIMULATOR_MAX_QUBITS = {"fast": 20, "default.qubit": 24, "lightning.qubit": 30, "qiskit.aer": 30}


class BackendConfig(Section):
    """One ``hardware_configs/*.yaml`` file."""

    backend: Literal["fast", "default.qubit", "lightning.qubit", "qiskit.aer", "ibm"]
    description: str = ""
    shots: int | None = Field(None, ge=1, description="measurements per circuit; null = exact expectation values")
    seed: int | None = Field(None, ge=0, description="simulator seed for shot sampling")
    method: Literal["automatic", "statevector", "density_matrix", "matrix_product_state"] = "statevector"
    noise_from: str | None = Field(None, description="fake IBM backend whose noise model Aer uses, e.g. FakeManilaV2")
    device_name: str | None = Field(None, description="IBM backend name (ibm_brisbane) or fake backend (FakeManilaV2)")
    optimization_level: int = Field(1, ge=0, le=3, description="Qiskit transpiler optimisation level")
    threads: int | None = Field(None, ge=1, description="OpenMP threads for lightning.qubit (see its YAML)")
    runtime: RuntimeOptions = Field(default_factory=RuntimeOptions, description="ibm only: how jobs are submitted")
    zne: ZeroNoiseExtrapolation | None = Field(None, description="qiskit.aer only: zero-noise extrapolation")

    @model_validator(mode="after")
    def _consistent(self) -> BackendConfig:
        if self.backend == "ibm" and not self.device_name:
            raise ValueError("backend 'ibm' needs device_name (an IBM backend such as ibm_brisbane, or FakeManilaV2)")
        if self.noise_from and self.backend != "qiskit.aer":
            raise ValueError("noise_from applies to backend 'qiskit.aer' only")
        if self.shots is not None and self.backend not in ("qiskit.aer", "ibm", "default.qubit"):
            raise ValueError(f"shots are not supported by backend {self.backend!r}; use qiskit.aer or default.qubit")
        if "runtime" in self.model_fields_set and self.backend != "ibm":
            raise ValueError("runtime options apply to backend 'ibm' only")
        if self.zne is not None:
            if self.backend != "qiskit.aer":
                raise ValueError("zne applies to backend 'qiskit.aer' only")
            if self.optimization_level != 0:
                raise ValueError(f"zne needs optimization_level 0, got {self.optimization_level}: "
                                 "the transpiler would cancel the folded gate pairs")
            if any(factor < 1 or factor % 2 == 0 for factor in self.zne.scale_factors):
                raise ValueError(f"zne scale_factors must be odd integers >= 1, got {self.zne.scale_factors}")
        return self


BACKEND_KINDS: tuple[str, ...] = get_args(BackendConfig.model_fields["backend"].annotation)


def hardware_configs_dir() -> Path:
    """The shipped ``hardware_configs/`` folder: ``./hardware_configs`` if present, else the one beside the package."""
    local = Path("hardware_configs")
    return local if local.is_dir() else Path(__file__).resolve().parents[2] / "hardware_configs"


def backend_config(spec: str | Path | dict | BackendConfig) -> BackendConfig:
    """Resolve a backend spec: a config, a mapping, a YAML path, a name in ``hardware_configs/``, or a backend kind."""
    if isinstance(spec, BackendConfig):
        return spec
    if isinstance(spec, dict):
        return validate(BackendConfig, spec, "backend config")
    path = Path(spec)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return validate(BackendConfig, yaml.safe_load(path.read_text()), str(path))
    named = hardware_configs_dir() / f"{spec}.yaml"
    if named.is_file():
        return validate(BackendConfig, yaml.safe_load(named.read_text()), str(named))
    if str(spec) in BACKEND_KINDS:
        return BackendConfig(backend=str(spec))
    shipped = sorted(p.stem for p in hardware_configs_dir().glob("*.yaml"))
    raise ConfigError(
        f"unknown backend {str(spec)!r}; expected a backend kind {list(BACKEND_KINDS)}, "
        f"a config name from hardware_configs/ {shipped}, or a path to a YAML file"
    )


def load_backend(spec: str | Path | dict | BackendConfig = "fast"):
    """The :class:`~qml_imaging.quantum.executors.Executor` for a backend spec (see :func:`backend_config`)."""
    from qml_imaging.quantum.executors import make_executor

    return make_executor(backend_config(spec))


def ibm_credentials_present() -> bool:
    """Whether IBM credentials are in the environment or saved on disk (never reads the token into logs)."""
    if os.environ.get("QISKIT_IBM_TOKEN"):
        return True
    saved = Path(os.environ.get("QISKIT_IBM_CONFIG", Path.home() / ".qiskit" / "qiskit-ibm.json"))
    return saved.is_file()
