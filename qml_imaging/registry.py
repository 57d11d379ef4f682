"""The experiment registry (torch-free): the ``experiment`` key of a config -> where its schema, its
``run(config, run_dir)`` function and (for experiments that train a model) its loader live, as
``module:attribute`` strings, so that a config can be validated without importing torch or any pipeline,
and :func:`qml_imaging.training.artifacts.load_model` finds a loader without importing one."""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class PipelineEntry:
    """Where a pipeline's config schema, ``run(config, run_dir)`` function and model loader live.

    ``load``: ``load(run, fit) -> TrainedModel`` (``run`` a :class:`~qml_imaging.runs.RunDir`, ``fit`` a fit
    name or None for the first), or None for experiments without a trained model."""

    config: str
    run: str
    load: str | None = None


PIPELINES: dict[str, PipelineEntry] = {
    "inr_image": PipelineEntry("qml_imaging.pipelines.inr.config:InrImageConfig", "qml_imaging.pipelines.inr.image:run",
                               "qml_imaging.pipelines.inr.loading:load_image_fit"),
    "inr_signal": PipelineEntry("qml_imaging.pipelines.inr.config:InrSignalConfig",
                                "qml_imaging.pipelines.inr.signal:run",
                                "qml_imaging.pipelines.inr.loading:load_signal_fit"),
    "inr_hardware": PipelineEntry("qml_imaging.pipelines.inr.config:InrHardwareConfig",
                                  "qml_imaging.pipelines.inr.hardware:run"),
    "inr_runtime": PipelineEntry("qml_imaging.pipelines.inr.config:InrRuntimeConfig",
                                 "qml_imaging.pipelines.inr.runtime:run"),
    "qcrb_parametric": PipelineEntry("qml_imaging.pipelines.qcrb.config:QcrbParametricConfig",
                                     "qml_imaging.pipelines.qcrb.parametric:run"),
    "qcrb_natural": PipelineEntry("qml_imaging.pipelines.qcrb.config:QcrbNaturalConfig",
                                  "qml_imaging.pipelines.qcrb.natural:run"),
    "g2_regression": PipelineEntry("qml_imaging.pipelines.g2.config:G2RegressionConfig",
                                   "qml_imaging.pipelines.g2.regression:run",
                                   "qml_imaging.pipelines.g2.loading:load_regression_cnn"),
    "srm_scan": PipelineEntry("qml_imaging.pipelines.g2.config:SrmScanConfig", "qml_imaging.pipelines.g2.scan:run"),
    "g2_measured": PipelineEntry("qml_imaging.pipelines.g2.config:G2MeasuredConfig",
                                 "qml_imaging.pipelines.g2.measured:run",
                                 "qml_imaging.pipelines.g2.loading:load_measured_cnn"),
    "diffusion_fewshot": PipelineEntry("qml_imaging.pipelines.diffusion.config:DiffusionFewShotConfig",
                                       "qml_imaging.pipelines.diffusion.pipeline:run",
                                       "qml_imaging.pipelines.diffusion.loading:load_denoiser"),
    "qiren_generation": PipelineEntry("qml_imaging.pipelines.generation.config:QirenGenerationConfig",
                                      "qml_imaging.pipelines.generation.pipeline:run",
                                      "qml_imaging.pipelines.generation.loading:load_generator"),
}


def resolve(reference: str):
    """The object a ``module:attribute`` string names (imports the module)."""
    module_name, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module_name), attribute)
