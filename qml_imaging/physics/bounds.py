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

All functions take batches: ``phi`` ``(B, K)`` and ``J`` ``(B, K, P)``, floating tensors of one
dtype (float64 recommended; no silent promotion: mixed dtypes raise ``TypeError``). Bad input raises
``TypeError`` (integer, bool or complex tensors) or ``ValueError`` (shapes, empty batches, NaN / inf
in ``phi`` or ``J``, ``phi`` not a transmittance, ``nbar`` not finite and > 0), naming the argument.
:func:`poisson_fisher` is the unchecked kernel shared with :mod:`qml_imaging.physics.mle`.
"""

from __future__ import annotations

import torch

from qml_imaging.physics.checks import real_tensor, same_dtype
from qml_imaging.physics.shot_noise import check_nbar, check_transmittance, nbar_per_image


def poisson_fisher(phi: torch.Tensor, jacobian: torch.Tensor, nbar: float | torch.Tensor) -> torch.Tensor:
    """Unchecked kernel ``F = nbar J^T diag(1/phi) J`` ``(B, P, P)`` for ``phi`` ``(B, K)``, ``J`` ``(B, K, P)``.

    The Fisher information of independent Poisson counts with means ``mu_k = nbar phi_k(theta)``,
    ``F_ij = sum_k (d mu_k / d theta_i)(d mu_k / d theta_j) / mu_k`` (e.g. Kay, *Fundamentals of
    Statistical Signal Processing: Estimation Theory*, 1993, Ch. 3). ``nbar``: a number or ``(B,)``. Callers check their inputs; :func:`fisher_information`
    is the checked public form.
    """
    nbar = torch.as_tensor(nbar, dtype=phi.dtype, device=phi.device)
    if nbar.ndim == 1:
        nbar = nbar[:, None, None]
    return nbar * (jacobian.transpose(-1, -2) @ (jacobian / phi.unsqueeze(-1)))


def fisher_information(phi: torch.Tensor, jacobian: torch.Tensor, nbar: float | torch.Tensor) -> torch.Tensor:
    """``F = nbar J^T diag(1/phi) J`` of shape ``(B, P, P)``; ``phi`` ``(B, K)`` must be > 0 where J is nonzero."""
    phi, jacobian, nbar = _check(phi, jacobian, nbar)
    return poisson_fisher(phi, jacobian, nbar)


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


def sql_pixel(phi: torch.Tensor, nbar: float | torch.Tensor) -> torch.Tensor:
    """Standard quantum limit per pixel, ``phi / nbar``, for images ``phi`` (..., H, W)."""
    check_transmittance(phi)
    return phi / nbar_per_image(check_nbar(nbar), phi)


def sql_total(nbar: float | torch.Tensor) -> torch.Tensor:
    """Standard quantum limit on the total squared error of an image, ``1 / nbar``."""
    return 1.0 / check_nbar(nbar)


def heisenberg_total(nbar: float | torch.Tensor) -> torch.Tensor:
    """Heisenberg limit on the total squared error of an image, ``1 / nbar^2``."""
    return 1.0 / check_nbar(nbar) ** 2


def _check(phi: torch.Tensor, jacobian: torch.Tensor, nbar: float | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    phi = real_tensor("phi", phi, finite=False, allow_empty=True, expected="(B, K)")
    jacobian = real_tensor("jacobian", jacobian, finite=False, allow_empty=True, expected="(B, K, P)")
    if phi.ndim != 2 or jacobian.ndim != 3 or jacobian.shape[:2] != phi.shape:
        raise ValueError(f"expected phi (B, K) and jacobian (B, K, P), got {tuple(phi.shape)} and {tuple(jacobian.shape)}")
    same_dtype(phi=phi, jacobian=jacobian)
    real_tensor("jacobian", jacobian, expected="(B, K, P)")
    check_transmittance(phi.unsqueeze(-1))
    if (phi <= 0).any():
        raise ValueError("the Fisher information needs phi > 0 in every pixel (1 / phi appears in it)")
    nbar = check_nbar(nbar).to(phi)
    if nbar.ndim not in (0, 1) or (nbar.ndim == 1 and nbar.shape[0] != phi.shape[0]):
        raise ValueError(f"nbar must be a number or one value per image ({phi.shape[0]}), got shape {tuple(nbar.shape)}")
    return phi, jacobian, nbar
