"""The shot-noise standard error of gradients estimated from shots, for each epoch's record."""

from __future__ import annotations

import torch


def gradient_noise(module: torch.nn.Module) -> dict[str, float]:
    """``{"grad_se/<module path>": value}``: for every sub-module that estimates its weight gradient from shots
    (a :class:`~qml_imaging.quantum.layer.QuantumLayer` on a sampled backend, whose ``gradient_noise.variance``
    the last backward wrote), the root-mean-square shot-noise standard error of that gradient over its weights
    (the loss's units per radian; :mod:`qml_imaging.quantum.shift`). Empty for exact backends."""
    record = {}
    for name, child in module.named_modules():
        variance = getattr(getattr(child, "gradient_noise", None), "variance", None)
        if variance is not None:
            record[f"grad_se/{name or 'model'}"] = float(variance.mean().sqrt())
    return record
