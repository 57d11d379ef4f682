"""Config schema of the ``inr_hardware`` pipeline (torch-free)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from qml_imaging.config import ExperimentConfig


class InrHardwareConfig(ExperimentConfig):
    """Which fitted QIREN to re-evaluate, on which backends, at how many pixels."""

    experiment: Literal["inr_hardware"]
    source_run: str = Field(description="run folder of a finished inr_image run")
    fit: str = Field("camera/qiren/seed0", description="IMAGE/MODEL/seedN of a QIREN fit in that run")
    backends: list[str] = Field(min_length=1, description="hardware_configs names or YAML paths")
    n_coordinates: int | None = Field(
        64, ge=1, description="random pixels evaluated (circuit-per-sample backends are slow); null = all"
    )
