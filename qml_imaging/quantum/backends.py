"""Backend specs: a YAML file in ``hardware_configs/`` (shipped inside the package) names what runs a
circuit and its options; :func:`backend_spec` resolves a name, a path or a mapping into a validated
:class:`BackendSpec`. This module imports no torch: ``qml-imaging validate`` checks backend names
with it. :func:`qml_imaging.quantum.factory.make_executor` turns a spec into an executor.

=================  ===========================================================================
``backend``        what runs the circuit
=================  ===========================================================================
``fast``           batched torch statevector (:mod:`qml_imaging.quantum.fast`), backprop
``default.qubit``  PennyLane's simulator, parameter broadcasting + backprop
``lightning.qubit`` PennyLane Lightning, adjoint differentiation (one circuit per sample)
``qiskit.aer``     Qiskit Aer: exact (``shots: null``), sampled, or noisy with a fake IBM
                   device's noise model (``noise_from: FakeManilaV2``); parameter-shift (or SPSA,
                   ``gradient: spsa``) gradients, a batch and its shifted circuits in one Aer run
``ibm``            an IBM Quantum device by name through qiskit-ibm-runtime: a batch is one
                   EstimatorV2 PUB (:mod:`qml_imaging.quantum.runtime`); a fake device name
                   (``FakeManilaV2``) runs the same path locally ("local testing mode")
any other name     any installed PennyLane device (``lightning.gpu``, ``default.mixed``,
                   ``qml_imaging.fast``): what ``qml.device(name, **device_kwargs)`` builds,
                   differentiated as PennyLane's ``diff_method="best"`` picks
=================  ===========================================================================

``device_kwargs`` are passed to ``qml.device`` for every PennyLane device (all kinds but ``fast`` and
``ibm``); a name that is neither a kind nor an installed device (a ``pennylane.plugins`` entry point)
is refused naming the installed devices.

Words: a *backend spec* is one of these YAML files (or the mapping it holds); an *executor*
(:mod:`qml_imaging.quantum.executors`) is the object that runs circuits for a spec; a *device* is
what PennyLane or IBM calls the simulator or machine underneath.

Credentials for ``ibm`` come from the environment or a saved account (:mod:`qml_imaging.quantum.ibm`);
they are never stored in specs, logs or reports.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from qml_imaging.config import ConfigError, Section, parse_yaml, read_yaml_file, validate
from qml_imaging.extras import QISKIT_MODULES, install_hint, missing
from qml_imaging.quantum.ibm import FAKE_PREFIX, IBM_DEVICE_PREFIX, fake_device_names
from qml_imaging.resources import BACKEND_SPECS, shipped_file, shipped_names

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


class SpsaOptions(Section):
    """SPSA gradients (Spall, IEEE TAC 37, 332 (1992)): ``2 samples + 1`` circuits per input instead of ``2G + 1``."""

    step: float = Field(0.1, gt=0, le=1.5707963267948966, description="perturbation c of every gate angle (radians)")
    samples: int = Field(1, ge=1, le=64, description="random directions averaged per input")


class ZeroNoiseExtrapolation(Section):
    """PennyLane ZNE (``qml.noise.mitigate_with_zne``): global unitary folding, then extrapolation to zero noise."""

    scale_factors: list[int] = Field([1, 3, 5], min_length=2,
                                     description="distinct odd noise scale factors (1 = the circuit)")
    extrapolation: Literal["richardson", "linear"] = Field(
        "richardson", description="richardson: polynomial through all points; linear: least-squares line")


ROLES = ("training", "evaluation", "noise")
"""What a config asks a backend to do: train through it (gradients), evaluate on it, measure noise bits."""

MAX_SIMULATED_QUBITS = 20
"""The toolkit's qubit limit for simulated circuits (a 20-qubit state of a 1024 batch is 8 GiB)."""

SIMULATOR_MAX_QUBITS = {"fast": MAX_SIMULATED_QUBITS, "default.qubit": 24, "lightning.qubit": 30, "qiskit.aer": 30}
PENNYLANE_DEVICE_MAX_QUBITS = 30
"""The qubit limit for any other PennyLane device named as a backend (its own limit may be lower)."""

