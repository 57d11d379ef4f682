"""``srm_scan``: antibunching super-resolution from simulated confocal scans (paper 002, Fig. 5-6).

For every scene (emitter positions) the scan of :class:`~qml_imaging.physics.microscopy.ConfocalScan`
gives each pixel an HBT histogram (``scan.seconds`` of acquisition) and singles counts. g2(0) is
estimated per pixel by the CNN of a finished ``g2_regression`` run and by the L-M fit with the
known baseline; pixels with fewer than 4 coincidences are dark, g2(0) = 1, for both (the CNN's
training convention). G2 images ``N^2 (1 - g2(0))`` follow from the measured counts ``N``. Cross-
sections through the first emitter's row (mean of that row and its two neighbours) are fitted with
a Gaussian plus offset.

Summary (``report.json``): ``fwhm_ratio`` (PL FWHM / CNN G2 FWHM, scene ``one``; sqrt(2) = 1.414
expected), ``fwhm_nm`` {scene: {"pl", "g2_cnn", "g2_lm", "g2_true"}}, ``dip`` {scene: {image: depth}}
for scenes with two or more emitters (between the first two emitters, along the first one's row),
``g2_map_mae`` and ``g2_map_rmse`` {scene: {"cnn", "lm"}} (pixels with at least 4 coincidences),
``g2_map_mape`` alike (percent, over those pixels whose true g2(0) is above
:data:`~qml_imaging.pipelines.g2.config.MAPE_FLOOR`; ``None`` when there is none, e.g. a perfect
emitter, g2(0) = 0, without background), ``cnn_seconds_per_1024`` and ``lm_seconds_per_pixel``.
Pixels without light (zero rate) are dark: zero counts, g2(0) = 1.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from qml_imaging.physics.g2_fit import DARK_THRESHOLD
from qml_imaging.pipelines.g2.lm import fit_g2_grid
from qml_imaging.physics.hbt import DelayAxis, EmitterParameters, simulate_histograms, uncorrelated_baseline
from qml_imaging.physics.microscopy import (
    ConfocalScan,
    dip_depth,
    fit_gaussian,
    g2_image,
)
from qml_imaging.pipelines.g2.config import MAPE_FLOOR, G2RegressionConfig, SrmScanConfig
from qml_imaging.pipelines.g2.regression import inference_seconds
from qml_imaging.reporting import figures
from qml_imaging.runs import RunDir
from qml_imaging.training.artifacts import load_model
from qml_imaging.training.metrics import absolute_errors, mape_percent


def trained_cnn(source_run: str):
    """The final CNN of a finished ``g2_regression`` run (EMA weights when it trained with EMA), through
    :func:`qml_imaging.training.artifacts.load_model`."""
    source = RunDir.open(source_run)
    if not isinstance(source.config, G2RegressionConfig):
        raise ValueError(f"{source.path} is a {source.config.experiment!r} run; expected a g2_regression run")
    return load_model(source.path, "cnn").model


def scan_scene(config: SrmScanConfig, scan: ConfocalScan, emitters: torch.Tensor, model, generator: torch.Generator) -> dict:
    """Images ``(pixels, pixels)`` of one scene: counts, g2 maps (true, L-M, CNN), G2 images, events."""
    spec = config.emitter
    curve = EmitterParameters(*(torch.tensor([v], dtype=torch.float64) for v in (
        1.0 + spec.bunching - spec.g2_zero, spec.lifetime_ns, spec.bunching, spec.shelving_ns, 0.0)))
    pixels = scan.pixel_curves(emitters, curve)
    histograms = simulate_histograms(pixels, scan.seconds, DelayAxis(), config.efficiency, generator)
    baselines = uncorrelated_baseline(pixels, scan.seconds, DelayAxis(), config.efficiency)
    events = histograms.sum(1)
    dark = events < DARK_THRESHOLD
    started = time.perf_counter()
    lm = torch.from_numpy(fit_g2_grid(config.grid, histograms, baseline=baselines, zero_delay_ns=0.0,
                                      sampling="centre").g2_zero)
    lm_seconds = (time.perf_counter() - started) / len(histograms)
    estimates = {"g2_true": pixels.g2_zero, "g2_lm": lm, "g2_cnn": model.predict(histograms).double()}
    shape = (scan.pixels, scan.pixels)
    counts = torch.poisson(scan.mean_counts(emitters), generator=generator)
    maps = {name: torch.where(dark, torch.ones_like(g2), g2).reshape(shape) for name, g2 in estimates.items()}
    images = {"pl": counts, **{f"G2_{name[3:]}": g2_image(counts, g2) for name, g2 in maps.items()}}
    return {"maps": maps, "images": images, "events": events.reshape(shape), "histograms": histograms,
            "lm_seconds_per_pixel": lm_seconds}


def map_errors(estimate: torch.Tensor, truth: torch.Tensor) -> dict[str, float | None]:
    """``mae``, ``rmse`` and ``mape`` (percent, truths above ``MAPE_FLOOR`` only; ``None`` without any) of g2 maps."""
    if truth.numel() == 0:
        return {"mae": None, "rmse": None, "mape": None}
    above = truth > MAPE_FLOOR
    mape = mape_percent(estimate[above], truth[above], floor=MAPE_FLOOR) if above.any() else None
    return {**absolute_errors(estimate, truth), "mape": mape}


def cross_section(image: torch.Tensor, scan: ConfocalScan, y_nm: float) -> np.ndarray:
    """Mean of the pixel row nearest ``y_nm`` and its two neighbours, ``(pixels,)``."""
    row = int(torch.argmin((scan.axis_nm() - y_nm).abs()))
    rows = image[max(row - 1, 0): row + 2]
    return rows.mean(0).numpy()


def run(config: SrmScanConfig, run_dir: RunDir) -> dict:
    """Simulate each scene's confocal scan, estimate g2 maps (L-M, CNN) and G2 images, fit cross-sections; return the summary."""
    model = trained_cnn(config.source_run)
    scan = ConfocalScan(**config.scan.model_dump())
    x = scan.axis_nm().numpy()
    generator = torch.Generator().manual_seed(config.seed)
    summary: dict = {"fwhm_nm": {}, "dip": {}, "g2_map_mape": {}, "g2_map_mae": {}, "g2_map_rmse": {},
                     "lm_seconds_per_pixel": {}}
    sections: dict = {}
    for name, positions in config.scenes.items():
        emitters = torch.tensor(positions, dtype=torch.float64)
        scene = scan_scene(config, scan, emitters, model, generator)
        lit = scene["events"] >= DARK_THRESHOLD
        truth = scene["maps"]["g2_true"][lit]
        for estimator in ("cnn", "lm"):
            errors = map_errors(scene["maps"][f"g2_{estimator}"][lit], truth)
            for key, value in errors.items():
                summary[f"g2_map_{key}"].setdefault(name, {})[estimator] = value
        summary["lm_seconds_per_pixel"][name] = scene["lm_seconds_per_pixel"]
        profiles = {image: cross_section(scene["images"][image], scan, positions[0][1]) for image in scene["images"]}
        sections[name] = profiles
        if len(positions) == 1:
            fits = {image: fit_gaussian(x, profile) for image, profile in profiles.items()}
            summary["fwhm_nm"][name] = {image: fit.fwhm for image, fit in fits.items()}
            sections[name] = {image: (profile, fits[image](x)) for image, profile in profiles.items()}
        else:
            left, right = positions[0][0], positions[1][0]
            summary["dip"][name] = {image: dip_depth(x, profile, left, right) for image, profile in profiles.items()}
            sections[name] = {image: (profile, None) for image, profile in profiles.items()}
        _scene_figure(run_dir, name, scene)
        if name == "one":
            summary["cnn_seconds_per_1024"] = inference_seconds(model, scene["histograms"], 1024)
    if "one" in summary["fwhm_nm"]:
        widths = summary["fwhm_nm"]["one"]
        summary["fwhm_ratio"] = widths["pl"] / widths["G2_cnn"]
        summary["fwhm_ratio_lm"] = widths["pl"] / widths["G2_lm"]
        summary["fwhm_ratio_true"] = widths["pl"] / widths["G2_true"]
        summary["fwhm_ratio_expected"] = math.sqrt(2)
    _sections_figure(run_dir, x, sections)
    run_dir.write_report(summary, {"scenes": config.scenes, "source_run": config.source_run})
    return summary


