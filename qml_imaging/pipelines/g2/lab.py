"""Laboratory photon-correlation files: per-histogram g2(0) fits and scans to g2(0) maps.

The library behind ``qml-imaging g2 fit`` / ``g2 scan`` and the ``g2_measured`` pipeline. It imports no
training code (no ``Trainer``, no networks, no torchmetrics) and no torch: a fit of one file loads the readers
(:mod:`qml_imaging.data.hbt_files`), the L-M fit (:mod:`qml_imaging.physics.g2_fit`, through the
pixel-chunk grid of :mod:`qml_imaging.pipelines.g2.lm`) and the count arithmetic of
:mod:`qml_imaging.physics.coincidences`, all NumPy/SciPy; torch and a CNN are loaded only when one is asked
for (:func:`load_cnn`, ``--cnn``).

**Fits** (:func:`fit_histograms`): the Poisson maximum-likelihood fit of :mod:`qml_imaging.physics.g2_fit`
with the zero delay fitted (or given), the timing jitter given or fitted, the baseline from the singles
counts (``N1 N2 w / T``) when the file has them, else from the tails (``auto``), after the file's own
consistency checks (:mod:`qml_imaging.pipelines.g2.lab_checks`); refused histograms carry their reason
instead of a g2(0); an optional background correction with ``rho``; the CNN of a finished run where its
axis matches. :mod:`qml_imaging.pipelines.g2.lab_plot` draws data, fit and residuals.

**Scans** (:func:`scan_maps`): the zero delay is a property of the set-up, so it is fitted once on the
sum of all pixels' histograms and given to every pixel's fit; pixels with fewer than 4
coincidences or no singles are dark: g2(0) = 1 in every map, uncertainty 1 (no information; the
fit's ``inf`` is kept out of the maps so that every map is finite) and ``dark`` marks them. The
photon-count map is ``N = N1 + N2`` (singles), the G2 image ``N^2 (1 - g2(0))``.

Pulsed g2(0) of lab files: :mod:`qml_imaging.pipelines.g2.pulsed` (torch-free).
"""

from __future__ import annotations

import warnings

import numpy as np

from qml_imaging.config import GridSettings
from qml_imaging.data.hbt_files import HbtHistograms
from qml_imaging.physics.coincidences import (
    baseline_from_singles,
    baseline_from_tails,
    correct_background,
    g2_image,
    signal_share,
)
from qml_imaging.physics.g2_fit import DARK_THRESHOLD, DelayOffsetWarning, fit_g2
from qml_imaging.physics.settings import BASELINES
from qml_imaging.pipelines.g2.lab_checks import baseline_problems, check_whole_counts
from qml_imaging.pipelines.g2.lm import fit_g2_grid

DARK_UNCERTAINTY = 1.0
"""Uncertainty written into maps for dark pixels (g2 = 1 by convention; no information)."""


def load_cnn(run: str):
    """The trained CNN of a finished ``g2_regression`` or ``g2_measured`` run (the ``by_emitter`` one of the
    latter), in eval mode, through :func:`qml_imaging.training.artifacts.load_model`. ``ValueError`` naming
    the run for another kind of run or an unfinished one."""
    from qml_imaging.training.artifacts import load_model
    from qml_imaging.runs import RunDir

    kind = RunDir.open(run).config.experiment
    if kind not in ("g2_regression", "g2_measured"):
        raise ValueError(f"{run} is a {kind!r} run; --cnn needs a g2_regression or g2_measured run")
    return load_model(run).model


def baselines_of(data: HbtHistograms, mode: str = "auto", zero_delay_ns: float = 0.0) -> tuple[np.ndarray | None, str]:
    """``(baseline (B,) float64 or None, the mode used)``: singles (``N1 N2 w / T``), tails, or ``None`` (fitted).
    Whether that baseline can be trusted is :func:`~qml_imaging.pipelines.g2.lab_checks.baseline_problems`' question."""
    if mode not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, got {mode!r}")
    if mode == "auto":
        mode = "singles" if data.has_singles else "tails"
    if mode == "singles":
        if not data.has_singles:
            raise ValueError(f"{data.source}: no singles counts and acquisition time in the file; use baseline tails or fit")
        return data.baseline(), mode
    if mode == "tails":
        return baseline_from_tails(data.counts, data.axis, zero_delay_ns=zero_delay_ns)[0], mode
    return None, mode


