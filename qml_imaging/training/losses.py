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

SSIM_WINDOW = 11
"""Side of SSIM's Gaussian window in pixels (sigma 1.5, Wang et al. 2004); images must be at least this large."""
SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def ssim(prediction: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM (Gaussian window 11, sigma 1.5; Wang et al., IEEE TIP 13, 600 (2004)) of ``(B, C, H, W)`` images.

    Differentiable 0-d tensor (torchmetrics' ``structural_similarity_index_measure``). It equals scikit-image's
    ``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`` to within 1e-3: the
    two libraries filter the 5-pixel border differently (torchmetrics pads by reflection, scikit-image filters in
    ``reflect`` mode and averages without the border). ``ValueError`` for mismatched shapes or images smaller
    than the :data:`SSIM_WINDOW` pixel window.
    """
    _check_images(prediction, target)
    height, width = prediction.shape[-2:]
    if min(height, width) < SSIM_WINDOW:
        raise ValueError(f"SSIM uses an {SSIM_WINDOW}x{SSIM_WINDOW}-pixel Gaussian window; images of "
                         f"{height}x{width} pixels are smaller than it (need at least {SSIM_WINDOW} per side)")
    return structural_similarity_index_measure(
        prediction, target, gaussian_kernel=True, sigma=1.5, kernel_size=SSIM_WINDOW, data_range=data_range
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
    """``mse_weight * MSE + ssim_weight * (1 - SSIM) + gdl_weight * GDL`` for ``(B, C, H, W)`` images.

    MSE is the mean over images of each image's mean squared error, each image weighted by
    ``image_weights`` ``(B,)`` when given (the QCRB denoisers weigh by photon number; without
    weights it equals plain MSE); SSIM as :func:`ssim` (Wang et al. 2004, Gaussian window 11);
    GDL as :func:`gradient_difference_loss` (Sobel gradients, Mathieu et al. 2016). Terms of
    weight 0 are not computed. Weights must be finite and >= 0 (``ValueError``).
    """

    def __init__(self, *, mse_weight: float = 1.0, ssim_weight: float = 1.0, gdl_weight: float = 1.0, data_range: float = 1.0):
        super().__init__()
        for name, weight in (("mse_weight", mse_weight), ("ssim_weight", ssim_weight), ("gdl_weight", gdl_weight)):
            if not weight >= 0 or weight == float("inf"):
                raise ValueError(f"{name} must be >= 0 and finite, got {weight}")
        self.mse_weight = mse_weight
        self.ssim_weight = ssim_weight
        self.gdl_weight = gdl_weight
        self.data_range = data_range

    def forward(self, prediction: torch.Tensor, target: torch.Tensor, image_weights: torch.Tensor | None = None) -> torch.Tensor:
        """Scalar loss; ``image_weights`` ``(B,)`` weigh each image's MSE (default: all 1)."""
        _check_images(prediction, target)
        loss = prediction.new_zeros(())
        if self.mse_weight:
            squared = (prediction - target).pow(2).mean(dim=(1, 2, 3))
            if image_weights is None:
                loss = loss + self.mse_weight * squared.mean()
            else:
                if image_weights.shape != squared.shape:
                    raise ValueError(f"image_weights must have shape {tuple(squared.shape)} (one per image), "
                                     f"got {tuple(image_weights.shape)}")
                loss = loss + self.mse_weight * (image_weights.to(squared) * squared).mean()
        if self.ssim_weight:
            loss = loss + self.ssim_weight * (1.0 - ssim(prediction, target, self.data_range))
        if self.gdl_weight:
            loss = loss + self.gdl_weight * gradient_difference_loss(prediction, target)
        return loss


def mape_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute percentage error ``mean(|p - t| / max(|t|, 1.17e-6))`` as a fraction (0.05 = 5 %); differentiable.

    torchmetrics' ``mean_absolute_percentage_error``; undefined near ``t = 0`` (the g2 pipeline's
    config keeps training targets above :data:`qml_imaging.pipelines.g2.config.MAPE_FLOOR`).
    """
    return mean_absolute_percentage_error(prediction, target)


def _check_images(prediction: torch.Tensor, target: torch.Tensor) -> None:
    if prediction.ndim != 4 or prediction.shape != target.shape:
        raise ValueError(
            f"expected prediction and target of the same shape (B, C, H, W), "
            f"got {tuple(prediction.shape)} and {tuple(target.shape)}"
        )
