"""Shot-noise images: Poisson photon counts of a coherent-state probe through a transmittance image.

Convention (the one of the prior code of paper 000): a transmittance image ``phi`` of shape
``(..., H, W)`` is non-negative and **sums to 1 over each image**, and ``nbar`` is the mean total
number of detected photons per image. Pixel ``k`` then counts ``n_k ~ Poisson(nbar * phi_k)``
independently, which is what photon counting of a coherent state gives. ``nbar = 4096`` on a
64x64 image is 1 photon per pixel on average; ``nbar = 40.96`` is 0.01.
"""

from __future__ import annotations

import torch

from qml_imaging.physics.checks import real_tensor

NORMALISATION_TOLERANCE = 1e-4
"""Relative tolerance on ``sum(phi) == 1`` (float32 sums of 4096 pixels are good to about 1e-6)."""


def check_nbar(nbar: float | torch.Tensor) -> torch.Tensor:
    """``nbar`` as a float64 tensor after checking every value is finite and > 0.

    A number or a non-empty real tensor; integers (Python or integer tensors) are converted to
    float64, bools and complex values raise ``TypeError``, an empty tensor ``ValueError``.
    """
    values = real_tensor("nbar", nbar, dtype=torch.float64, integer_ok=True, finite=False,
                         expected="(mean total photons per image)")
    if not torch.isfinite(values).all() or (values <= 0).any():
        raise ValueError(f"nbar (mean total photons per image) must be finite and > 0, got {nbar}")
    return values


def check_transmittance(phi: torch.Tensor) -> torch.Tensor:
    """Check that ``phi`` (..., H, W) is finite, non-negative and sums to 1 per image; return it.

    Raises ``TypeError`` when ``phi`` is not a floating-point tensor (integer, bool, complex, a
    list) and ``ValueError`` for fewer than 2 dimensions, no images or no pixels, NaN / inf,
    negative entries or sums off 1.
    """
    if not isinstance(phi, torch.Tensor):
        raise TypeError(f"phi must be a floating-point tensor of shape (..., H, W), got {type(phi).__name__}")
    if phi.ndim < 2:
        raise ValueError(f"phi must be a tensor of shape (..., H, W), got {tuple(phi.shape)}")
    real_tensor("phi", phi, min_ndim=2, finite=False, expected="(..., H, W)")
    if not torch.isfinite(phi).all():
        raise ValueError("phi contains NaN or infinite values")
    if (phi < 0).any():
        raise ValueError(f"phi must be non-negative (a transmittance), its smallest entry is {phi.min().item():.4g}")
    sums = phi.sum(dim=(-2, -1))
    worst = (sums - 1.0).abs().max().item()
    if worst > NORMALISATION_TOLERANCE:
        raise ValueError(
            f"each image of phi must sum to 1 (the convention: nbar counts the photons of the whole image); "
            f"found sums up to {worst:.3g} away from 1 - divide the image by its sum (see normalise)"
        )
    return phi


def normalise(images: torch.Tensor) -> torch.Tensor:
    """Non-negative images (..., H, W) divided by their sums, so each sums to 1 (same dtype).

    ``TypeError`` for a non-floating tensor; ``ValueError`` for fewer than 2 dimensions, no pixels,
    negative or non-finite entries, or an all-zero image.
    """
    images = real_tensor("images", images, min_ndim=2, finite=False, expected="(..., H, W)")
    if (images < 0).any() or not torch.isfinite(images).all():
        raise ValueError("images to normalise must be finite and non-negative")
    sums = images.sum(dim=(-2, -1), keepdim=True)
    if (sums <= 0).any():
        raise ValueError("an image to normalise is all zeros")
    return images / sums


def shot_noise_counts(phi: torch.Tensor, nbar: float | torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Poisson photon counts ``n ~ Poisson(nbar * phi)`` with the shape and dtype of ``phi``.

    ``phi`` is (..., H, W) (see the module convention); ``nbar`` is a number or a tensor that
    broadcasts against ``phi``'s leading dimensions (one value per image: shape ``phi.shape[:-2]``).
    Errors as :func:`check_transmittance` and :func:`check_nbar`; an empty batch is a ``ValueError``.
    Counts are drawn in float64 (``torch.poisson``) and returned in ``phi``'s dtype (they are whole
    numbers, exact in float32 below 2**24).
    """
    check_transmittance(phi)
    rates = nbar_per_image(check_nbar(nbar), phi) * phi
    return torch.poisson(rates.to(torch.float64), generator=generator).to(phi.dtype)


def nbar_per_image(nbar: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """``nbar`` (a number or one value per image, ``phi.shape[:-2]``) shaped to multiply ``phi`` (..., H, W) image by image.

    ``nbar`` is checked as in :func:`check_nbar` and converted to ``phi``'s dtype (documented);
    ``ValueError`` when its shape is neither ``()`` nor ``phi.shape[:-2]``.
    """
    leading = phi.shape[:-2]
    nbar = check_nbar(nbar)
    if nbar.ndim == 0:
        return nbar.to(phi.dtype)
    if nbar.shape != leading:
        raise ValueError(f"nbar has shape {tuple(nbar.shape)}; expected a number or one value per image, shape {tuple(leading)}")
    return nbar.to(phi.dtype)[..., None, None]