BACKEND_KINDS: tuple[str, ...] = ("fast", "default.qubit", "lightning.qubit", "qiskit.aer", "ibm")
"""The built-in kinds; any installed PennyLane device name is accepted too (see :func:`pennylane_devices`)."""

OWN_DEVICE = "qml_imaging.fast"
"""This toolkit's PennyLane device (:mod:`qml_imaging.quantum.device`), known even where the installed
package metadata predates its entry point."""


def pennylane_devices() -> list[str]:
    """Names of the installed PennyLane devices (the ``pennylane.plugins`` entry points), sorted."""
    return sorted({entry.name for entry in entry_points(group="pennylane.plugins")} | {OWN_DEVICE})


def _known_backend(name: str) -> str:
    if name not in BACKEND_KINDS and name not in pennylane_devices():
        raise ValueError(f"unknown backend {name!r}; expected a kind {list(BACKEND_KINDS)} or an installed "
                         f"PennyLane device {pennylane_devices()}")
    return name


class BackendSpec(Section):
    """One ``hardware_configs/*.yaml`` file."""

    backend: Annotated[str, AfterValidator(_known_backend)] = Field(
        description="a kind (fast, default.qubit, lightning.qubit, qiskit.aer, ibm) or an installed PennyLane device")
    description: str = ""
    device_kwargs: dict[str, Any] = Field(default_factory=dict, description="keyword arguments for qml.device "
                                          "(PennyLane devices: every kind but fast and ibm), e.g. {c_dtype: ...}")
    shots: int | None = Field(None, ge=1, description="measurements per circuit; null = exact expectation values")
    seed: int | None = Field(None, ge=0, description="simulator seed for shot sampling")
    method: Literal["automatic", "statevector", "density_matrix", "matrix_product_state"] = "statevector"
    noise_from: str | None = Field(None, description="fake IBM backend whose noise model Aer uses, e.g. FakeManilaV2")
    device_name: str | None = Field(None, description="IBM backend name (ibm_brisbane) or fake backend (FakeManilaV2)")
    optimization_level: int = Field(1, ge=0, le=3, description="Qiskit transpiler optimisation level")
    threads: int | None = Field(None, ge=1, description="OpenMP threads for lightning.qubit (see its YAML)")
    runtime: RuntimeOptions = Field(default_factory=RuntimeOptions, description="ibm only: how jobs are submitted")
    zne: ZeroNoiseExtrapolation | None = Field(None, description="qiskit.aer only: zero-noise extrapolation")
    readout_mitigation: bool = Field(False, description="ibm only: correct each <Z_j> for the device's reported "
                                     "readout errors (per-qubit assignment matrices); for local testing mode, "
                                     "where runtime.resilience_level (TREX) has no effect")
    gradient: Literal["parameter-shift", "spsa"] = Field(
        "parameter-shift", description="how sampled backends (shots, qiskit.aer, ibm) differentiate: parameter shift "
                                       "(2 circuits per gate angle and input) or SPSA (2 * spsa.samples per input)")
    spsa: SpsaOptions = Field(default_factory=SpsaOptions, description="SPSA's step and directions (gradient: spsa)")

    @model_validator(mode="after")
    def _consistent(self) -> BackendSpec:
        if self.backend in ("qiskit.aer", "ibm") and missing(*QISKIT_MODULES):
            raise ValueError(f"backend {self.backend!r} needs Qiskit ({', '.join(missing(*QISKIT_MODULES))} "
                             f"not installed): {install_hint('qiskit')}")
        if self.backend == "ibm" and not self.device_name:
            raise ValueError("backend 'ibm' needs device_name (an IBM backend such as ibm_brisbane, or FakeManilaV2)")
        if self.noise_from and self.backend != "qiskit.aer":
            raise ValueError("noise_from applies to backend 'qiskit.aer' only")
        for name in (self.noise_from, self.device_name):
            if name and name.startswith(FAKE_PREFIX) and name not in fake_device_names():
                raise ValueError(f"unknown fake device {name!r}; expected one of {list(fake_device_names())}")
        if self.shots is not None and self.backend in ("fast", "lightning.qubit"):
            raise ValueError(f"shots are not supported by backend {self.backend!r}; use qiskit.aer or default.qubit")
        if self.device_kwargs and self.backend in ("fast", "ibm"):
            raise ValueError(f"device_kwargs apply to PennyLane devices, not backend {self.backend!r}")
        if "runtime" in self.model_fields_set and self.backend != "ibm":
            raise ValueError("runtime options apply to backend 'ibm' only")
        if self.zne is not None:
            self._check_zne()
        self._check_readout_mitigation()
        return self

    def _check_readout_mitigation(self) -> None:
        if not self.readout_mitigation:
            return
        if self.backend != "ibm":
            raise ValueError("readout_mitigation applies to backend 'ibm' only")
        if not self.device_name.startswith(FAKE_PREFIX) and self.runtime.resilience_level >= 1:
            raise ValueError(f"readout_mitigation with runtime.resilience_level {self.runtime.resilience_level} "
                             f"on {self.device_name} would correct readout twice (IBM applies TREX at level 1 and "
                             "above): set runtime.resilience_level: 0 or readout_mitigation: false")

    @model_validator(mode="after")
    def _gradient_options(self) -> BackendSpec:
        if ("gradient" in self.model_fields_set or "spsa" in self.model_fields_set) and not self.sampled:
            raise ValueError(f"gradient and spsa apply to sampled backends (shots, qiskit.aer, ibm); backend "
                             f"{self.backend!r} without shots is differentiated exactly")
        return self

    @property
    def sampled(self) -> bool:
        """Whether circuits run through :mod:`qml_imaging.quantum.sampled` or IBM Runtime (parameter-shift
        or SPSA gradients) rather than a differentiable simulator."""
        return self.shots is not None or self.backend in ("qiskit.aer", "ibm")

    def refuses(self, role: str) -> str | None:
        """Why this backend cannot play ``role`` (``training``: gradients; ``evaluation``; ``noise``: sampling
        bits for a noise bank), or None when it can."""
        if role not in ROLES:
            raise ValueError(f"unknown backend role {role!r}; expected one of {list(ROLES)}")
        if self.zne is not None and role == "training":
            return ("zero-noise extrapolation mitigates expectation values but gives no gradients; train on the "
                    "spec without zne and evaluate with it")
        if self.zne is not None and role == "noise":
            return "zero-noise extrapolation has no effect on sampled bits; measure noise with the spec without zne"
        return None

    def _check_zne(self) -> None:
        if self.backend != "qiskit.aer":
            raise ValueError("zne applies to backend 'qiskit.aer' only")
        if self.optimization_level != 0:
            raise ValueError(f"zne needs optimization_level 0, got {self.optimization_level}: "
                             "the transpiler would cancel the folded gate pairs")
        if any(factor < 1 or factor % 2 == 0 for factor in self.zne.scale_factors):
            raise ValueError(f"zne scale_factors must be odd integers >= 1, got {self.zne.scale_factors}")
        if len(set(self.zne.scale_factors)) != len(self.zne.scale_factors):
            raise ValueError(f"zne scale_factors must be distinct (extrapolation through repeated points is "
                             f"singular), got {self.zne.scale_factors}")


