"""Evaluation metrics (torchmetrics underneath); each returns a Python float."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchmetrics.functional.image import peak_signal_noise_ratio
from torchmetrics.functional.regression import mean_absolute_percentage_error, r2_score

from qml_imaging.training.losses import ssim


def mse(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """Mean squared error over every element."""
    _check_same_shape(prediction, target)
    return F.mse_loss(prediction, target).item()


def psnr(prediction: torch.Tensor, target: torch.Tensor, data_range: float) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(data_range^2 / MSE)``."""
    _check_same_shape(prediction, target)
    return peak_signal_noise_ratio(prediction, target, data_range=data_range).item()


def ssim_score(prediction: torch.Tensor, target: torch.Tensor, data_range: float) -> float:
    """Mean SSIM of ``(B, C, H, W)`` images (1 = identical)."""
    return ssim(prediction, target, data_range).item()


def mape_percent(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """Mean absolute percentage error in percent."""
    _check_same_shape(prediction, target)
    return 100.0 * mean_absolute_percentage_error(prediction, target).item()


def r2(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """Coefficient of determination of flattened predictions (1 = perfect, 0 = predicting the mean)."""
    _check_same_shape(prediction, target)
    return r2_score(prediction.flatten(), target.flatten()).item()


def _check_same_shape(prediction: torch.Tensor, target: torch.Tensor) -> None:
    if prediction.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(prediction.shape)} differs from target shape {tuple(target.shape)}")
