"""Boundary checks shared by every public function of :mod:`qml_imaging.physics`.

Each check names the argument, shows the bad value (or its shape / dtype) and says what was
expected. Errors are ``TypeError`` for a wrong kind of value (a bool where a count is expected, an
integer or complex tensor where real numbers are needed, something that is not a number at all)
and ``ValueError`` for a right kind with a wrong value (shape, emptiness, NaN / inf, sign, range).

Conversions are explicit and documented, never silent:

* :func:`real_tensor` accepts floating tensors and keeps their dtype, or converts them to ``dtype``
  when one is given; Python numbers, lists and NumPy float arrays become float64 tensors. Integer
  tensors are refused (``TypeError``) unless ``integer_ok`` (counts), in which case they are
  converted to float64. Bool and complex values are always refused.
* :func:`count` accepts Python and NumPy integers and 0-d integer tensors (not bool, not 2.5) and
  returns an ``int``; :func:`real_number` accepts Python / NumPy real numbers and 0-d real tensors
  (not bool) and returns a ``float``. Both live in :mod:`qml_imaging.physics.array_checks`, the
  torch-free twin of this module (NumPy checks for the lab-file path), and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from qml_imaging.physics.array_checks import count, real_number  # noqa: F401  (torch-free home, used by importers)
from qml_imaging.physics.array_checks import describe as _describe


def real_tensor(name: str, value: object, *, ndim: int | Sequence[int] | None = None, min_ndim: int = 0,
                shape: Sequence[int | None] | None = None, dtype: torch.dtype | None = None,
                integer_ok: bool = False, finite: bool = True, positive: bool = False, nonnegative: bool = False,
                allow_empty: bool = False, expected: str = "") -> torch.Tensor:
    """``value`` as a real floating tensor after checking kind, dtype, shape, emptiness, finiteness and sign.

    ``ndim``: allowed numbers of dimensions; ``shape``: the expected shape, ``None`` entries free
    (its length fixes ``ndim``); ``dtype``: convert to this floating dtype (documented conversion)
    instead of keeping the tensor's own; ``integer_ok``: integer tensors (counts) are converted to
    float64 instead of refused; ``expected``: words for the error messages, e.g. ``"(B, K)"``.
    """
    what = f" {expected}" if expected else ""
    value = _real_floating(name, value, dtype, integer_ok, what)
    _check_shape(name, value, ndim, min_ndim, shape, what)
    if value.numel() == 0 and not allow_empty:
        raise ValueError(f"{name} is empty (shape {tuple(value.shape)}); expected at least one value{what}")
    if finite and not torch.isfinite(value).all():
        bad = value[~torch.isfinite(value)].flatten()[0].item()
        raise ValueError(f"{name} must be finite (no NaN or inf), it contains {bad}")
    if positive and (value <= 0).any():
        raise ValueError(f"{name} must be > 0 everywhere, its smallest entry is {value.min().item():.6g}")
    if nonnegative and (value < 0).any():
        raise ValueError(f"{name} must be >= 0 everywhere, its smallest entry is {value.min().item():.6g}")
    return value


def _real_floating(name: str, value: object, dtype: torch.dtype | None, integer_ok: bool, what: str) -> torch.Tensor:
    """``value`` as a floating tensor (see :func:`real_tensor`); TypeError for anything but real numbers."""
    if not isinstance(value, torch.Tensor):
        if isinstance(value, (bool, np.bool_, str, bytes)) or value is None:
            raise TypeError(f"{name} must be a real tensor{what}, got {_describe(value)}")
        try:
            value = torch.as_tensor(np.asarray(value))
        except (TypeError, ValueError, RuntimeError) as error:
            raise TypeError(f"{name} must be a real tensor{what}, got {_describe(value)}") from error
        if value.dtype.is_floating_point:
            value = value.to(torch.float64)
    if value.dtype == torch.bool or value.dtype.is_complex:
        raise TypeError(f"{name} must hold real numbers{what}, got {_describe(value)}")
    if not value.dtype.is_floating_point:
        if not integer_ok:
            raise TypeError(f"{name} must be a floating-point tensor{what}, got {_describe(value)}; "
                            f"convert it with .double() (or .float()) first")
        return value.to(dtype or torch.float64)
    return value.to(dtype) if dtype is not None else value


def _check_shape(name: str, value: torch.Tensor, ndim: int | Sequence[int] | None, min_ndim: int,
                 shape: Sequence[int | None] | None, what: str) -> None:
    """ValueError unless ``value`` has one of the ``ndim`` (or ``len(shape)``) dimensions, at least ``min_ndim``,
    and ``shape`` where it is not None."""
    if shape is not None:
        ndim = len(shape)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if value.ndim not in allowed:
            raise ValueError(f"{name} must have {' or '.join(map(str, allowed))} dimensions{what}, "
                             f"got shape {tuple(value.shape)}")
    if value.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimensions{what}, got shape {tuple(value.shape)}")
    if shape is not None and any(s is not None and s != v for s, v in zip(shape, value.shape, strict=True)):
        wanted = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {wanted}{what}, got {tuple(value.shape)}")


def same_dtype(**tensors: torch.Tensor) -> torch.dtype:
    """The common dtype of ``tensors``; ``TypeError`` naming them when they differ (no silent promotion)."""
    dtypes = {name: t.dtype for name, t in tensors.items()}
    if len(set(dtypes.values())) > 1:
        listed = ", ".join(f"{name} {dtype}" for name, dtype in dtypes.items())
        raise TypeError(f"{', '.join(dtypes)} must share one dtype, got {listed}; convert them first")
    return next(iter(dtypes.values()))