def _scene_figure(run_dir: RunDir, name: str, scene: dict) -> None:
    maps, images = scene["maps"], scene["images"]
    pl = images["pl"].numpy()
    rows = [[pl, *(maps[f"g2_{kind}"].numpy() for kind in ("true", "lm", "cnn"))],
            [pl, *(images[f"G2_{kind}"].numpy() for kind in ("true", "lm", "cnn"))]]
    g2_scale = [None, (0.0, 1.0), (0.0, 1.0), (0.0, 1.0)]  # the three g2(0) maps on one scale
    grid = figures.image_grid(rows, column_titles=["PL", "true", "L-M", "CNN"], row_titles=["g2(0)", "G2"],
                              colorbars=True, cmap="viridis", panel_ranges=[g2_scale])
    figures.save_figure(grid, run_dir.figure_path(f"scan_{name}"))


def _sections_figure(run_dir: RunDir, x: np.ndarray, sections: dict) -> None:
    for name, profiles in sections.items():
        series = {}
        for image, (profile, fitted) in profiles.items():
            scale = np.abs(profile).max() or 1.0
            series[image] = (x.tolist(), (profile / scale).tolist())
            if fitted is not None:
                series[f"{image} fit"] = (x.tolist(), (fitted / scale).tolist())
        plot = figures.curves(series, xlabel="x (nm)", ylabel="normalised signal",
                              title=f"scene '{name}': cross-sections", log_y=False)
        figures.save_figure(plot, run_dir.figure_path(f"cross_section_{name}"))