def local_spec_file(name: str | Path) -> Path | None:
    """The YAML file a backend name stands for in the current folder (``my_ibm``: ``./my_ibm.yaml`` or
    ``./my_ibm.yml``), or ``None``; a name with a suffix is a path and is not looked up here."""
    if Path(name).suffix:
        return None
    found = [Path(f"{name}{suffix}") for suffix in (".yaml", ".yml") if Path(f"{name}{suffix}").is_file()]
    return found[0].resolve() if found else None


def backend_spec(spec: str | Path | dict | BackendSpec) -> BackendSpec:
    """Resolve a backend spec: a :class:`BackendSpec`, a mapping, a YAML path, a name of a YAML file in the
    current folder (``my_ibm``: ``./my_ibm.yaml``, then ``./my_ibm.yml``; it comes before the shipped specs),
    a shipped name (``aer_shots``: ``hardware_configs/aer_shots.yaml``), a backend kind (``fast``) or a bare
    IBM device name (``ibm_brisbane``, ``FakeBrisbane``: kind ``ibm`` with default runtime options).

    Raises :class:`~qml_imaging.config.ConfigError` in one line naming the spec, where it was looked for and
    the known names.
    """
    if isinstance(spec, BackendSpec):
        return spec
    if isinstance(spec, dict):
        return validate(BackendSpec, spec, "backend spec")
    path = Path(spec)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return validate(BackendSpec, read_yaml_file(path), str(path))
    local = local_spec_file(spec)
    if local is not None:
        return validate(BackendSpec, read_yaml_file(local), str(local))
    shipped = shipped_file(BACKEND_SPECS, str(spec))
    if shipped is not None:
        return validate(BackendSpec, parse_yaml(shipped.read_text(), f"hardware_configs/{spec}.yaml"),
                        f"hardware_configs/{spec}.yaml")
    name = str(spec)
    if name in BACKEND_KINDS or name in pennylane_devices():
        return BackendSpec(backend=name)
    if name.startswith((IBM_DEVICE_PREFIX, FAKE_PREFIX)):
        return validate(BackendSpec, {"backend": "ibm", "device_name": name}, "backend")
    where = (f"no file {name} in the current folder ({Path.cwd()})" if Path(name).suffix else
             f"no {name}.yaml or {name}.yml in the current folder ({Path.cwd()})")
    raise ConfigError(
        f"unknown backend {name!r}: {where}, and not a shipped backend spec {shipped_names(BACKEND_SPECS)}, a backend "
        f"kind {list(BACKEND_KINDS)}, an installed PennyLane device {pennylane_devices()}, an IBM device name "
        "(ibm_...) or a fake device name (Fake...)"
    )


