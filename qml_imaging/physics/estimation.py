"""Error statistics of image estimators over noise realisations: bias / variance and tangent / orthogonal splits.

Given ``R`` estimates ``phi_hat_r`` ``(R, H, W)`` of one true image ``phi`` ``(H, W)``:

* mean squared error decomposition (e.g. Kay, *Fundamentals of Statistical Signal Processing:
  Estimation Theory*, 1993, Ch. 2): per pixel ``mse_k = bias_k^2 + var_k`` with
  ``bias_k = mean_r(phi_hat_rk - phi_k)`` and the population variance over the realisations, so
  the identity is exact; totals sum over pixels;
* tangent split: with ``Q`` an orthonormal basis of the columns of the family's Jacobian
  ``J = d phi / d theta`` ``(H * W, P)`` (QR decomposition), the error ``e_r`` splits into
  ``Q Q^T e_r`` (along the family's tangent space, where an efficient estimator's error lies to
  first order and where the QCRB of :mod:`qml_imaging.physics.bounds` is reached) and the
  orthogonal rest; ``mse = tangent + orthogonal`` exactly (Pythagoras).

Inputs are floating tensors of one dtype (``TypeError`` otherwise: integer, bool, complex or mixed
dtypes); shapes, empty inputs and NaN / inf raise ``ValueError`` naming the argument.
"""

from __future__ import annotations

import torch

from qml_imaging.physics.checks import real_tensor, same_dtype


def _check_estimates(estimates: torch.Tensor, truth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    truth = real_tensor("truth", truth, ndim=2, expected="(H, W)")
    estimates = real_tensor("estimates", estimates, shape=(None, *truth.shape), expected="(R, H, W), R >= 1 realisations")
    same_dtype(estimates=estimates, truth=truth)
    return estimates, truth


def error_statistics(estimates: torch.Tensor, truth: torch.Tensor) -> dict[str, torch.Tensor]:
    """Total MSE and its split into bias² and variance over realisations ``estimates`` ``(R, H, W)`` of ``truth`` ``(H, W)``.

    Returns 0-d tensors ``mse``, ``bias2``, ``variance`` (sums over pixels, units of ``phi``²) and
    ``(H, W)`` maps ``bias_map``, ``variance_map``, ``mse_map``; ``mse = bias2 + variance`` exactly
    (population variance over the ``R`` realisations). See the module docstring for the source.
    """
    estimates, truth = _check_estimates(estimates, truth)
    errors = estimates - truth
    bias = errors.mean(dim=0)
    variance = errors.var(dim=0, unbiased=False)
    return {"mse": errors.pow(2).mean(dim=0).sum(), "bias2": bias.pow(2).sum(), "variance": variance.sum(),
            "bias_map": bias, "variance_map": variance, "mse_map": errors.pow(2).mean(dim=0)}


def tangent_split(estimates: torch.Tensor, truth: torch.Tensor, jacobian: torch.Tensor) -> dict[str, torch.Tensor]:
    """Total MSE of ``estimates`` ``(R, H, W)`` split along the family's tangent space at ``truth`` ``(H, W)``.

    ``jacobian`` ``(H * W, P)`` (pixels row-major, ``P <= H * W``) spans the directions an estimate
    ``phi(theta_hat)`` of the family can err in to first order; an efficient estimator's error lies
    there and its mean square reaches the QCRB. The rest, ``orthogonal``, is error no parameter
    change explains: noise passed through to the output, or shapes the family does not have.
    Returns 0-d tensors ``tangent`` and ``orthogonal``; ``mse = tangent + orthogonal`` exactly
    (Euclidean projection onto the QR basis of ``jacobian``, see the module docstring).
    """
    estimates, truth = _check_estimates(estimates, truth)
    pixels = truth.numel()
    jacobian = real_tensor("jacobian", jacobian, ndim=2, expected=f"({pixels}, P): one row per pixel of truth")
    if jacobian.shape[0] != pixels or not 1 <= jacobian.shape[1] <= pixels:
        raise ValueError(f"jacobian must have shape ({pixels}, P) with 1 <= P <= {pixels} (one row per pixel of truth), "
                         f"got {tuple(jacobian.shape)}")
    same_dtype(estimates=estimates, jacobian=jacobian)
    basis, _ = torch.linalg.qr(jacobian)
    errors = (estimates - truth).flatten(1)
    tangent = (errors @ basis).pow(2).sum(dim=1).mean()
    return {"tangent": tangent, "orthogonal": errors.pow(2).sum(dim=1).mean() - tangent}
