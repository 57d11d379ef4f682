import math

import pytest
import torch

from qml_imaging.training import losses, metrics


def images(seed=0, shape=(2, 1, 16, 16)):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def test_ssim_is_one_for_identical_images_and_lower_for_noisy_ones():
    x = images()
    assert losses.ssim(x, x).item() == pytest.approx(1.0, abs=1e-6)
    noise = images(1) - 0.5
    slightly, strongly = (losses.ssim((x + scale * noise).clamp(0, 1), x).item() for scale in (0.1, 0.6))
    assert 1.0 > slightly > strongly


def test_gdl_vanishes_for_a_constant_offset_and_matches_a_ramp_closed_form():
    x = images()
    assert losses.gradient_difference_loss(x + 0.25, x).item() == pytest.approx(0.0, abs=1e-6)
    # A horizontal ramp of slope s has Sobel-x response 8 s everywhere and Sobel-y response 0.
    slope = 0.1
    ramp = (slope * torch.arange(8.0)).expand(1, 1, 8, 8)
    flat = torch.zeros(1, 1, 8, 8)
    assert losses.gradient_difference_loss(ramp, flat).item() == pytest.approx(8 * slope, rel=1e-6)


def test_composite_loss_is_the_weighted_sum_of_its_parts():
    x, y = images(0), images(1)
    mse = torch.mean((x - y) ** 2)
    expected = 1.0 * mse + 0.5 * (1 - losses.ssim(x, y)) + 2.0 * losses.gradient_difference_loss(x, y)
    loss = losses.CompositeImageLoss(mse_weight=1.0, ssim_weight=0.5, gdl_weight=2.0)(x, y)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    only_mse = losses.CompositeImageLoss(ssim_weight=0.0, gdl_weight=0.0)(x, y)
    assert only_mse.item() == pytest.approx(mse.item(), rel=1e-6)


def test_composite_loss_is_differentiable():
    x = images(0).requires_grad_()
    losses.CompositeImageLoss()(x, images(1)).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_losses_reject_mismatched_or_non_image_shapes():
    with pytest.raises(ValueError, match=r"\(B, C, H, W\).*\(2, 1, 16, 16\) and \(2, 1, 8, 8\)"):
        losses.ssim(images(), images(shape=(2, 1, 8, 8)))
    with pytest.raises(ValueError, match="B, C, H, W"):
        losses.gradient_difference_loss(torch.zeros(4, 4), torch.zeros(4, 4))
    with pytest.raises(ValueError, match="ssim_weight must be >= 0"):
        losses.CompositeImageLoss(ssim_weight=-1)


def test_psnr_mape_r2_closed_forms():
    target = torch.full((100,), 2.0)
    prediction = target + 0.1
    assert metrics.mse(prediction, target) == pytest.approx(0.01, rel=1e-5)
    assert metrics.psnr(prediction, target, data_range=1.0) == pytest.approx(20.0, rel=1e-5)
    assert metrics.mape_percent(prediction, target, floor=0.0) == pytest.approx(5.0, rel=1e-5)
    assert losses.mape_loss(prediction, target).item() == pytest.approx(0.05, rel=1e-5)
    y = torch.linspace(0, 1, 50)
    assert metrics.r2(y, y) == pytest.approx(1.0)
    assert metrics.r2(torch.full_like(y, y.mean().item()), y) == pytest.approx(0.0, abs=1e-6)
    assert losses.ssim(images(), images(), data_range=1.0).item() == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="differs from target shape"):
        metrics.mse(torch.zeros(3), torch.zeros(4))
    assert math.isfinite(metrics.psnr(images(0), images(1), data_range=1.0))


@pytest.mark.parametrize("size", [4, 5, 10])
def test_f09_ssim_on_images_smaller_than_the_window_names_the_window(size):
    x = torch.rand(2, 1, size, size)
    with pytest.raises(ValueError, match=f"11x11-pixel Gaussian window; images of {size}x{size} pixels"):
        losses.ssim(x, x, 1.0)


def test_composite_loss_weighs_images_and_defaults_to_plain_mse():
    x, y = images(0), images(1)
    loss = losses.CompositeImageLoss(ssim_weight=0.0, gdl_weight=0.0)
    per_image = ((x - y) ** 2).mean(dim=(1, 2, 3))
    assert loss(x, y, torch.tensor([0.5, 1.5])).item() == pytest.approx((0.5 * per_image[0] + 1.5 * per_image[1]).item() / 2)
    with pytest.raises(ValueError, match=r"image_weights must have shape \(2,\)"):
        loss(x, y, torch.ones(3))
    with pytest.raises(ValueError, match="mse_weight must be >= 0 and finite, got nan"):
        losses.CompositeImageLoss(mse_weight=float("nan"))


def test_f13_mape_leaves_out_truths_at_or_below_the_floor_and_absolute_errors_stay_finite():
    target = torch.tensor([0.0, 0.5, 1.0])
    prediction = torch.tensor([0.2, 0.55, 1.1])
    assert metrics.mape_percent(prediction, target, floor=0.0) == pytest.approx(10.0, rel=1e-5)
    assert metrics.mape_percent(prediction, target, floor=0.6) == pytest.approx(10.0, rel=1e-5)
    with pytest.raises(ValueError, match="MAPE is undefined: no target above the floor 0"):
        metrics.mape_percent(torch.ones(3), torch.zeros(3), floor=0.0)
    round_off = torch.full((64,), 1.0 - 1.2 + 0.2, dtype=torch.float64)  # f13: a perfect emitter's g2(0), 5.6e-17
    with pytest.raises(ValueError, match="MAPE is undefined: no target above the floor 0.01"):
        metrics.mape_percent(torch.rand(64, dtype=torch.float64), round_off, floor=0.01)
    with pytest.raises(TypeError, match="floor"):
        metrics.mape_percent(prediction, target)
    errors = metrics.absolute_errors(prediction, target)
    assert errors["mae"] == pytest.approx((0.2 + 0.05 + 0.1) / 3, rel=1e-6)
    assert errors["rmse"] == pytest.approx(((0.04 + 0.0025 + 0.01) / 3) ** 0.5, rel=1e-6)
