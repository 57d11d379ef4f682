"""Config schema of the ``inr_runtime`` pipeline (torch-free)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from qml_imaging.config import ExperimentConfig


class InrRuntimeConfig(ExperimentConfig):
    """Which fitted QIREN to evaluate on which IBM Runtime backend, at how many pixels."""

    experiment: Literal["inr_runtime"]
    source_run: str = Field(description="run folder of a finished inr_image run")
    fit: str = Field("camera/qiren/seed0", description="IMAGE/MODEL/seedN of a QIREN fit in that run")
    backend: str = Field(description="hardware_configs name or YAML path of kind 'ibm' (e.g. ibm_fake_brisbane), "
                                     "or an IBM / fake backend name (ibm_brisbane, FakeBrisbane)")
    n_coordinates: int | None = Field(None, ge=1, description="random pixels evaluated; null = the whole image")
