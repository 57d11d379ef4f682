"""Loaders of the g2(0) CNNs (``g2_regression``: ``cnn``; ``g2_measured``: ``cnn_by_emitter``, ``cnn_leaky``),
named by the registry. Each rebuilds :class:`~qml_imaging.models.g2_cnn.G2CNN` from the run's ``cnn`` section
and the histogram length its fit stored in ``model.json``, with the fit's final (EMA) weights.
"""

from __future__ import annotations

from qml_imaging.models.g2_cnn import G2CNN
from qml_imaging.runs import RunDir
from qml_imaging.training.artifacts import TrainedModel, choose_fit, final_weights, load_weights, model_arguments


def load_regression_cnn(run: RunDir, fit: str | None) -> TrainedModel:
    """The CNN (fit ``cnn``) of a ``g2_regression`` run."""
    return _load_cnn(run, choose_fit(run, fit, ["cnn"]), "HBT histogram, see g2_regression")


def load_measured_cnn(run: RunDir, fit: str | None) -> TrainedModel:
    """The CNN of one split of a ``g2_measured`` run: ``cnn_by_emitter`` (default where trained) or ``cnn_leaky``."""
    splits = run.config.protocol.splits
    fits = [f"cnn_{split}" for split in ("by_emitter", "leaky") if split in splits]
    return _load_cnn(run, choose_fit(run, fit, fits), "measured HBT histogram on the run's delay axis, see g2_measured")


def _load_cnn(run: RunDir, fit: str, data: str) -> TrainedModel:
    model = G2CNN.from_spec(run.config.cnn, model_arguments(run, fit)["bins"])
    weights, ema, metrics = final_weights(run, fit, fit, run.config.train.epochs)
    load_weights(model, weights, run, fit)
    return TrainedModel(model.eval(), run.config, fit, run.path, ema, {"input": data}, metrics)
