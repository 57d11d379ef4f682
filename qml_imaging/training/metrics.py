"""Evaluation metrics (torchmetrics underneath); each returns a Python float."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchmetrics.functional.image import peak_signal_noise_ratio
from torchmetrics.functional.regression import mean_absolute_percentage_error, r2_score


def mse(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """Mean squared error over every element."""
    _check_same_shape(prediction, target)
    return F.mse_loss(prediction, target).item()


def psnr(prediction: torch.Tensor, target: torch.Tensor, data_range: float) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(data_range^2 / MSE)`` (torchmetrics' ``peak_signal_noise_ratio``;
    equal to scikit-image's ``peak_signal_noise_ratio`` to 1e-6 relative: torchmetrics works partly in float32)."""
    _check_same_shape(prediction, target)
    return peak_signal_noise_ratio(prediction, target, data_range=data_range).item()


def mape_percent(prediction: torch.Tensor, target: torch.Tensor, *, floor: float) -> float:
    """Mean absolute percentage error ``100 mean(|p - t| / |t|)`` in percent, over entries with ``|t| > floor``.

    A relative error is undefined where the truth is 0 (torchmetrics' ``mean_absolute_percentage_error``
    would divide by its 1.17e-6 guard instead), so entries whose ``|target|`` is at or below ``floor``
    are left out; report :func:`absolute_errors` beside it. The floor has no default: a truth computed
    as 0 can come out as round-off (``1 - a1 + a2 = 5.6e-17``), and every caller states what "zero" is. ``ValueError`` when no entry is left, or
    for a negative or non-finite ``floor``.
    """
    _check_same_shape(prediction, target)
    if not 0.0 <= floor < float("inf"):
        raise ValueError(f"floor must be finite and >= 0, got {floor}")
    kept = target.abs() > floor
    if not kept.any():
        raise ValueError(f"MAPE is undefined: no target above the floor {floor:g} (of {target.numel()} entries); "
                         f"use the absolute error or RMSE")
    return 100.0 * mean_absolute_percentage_error(prediction[kept], target[kept]).item()


def absolute_errors(prediction: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """``{"mae": mean |p - t|, "rmse": sqrt(mean (p - t)^2)}`` over every element (finite at any truth)."""
    _check_same_shape(prediction, target)
    if prediction.numel() == 0:
        raise ValueError("absolute_errors needs at least one prediction, got empty tensors")
    error = (prediction.double() - target.double())
    return {"mae": error.abs().mean().item(), "rmse": error.pow(2).mean().sqrt().item()}


def r2(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """Coefficient of determination of flattened predictions (1 = perfect, 0 = predicting the mean)."""
    _check_same_shape(prediction, target)
    return r2_score(prediction.flatten(), target.flatten()).item()


def _check_same_shape(prediction: torch.Tensor, target: torch.Tensor) -> None:
    if prediction.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(prediction.shape)} differs from target shape {tuple(target.shape)}")


def band_mse(prediction: torch.Tensor, target: torch.Tensor, cutoff_fraction: float) -> tuple[float, float]:
    """MSE of a 1-D signal split into the error below and above ``cutoff_fraction`` of the Nyquist frequency.

    The error ``prediction - target`` (shape ``(N,)`` or ``(N, 1)``) is split with the real FFT into
    a low band (bins ``k <= cutoff_fraction * N / 2``) and the rest; the two parts are orthogonal,
    so ``low + high`` equals the total MSE (Parseval).
    """
    _check_same_shape(prediction, target)
    if not 0.0 < cutoff_fraction < 1.0:
        raise ValueError(f"cutoff_fraction must be in (0, 1), got {cutoff_fraction}")
    error = (prediction - target).reshape(-1).double()
    spectrum = torch.fft.rfft(error)
    cutoff = int(cutoff_fraction * (error.numel() // 2))
    low_spectrum = spectrum.clone()
    low_spectrum[cutoff + 1 :] = 0
    low = torch.fft.irfft(low_spectrum, n=error.numel())
    high = error - low
    return (low**2).mean().item(), (high**2).mean().item()

