"""Config schema of the ``inr_signal`` pipeline (torch-free)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from qml_imaging.config import Section
from qml_imaging.pipelines.inr_image.config import InrComparison


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
