"""Settings of the physics simulations and estimators (torch-free): the one place their defaults and limits live.

The config schemas use these sections as they are (so ``validate`` checks them without importing torch),
and the torch code takes its defaults from them: :class:`~qml_imaging.physics.microscopy.ConfocalScan` from
:class:`ScanSettings`, :class:`~qml_imaging.physics.mle.PoissonMLE` from :class:`MleSettings`, the HBT
simulations from :data:`DEFAULT_EFFICIENCY`. ``tests/physics/test_settings.py`` checks each pair.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field, model_validator

from qml_imaging.config import Section

DEFAULT_EFFICIENCY = 0.0122
"""Coincidence efficiency of the HBT set-up (see :mod:`qml_imaging.physics.hbt`): calibrated so that an emitter
at 1e5 counts/s fills a 1 s histogram as the paper's do."""

Efficiency = Annotated[float, Field(DEFAULT_EFFICIENCY, gt=0, le=1, description="coincidence efficiency (see "
                                                                                "physics.hbt)")]
"""A config key holding a coincidence efficiency in (0, 1]."""

Baseline = Literal["auto", "singles", "tails", "fit"]
"""The uncorrelated level of a g2 fit (:func:`qml_imaging.pipelines.g2.lab.baselines_of`): from the singles
counts, from the tails, fitted, or ``auto`` (singles when the file has them, else tails)."""
BASELINES: tuple[str, ...] = get_args(Baseline)

PulsedMethod = Literal["auto", "windows", "fit"]
"""How a pulsed g2's peak areas are taken (:func:`qml_imaging.physics.pulsed_g2.pulsed_g2`): summed in windows,
from a model fit, or ``auto`` (windows unless the peaks overlap)."""
PULSED_METHODS: tuple[str, ...] = get_args(PulsedMethod)


class ScanSettings(Section):
    """:class:`qml_imaging.physics.microscopy.ConfocalScan` settings (nm, counts/s per detector, s per pixel)."""

    pixels: int = Field(32, ge=5, le=256)
    field_nm: float = Field(775.0, gt=0)
    psf_fwhm_nm: float = Field(300.0, gt=0)
    peak_rate: float = Field(1e5, gt=0, allow_inf_nan=False, description="an emitter's detected rate with the focus on it")
    background_rate: float = Field(0.0, ge=0, allow_inf_nan=False, description="uniform background rate")
    seconds: float = Field(5.0, gt=0, allow_inf_nan=False, description="acquisition time per pixel")


class MleSettings(Section):
    """:class:`qml_imaging.physics.mle.PoissonMLE` settings: multi-start screening and Fisher scoring."""

    candidates: int = Field(4096, ge=1, description="screened start points")
    starts: int = Field(8, ge=1, description="best candidates refined per realisation")
    iterations: int = Field(50, ge=1, description="max damped Fisher-scoring steps per start")

    @model_validator(mode="after")
    def _starts_within_candidates(self) -> MleSettings:
        if self.starts > self.candidates:
            raise ValueError(f"mle.starts ({self.starts}) must be <= mle.candidates ({self.candidates}): the starts "
                             f"are the best of the screened candidates")
        return self
