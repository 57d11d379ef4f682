"""Estimation limits for shot-noise imaging with a coherent-state probe.

For a family ``phi(theta)`` (pixels ``k``, parameters ``i``; ``J[k, i] = d phi_k / d theta_i``) and
``nbar`` mean photons, the classical Fisher information of Poisson photon counting,

    F = nbar * J^T diag(1 / phi) J,

equals the quantum Fisher information of the coherent state, so photon counting is an optimal
measurement and ``Cov(theta_hat) >= F^-1`` is the quantum Cramér-Rao bound (QCRB) for unbiased
estimators. Propagated to the image (per pixel and in total):

    var(phi_hat_k) >= (J F^-1 J^T)_kk,     sum_k var(phi_hat_k) >= Tr(J F^-1 J^T).

Two family-free references:

* standard quantum limit (SQL): the pixel-wise estimator ``n_k / nbar`` has variance
  ``phi_k / nbar``, ``1 / nbar`` in total;
* Heisenberg limit (HL), the convention used here: the SQL with its photon scaling ``1 / nbar``
  replaced by ``1 / nbar^2``, i.e. ``phi_k / nbar^2`` per pixel and ``1 / nbar^2`` in total.

All functions take batches: ``phi`` ``(B, K)`` and ``J`` ``(B, K, P)`` (float64 recommended).
"""

from __future__ import annotations

import torch

from qml_imaging.physics.parametric import ImageFamily
from qml_imaging.physics.shot_noise import check_nbar, check_transmittance, nbar_per_image


def fisher_information(phi: torch.Tensor, jacobian: torch.Tensor, nbar: float | torch.Tensor) -> torch.Tensor:
    """``F = nbar J^T diag(1/phi) J`` of shape ``(B, P, P)``; ``phi`` ``(B, K)`` must be > 0 where J is nonzero."""
    phi, jacobian, nbar = _check(phi, jacobian, nbar)
    weighted = jacobian / phi.unsqueeze(-1)
    return nbar[..., None, None] * jacobian.transpose(-1, -2) @ weighted


def parameter_bound(phi: torch.Tensor, jacobian: torch.Tensor, nbar: float | torch.Tensor) -> torch.Tensor:
    """QCRB on the parameters: ``F^-1`` ``(B, P, P)``."""
    return torch.linalg.inv(fisher_information(phi, jacobian, nbar))


def pixel_bound(phi: torch.Tensor, jacobian: torch.Tensor, nbar: float | torch.Tensor) -> torch.Tensor:
    """QCRB propagated to each pixel: ``diag(J F^-1 J^T)`` ``(B, K)``."""
    phi, jacobian, nbar = _check(phi, jacobian, nbar)
    inverse = parameter_bound(phi, jacobian, nbar)
    return torch.einsum("bki,bij,bkj->bk", jacobian, inverse, jacobian)


def total_bound(phi: torch.Tensor, jacobian: torch.Tensor, nbar: float | torch.Tensor) -> torch.Tensor:
    """QCRB on the total image error: ``Tr(J F^-1 J^T)`` ``(B,)``."""
    return pixel_bound(phi, jacobian, nbar).sum(-1)


def family_bounds(family: ImageFamily, theta: torch.Tensor, size: int, nbar: float | torch.Tensor) -> dict[str, torch.Tensor]:
    """Fisher information ``(B, P, P)``, pixel bound ``(B, size, size)`` and total bound ``(B,)`` of a family."""
    phi = family.phi(theta, size).flatten(1)
    jacobian = family.jacobian(theta, size)
    pixels = pixel_bound(phi, jacobian, nbar)
    return {"fisher": fisher_information(phi, jacobian, nbar), "pixel": pixels.reshape(-1, size, size),
            "total": pixels.sum(-1)}


def sql_pixel(phi: torch.Tensor, nbar: float | torch.Tensor) -> torch.Tensor:
    """Standard quantum limit per pixel, ``phi / nbar``, for images ``phi`` (..., H, W)."""
    check_transmittance(phi)
    return phi / nbar_per_image(check_nbar(nbar), phi)


def sql_total(nbar: float | torch.Tensor) -> torch.Tensor:
    """Standard quantum limit on the total squared error of an image, ``1 / nbar``."""
    return 1.0 / check_nbar(nbar)


def heisenberg_pixel(phi: torch.Tensor, nbar: float | torch.Tensor) -> torch.Tensor:
    """Heisenberg limit per pixel (this module's convention), ``phi / nbar^2``."""
    check_transmittance(phi)
    return phi / nbar_per_image(check_nbar(nbar), phi) ** 2


def heisenberg_total(nbar: float | torch.Tensor) -> torch.Tensor:
    """Heisenberg limit on the total squared error of an image, ``1 / nbar^2``."""
    return 1.0 / check_nbar(nbar) ** 2


def _check(phi: torch.Tensor, jacobian: torch.Tensor, nbar: float | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if phi.ndim != 2 or jacobian.ndim != 3 or jacobian.shape[:2] != phi.shape:
        raise ValueError(f"expected phi (B, K) and jacobian (B, K, P), got {tuple(phi.shape)} and {tuple(jacobian.shape)}")
    check_transmittance(phi.unsqueeze(-1))
    if (phi <= 0).any():
        raise ValueError("the Fisher information needs phi > 0 in every pixel (1 / phi appears in it)")
    nbar = check_nbar(nbar).to(phi)
    if nbar.ndim not in (0, 1) or (nbar.ndim == 1 and nbar.shape[0] != phi.shape[0]):
        raise ValueError(f"nbar must be a number or one value per image ({phi.shape[0]}), got shape {tuple(nbar.shape)}")
    return phi, jacobian, nbar