def fit_histograms(data: HbtHistograms, *, zero_delay: float | str = "fit", baseline: str = "auto",
                   rho: float | None = None, jitter: float | str = 0.0, model=None,
                   grid: GridSettings = GridSettings()) -> list[dict]:
    """One row per histogram: ``source``, ``row``, ``events``, ``baseline_mode``, the fit's columns
    (:meth:`~qml_imaging.physics.g2_fit.G2Fit.row`: g2(0) of the emitter and of the measured curve at zero
    delay, ``a1, t1, a2, t2``, jitter, zero delay, baseline, each with its sigma, reduced deviance,
    ``status``), ``g2_cnn`` (when ``model`` is given: its input length must equal the axis' bins). The file's
    own consistency is checked first (:mod:`~qml_imaging.pipelines.g2.lab_checks`): a histogram whose
    baseline cannot be trusted gets that reason as its ``status`` and no g2(0). With ``rho`` the
    measured g2(0) values are background-corrected. ``jitter``: timing jitter in ns, or ``"fit"``."""
    check_whole_counts(data)
    zero = zero_delay if zero_delay == "fit" else float(zero_delay)
    if zero == "fit" and data.zero_delay_ns is not None:
        zero = data.zero_delay_ns
    known, mode = baselines_of(data, baseline, 0.0 if zero == "fit" else zero)
    problems = baseline_problems(data, known, mode, 0.0 if zero == "fit" else zero)
    fit = fit_g2_grid(grid, data.counts, data.axis, baseline=known, zero_delay_ns=zero, jitter_ns=jitter)
    cnn = None if model is None else _cnn_estimates(model, data)
    rows = []
    for i in range(len(data)):
        row = fit.row(i)
        if problems[i]:
            row.update(g2="", sigma="", g2_measured="", g2_measured_sigma="", status=problems[i])
        elif rho is not None and not row["status"]:
            corrected, sigma = correct_background(np.array([row["g2"], row["g2_measured"]]), rho,
                                                  np.array([row["sigma"], row["g2_measured_sigma"]]))
            row.update(g2=float(corrected[0]), sigma=float(sigma[0]), g2_measured=float(corrected[1]),
                       g2_measured_sigma=float(sigma[1]))
        rows.append({"source": data.source, "row": i, **row, "events": float(data.counts[i].sum()), "baseline_mode": mode,
                     **({"g2_cnn": float(cnn[i])} if cnn is not None else {})})
    return rows


def scan_maps(data: HbtHistograms, shape: tuple[int, int], *, model=None, background_rate: float | None = None,
              grid: GridSettings = GridSettings()) -> dict[str, np.ndarray]:
    """Maps ``(H, W)`` of a scan: ``g2_lm``, ``sigma_lm``, ``g2_cnn`` (with ``model``), ``counts`` (N1 + N2, or the
    coincidences without singles), ``G2_lm`` / ``G2_cnn`` (``N^2 (1 - g2)``), ``dark`` (bool), and ``zero_delay_ns``
    (a 0-d array), ``refused`` (bool: a lit pixel without a measurement) and ``status`` (unicode ``(H, W)``: ``""``,
    or why that pixel has no measurement, as :func:`fit_histograms` says it: a baseline the file contradicts, a fit
    at a bound ...). All finite; dark and refused pixels at g2 = 1 with sigma 1. ``background_rate`` (counts/s
    per channel) corrects every lit pixel with ``rho = (R - B) / R``."""
    counts = data.counts
    events = counts.sum(1)
    zero = _scan_zero_delay(data)
    known, mode = baselines_of(data, "auto", zero)
    dark = events < DARK_THRESHOLD
    if known is not None:
        dark |= known <= 0
        known = np.where(dark, 0.0, known)
    fit = fit_g2_grid(grid, np.where(dark[:, None], 0.0, counts), data.axis, baseline=known, zero_delay_ns=zero)
    status = np.array([problem or fitted for problem, fitted in
                       zip(baseline_problems(data, known, mode, zero), fit.status, strict=True)])
    status[dark] = ""
    refused = status != ""
    g2, sigma = fit.g2_zero, fit.uncertainty
    if background_rate is not None and data.has_singles:
        g2, sigma = correct_background(g2, signal_share(data.rates(), background_rate), sigma)
    photons = data.singles.sum(1) if data.has_singles else events
    estimates = {"lm": g2}
    if model is not None:
        estimates["cnn"] = _cnn_estimates(model, data)
    maps: dict[str, np.ndarray] = {}
    for name, estimate in estimates.items():
        estimate = np.where(dark | refused | ~np.isfinite(estimate), 1.0, estimate)
        maps[f"g2_{name}"] = estimate.reshape(shape)
        maps[f"G2_{name}"] = g2_image(photons, estimate).reshape(shape)
    maps["sigma_lm"] = np.where(dark | refused | ~np.isfinite(sigma), DARK_UNCERTAINTY, sigma).reshape(shape)
    maps["counts"] = photons.reshape(shape)
    maps["dark"] = dark.reshape(shape)
    maps["refused"] = refused.reshape(shape)
    maps["status"] = status.astype(str).reshape(shape)
    maps["zero_delay_ns"] = np.array(zero)
    return maps


def _scan_zero_delay(data: HbtHistograms) -> float:
    """The set-up's zero delay: the file's, else fitted once on the sum of every pixel (0 for a dark scan)."""
    if data.zero_delay_ns is not None:
        return data.zero_delay_ns
    total = data.counts.sum(0, keepdims=True)
    if total.sum() < DARK_THRESHOLD:
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DelayOffsetWarning)
        return float(fit_g2(total, data.axis, baseline=None if not data.has_singles else _summed_baseline(data),
                            zero_delay_ns="fit").zero_delay_ns[0])


def _cnn_estimates(model, data: HbtHistograms) -> np.ndarray:
    """``(B,)`` float64 g2(0) of the CNN (a :class:`~qml_imaging.models.g2_cnn.G2CNN`: torch, imported only here)."""
    import torch

    if model.bins != data.axis.bins:
        raise ValueError(f"the CNN reads {model.bins}-bin histograms; {data.source or 'the scan'} has {data.axis.bins} bins")
    return model.predict(torch.from_numpy(data.counts)).double().numpy()


def _summed_baseline(data: HbtHistograms) -> np.ndarray:
    return baseline_from_singles(data.singles[:, 0].sum(), data.singles[:, 1].sum(), data.axis.width_ns,
                                 data.seconds.sum()).reshape(1)
