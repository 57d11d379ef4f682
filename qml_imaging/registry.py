"""The experiment registry (torch-free): the ``experiment`` key of a config -> where its schema and its
``run(config, run_dir)`` function live, as ``module:attribute`` strings, so that a config can be
validated without importing torch or any pipeline."""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class PipelineEntry:
    """Where a pipeline's config schema and ``run(config, run_dir)`` function live."""

    config: str
    run: str


PIPELINES: dict[str, PipelineEntry] = {
    "inr_image": PipelineEntry("qml_imaging.pipelines.inr.config:InrImageConfig", "qml_imaging.pipelines.inr.image:run"),
    "inr_signal": PipelineEntry("qml_imaging.pipelines.inr.config:InrSignalConfig",
                                "qml_imaging.pipelines.inr.signal:run"),
    "inr_hardware": PipelineEntry("qml_imaging.pipelines.inr.config:InrHardwareConfig",
                                  "qml_imaging.pipelines.inr.hardware:run"),
    "inr_runtime": PipelineEntry("qml_imaging.pipelines.inr.config:InrRuntimeConfig",
                                 "qml_imaging.pipelines.inr.runtime:run"),
    "qcrb_parametric": PipelineEntry("qml_imaging.pipelines.qcrb.config:QcrbParametricConfig",
                                     "qml_imaging.pipelines.qcrb.parametric:run"),
    "qcrb_natural": PipelineEntry("qml_imaging.pipelines.qcrb.config:QcrbNaturalConfig",
                                  "qml_imaging.pipelines.qcrb.natural:run"),
    "g2_regression": PipelineEntry("qml_imaging.pipelines.g2.config:G2RegressionConfig",
                                   "qml_imaging.pipelines.g2.regression:run"),
    "srm_scan": PipelineEntry("qml_imaging.pipelines.g2.config:SrmScanConfig", "qml_imaging.pipelines.g2.scan:run"),
    "g2_measured": PipelineEntry("qml_imaging.pipelines.g2.config:G2MeasuredConfig",
                                 "qml_imaging.pipelines.g2.measured:run"),
    "diffusion_fewshot": PipelineEntry("qml_imaging.pipelines.diffusion.config:DiffusionFewShotConfig",
                                       "qml_imaging.pipelines.diffusion.pipeline:run"),
    "qiren_generation": PipelineEntry("qml_imaging.pipelines.generation.config:QirenGenerationConfig",
                                      "qml_imaging.pipelines.generation.pipeline:run"),
}


def resolve(reference: str):
    """The object a ``module:attribute`` string names (imports the module)."""
    module_name, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module_name), attribute)
