"""Pipelines: one per experiment kind (config -> data + model -> Trainer -> evaluation -> report).

``PIPELINES`` maps the ``experiment`` key of a config to where its schema and its
``run`` function live, as ``module:attribute`` strings, so that a config can be
validated without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PipelineEntry:
    """Where a pipeline's config schema and ``run(config, run_dir)`` function live."""

    config: str
    run: str
    summary: str


PIPELINES: dict[str, PipelineEntry] = {
    "inr_image": PipelineEntry(
        config="qml_imaging.pipelines.inr_image.config:InrImageConfig",
        run="qml_imaging.pipelines.inr_image.pipeline:run",
        summary="fit implicit neural representations to scikit-image images at a shared parameter budget",
    ),
    "inr_signal": PipelineEntry(
        config="qml_imaging.pipelines.inr_signal.config:InrSignalConfig",
        run="qml_imaging.pipelines.inr_signal.pipeline:run",
        summary="fit implicit neural representations to a 1-D signal (WAV or generated) at a shared parameter budget",
    ),
    "inr_hardware": PipelineEntry(
        config="qml_imaging.pipelines.inr_hardware.config:InrHardwareConfig",
        run="qml_imaging.pipelines.inr_hardware.pipeline:run",
        summary="re-evaluate a fitted QIREN on shot-based, noisy or hardware backends against exact simulation",
    ),
    "inr_runtime": PipelineEntry(
        config="qml_imaging.pipelines.inr_runtime.config:InrRuntimeConfig",
        run="qml_imaging.pipelines.inr_runtime.pipeline:run",
        summary="evaluate a fitted QIREN on IBM Runtime (or a fake backend), one Estimator job per quantum layer",
    ),
    "qcrb_parametric": PipelineEntry(
        config="qml_imaging.pipelines.qcrb.config:QcrbParametricConfig",
        run="qml_imaging.pipelines.qcrb.parametric:run",
        summary="U-Net denoisers and the Poisson MLE on a parameterised image family against the quantum Cramér-Rao bound",
    ),
    "qcrb_natural": PipelineEntry(
        config="qml_imaging.pipelines.qcrb.config:QcrbNaturalConfig",
        run="qml_imaging.pipelines.qcrb.natural:run",
        summary="U-Net denoisers of natural shot-noise images against the standard quantum and Heisenberg limits",
    ),
    "g2_regression": PipelineEntry(
        config="qml_imaging.pipelines.g2.config:G2RegressionConfig",
        run="qml_imaging.pipelines.g2.regression:run",
        summary="g2(0) from sparse HBT histograms: the paper's CNN against Levenberg-Marquardt fits",
    ),
    "srm_scan": PipelineEntry(
        config="qml_imaging.pipelines.g2.config:SrmScanConfig",
        run="qml_imaging.pipelines.g2.scan:run",
        summary="antibunching super-resolution: confocal scans, g2 maps by L-M and CNN, G2 images, FWHM ratio",
    ),
    "diffusion_fewshot": PipelineEntry(
        config="qml_imaging.pipelines.diffusion.config:DiffusionFewShotConfig",
        run="qml_imaging.pipelines.diffusion.pipeline:run",
        summary="few-shot DDPMs with none / classical / quantum bottlenecks and quantum noise, scored by FID and KID",
    ),
}