def ibm_backend_spec(spec: str | Path | BackendSpec) -> BackendSpec:
    """:func:`backend_spec`, refusing specs not of kind ``ibm`` (IBM Runtime jobs need one) with a
    :class:`~qml_imaging.config.ConfigError`."""
    resolved = backend_spec(spec)
    if resolved.backend != "ibm":
        raise ConfigError(f"backend {str(spec)!r} is of kind {resolved.backend!r}; IBM Runtime jobs need a backend of "
                          "kind 'ibm' (a hardware_configs/ibm_*.yaml, an IBM device name or a Fake* device name)")
    return resolved


def _field_check(resolve):
    """A pydantic after-validator: the name unchanged if ``resolve`` accepts it (a name of a YAML file in the
    current folder becomes that file's absolute path, so a resumed run finds it from anywhere), else a
    ValueError with its message."""
    def check(name: str) -> str:
        try:
            resolve(name)
        except ConfigError as error:
            raise ValueError(str(error)) from None
        local = None if Path(name).is_file() else local_spec_file(name)
        return name if local is None else str(local)
    return check


def _role_check(role: str):
    """A resolver accepting specs that can play ``role`` (see :meth:`BackendSpec.refuses`)."""
    def resolve(name: str) -> BackendSpec:
        spec = backend_spec(name)
        reason = spec.refuses(role)
        if reason is not None:
            raise ConfigError(f"backend {name!r} cannot be used for {role}: {reason}")
        return spec
    return resolve


BackendName = Annotated[str, AfterValidator(_field_check(backend_spec))]
"""A config field holding a backend spec name or path, checked when the config is validated (every
backend can evaluate circuits)."""

TrainingBackendName = Annotated[str, AfterValidator(_field_check(_role_check("training")))]
"""A backend spec name for circuits that are trained (gradients flow through them)."""

NoiseBackendName = Annotated[str, AfterValidator(_field_check(_role_check("noise")))]
"""A backend spec name whose executor samples the bits of a noise bank."""

IbmBackendName = Annotated[str, AfterValidator(_field_check(ibm_backend_spec))]
"""A config field naming a backend of kind ``ibm`` (see :func:`ibm_backend_spec`), checked at validation."""
