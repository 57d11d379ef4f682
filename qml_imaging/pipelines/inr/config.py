"""Config schemas of the implicit-neural-representation pipelines (torch-free): ``inr_image``,
``inr_signal``, ``inr_hardware`` and ``inr_runtime``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from qml_imaging.config import ExperimentConfig, Section, TrainSettings
from qml_imaging.data.catalog import SKIMAGE_IMAGES
from qml_imaging.quantum.backends import BackendName, IbmBackendName


class InrModelSpec(Section):
    """One model of the comparison; its hidden width is chosen to meet the shared parameter budget."""

    kind: Literal["qiren", "relu", "tanh", "rff", "siren"]
    lr: float | None = Field(None, gt=0, description="learning rate of this model; null = train.lr")
    hidden_layers: int = Field(3, ge=1, le=16, description="hidden (or, for qiren, hybrid) layers")
    batch_norm: bool = Field(True, description="BatchNorm1d after each hidden Linear (relu, tanh, rff)")
    n_frequencies: int = Field(16, ge=1, le=1024, description="Fourier features (rff)")
    sigma: float = Field(5.0, gt=0, description="std of the Fourier frequencies for coordinates in [-1, 1] (rff)")
    omega_0: float = Field(30.0, gt=0, description="SIREN frequency factor (siren)")
    n_qubits: int = Field(8, ge=1, le=20, description="qubits = hidden width (qiren; not budget-matched)")
    reuploads: int = Field(2, ge=1, le=10, description="data re-uploads L per quantum layer (qiren)")
    sublayers: int = Field(2, ge=1, le=10, description="StronglyEntanglingLayers sub-layers K per block (qiren)")
    backend: BackendName = Field("fast", description="backend spec that runs the circuits (qiren): a kind, a "
                                                     "hardware_configs name or a YAML path")


class InrComparison(ExperimentConfig):
    """Keys shared by the INR comparisons: models at one parameter budget, seeds, the reference model."""

    parameter_budget: int = Field(657, ge=16, description="trainable parameters of every model (within 10 %)")
    seeds: int = Field(1, ge=1, le=20, description="independent fits per model")
    reference_model: str = Field("tanh", description="model the others' MSE is divided by in the summary")
    models: dict[str, InrModelSpec] = Field(min_length=1)
    train: TrainSettings = Field(default_factory=lambda: TrainSettings(epochs=301, eval_every=50))

    @model_validator(mode="after")
    def _reference_is_a_model(self) -> InrComparison:
        if self.reference_model not in self.models:
            raise ValueError(f"reference_model {self.reference_model!r} is not one of the models {list(self.models)}")
        return self


class InrImageConfig(InrComparison):
    """Fit every model in ``models`` to every image in ``images``, ``seeds`` times each."""

    experiment: Literal["inr_image"]
    images: list[str] = Field(default_factory=lambda: ["camera"], min_length=1)
    size: int = Field(32, ge=4, le=512, description="side of the square image in pixels")
    superres_size: int | None = Field(None, ge=4, le=1024, description="also evaluate on this finer grid; null = off")

    @field_validator("images")
    @classmethod
    def _known_images(cls, images: list[str]) -> list[str]:
        unknown = [name for name in images if name not in SKIMAGE_IMAGES]
        if unknown:
            raise ValueError(f"unknown image(s) {unknown}; expected names from {list(SKIMAGE_IMAGES)}")
        return images


class SignalSource(Section):
    """Where the signal comes from: a WAV file, or the generated default (``wav: null``)."""

    wav: str | None = Field(None, description="path of a PCM WAV file; null = the generated default signal")
    n_samples: int = Field(1000, ge=8, le=1_000_000)
    offset: int = Field(0, ge=0, description="first sample taken from the WAV file")


class InrSignalConfig(InrComparison):
    """Fit every model in ``models`` to one signal, ``seeds`` times each."""

    experiment: Literal["inr_signal"]
    signal: SignalSource = Field(default_factory=SignalSource)
    cutoff_fraction: float = Field(0.1, gt=0, lt=1, description="low/high band split, as a fraction of Nyquist")


class InrHardwareConfig(ExperimentConfig):
    """Which fitted QIREN to re-evaluate, on which backends, at how many pixels."""

    experiment: Literal["inr_hardware"]
    source_run: str = Field(description="run folder of a finished inr_image run")
    fit: str = Field("camera/qiren/seed0", description="IMAGE/MODEL/seedN of a QIREN fit in that run")
    backends: list[BackendName] = Field(min_length=1, description="backend specs: hardware_configs names or YAML paths")
    n_coordinates: int | None = Field(
        64, ge=1, description="random pixels evaluated (circuit-per-sample backends are slow); null = all"
    )


class InrRuntimeConfig(ExperimentConfig):
    """Which fitted QIREN to evaluate on which IBM Runtime backend, at how many pixels."""

    experiment: Literal["inr_runtime"]
    source_run: str = Field(description="run folder of a finished inr_image run")
    fit: str = Field("camera/qiren/seed0", description="IMAGE/MODEL/seedN of a QIREN fit in that run")
    backend: IbmBackendName = Field(description="backend spec of kind 'ibm': a hardware_configs name or YAML path "
                                                "(e.g. ibm_fake_brisbane), or an IBM / fake device name "
                                                "(ibm_brisbane, FakeBrisbane)")
    n_coordinates: int | None = Field(None, ge=1, description="random pixels evaluated; null = the whole image")
