"""Training losses for images and regression targets.

Images are ``(B, C, H, W)`` tensors; ``data_range`` is the span of valid pixel values
(1.0 for images scaled to [0, 1], 2.0 for [-1, 1]).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.functional.image import structural_similarity_index_measure
from torchmetrics.functional.regression import mean_absolute_percentage_error

SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def ssim(prediction: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM (Gaussian window 11, sigma 1.5) of ``(B, C, H, W)`` images; differentiable."""
    _check_images(prediction, target)
    return structural_similarity_index_measure(
        prediction, target, gaussian_kernel=True, sigma=1.5, kernel_size=11, data_range=data_range
    )


def sobel_gradients(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Horizontal and vertical Sobel responses of ``(B, C, H, W)`` images, each ``(B, C, H-2, W-2)``."""
    channels = images.shape[1]
    kernel_x = SOBEL_X.to(images).expand(channels, 1, 3, 3)
    kernel_y = SOBEL_X.T.to(images).expand(channels, 1, 3, 3)
    return F.conv2d(images, kernel_x, groups=channels), F.conv2d(images, kernel_y, groups=channels)


def gradient_difference_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """GDL = mean |Sobel_x(pred) - Sobel_x(target)| + mean |Sobel_y(pred) - Sobel_y(target)|."""
    _check_images(prediction, target)
    pred_x, pred_y = sobel_gradients(prediction)
    target_x, target_y = sobel_gradients(target)
    return (pred_x - target_x).abs().mean() + (pred_y - target_y).abs().mean()


class CompositeImageLoss(nn.Module):
    """``mse_weight * MSE + ssim_weight * (1 - SSIM) + gdl_weight * GDL`` for ``(B, C, H, W)`` images."""

    def __init__(self, *, mse_weight: float = 1.0, ssim_weight: float = 1.0, gdl_weight: float = 1.0, data_range: float = 1.0):
        super().__init__()
        for name, weight in (("mse_weight", mse_weight), ("ssim_weight", ssim_weight), ("gdl_weight", gdl_weight)):
            if weight < 0:
                raise ValueError(f"{name} must be >= 0, got {weight}")
        self.mse_weight = mse_weight
        self.ssim_weight = ssim_weight
        self.gdl_weight = gdl_weight
        self.data_range = data_range

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = self.mse_weight * F.mse_loss(prediction, target)
        if self.ssim_weight:
            loss = loss + self.ssim_weight * (1.0 - ssim(prediction, target, self.data_range))
        if self.gdl_weight:
            loss = loss + self.gdl_weight * gradient_difference_loss(prediction, target)
        return loss


def mape_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute percentage error as a fraction (0.05 = 5 %); differentiable."""
    return mean_absolute_percentage_error(prediction, target)


def _check_images(prediction: torch.Tensor, target: torch.Tensor) -> None:
    if prediction.ndim != 4 or prediction.shape != target.shape:
        raise ValueError(
            f"expected prediction and target of the same shape (B, C, H, W), "
            f"got {tuple(prediction.shape)} and {tuple(target.shape)}"
        )
