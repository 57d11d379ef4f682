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
``ibm``            an IBM Quantum backend by name through qiskit-ibm-runtime (``qiskit.remote``);
                   a fake backend name (``FakeManilaV2``) runs the same path locally
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

    @model_validator(mode="after")
    def _consistent(self) -> BackendConfig:
        if self.backend == "ibm" and not self.device_name:
            raise ValueError("backend 'ibm' needs device_name (an IBM backend such as ibm_brisbane, or FakeManilaV2)")
        if self.noise_from and self.backend != "qiskit.aer":
            raise ValueError("noise_from applies to backend 'qiskit.aer' only")
        if self.shots is not None and self.backend not in ("qiskit.aer", "ibm", "default.qubit"):
            raise ValueError(f"shots are not supported by backend {self.backend!r}; use qiskit.aer or default.qubit")
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
