"""Boundary checks in NumPy, without importing torch: the checks of :mod:`qml_imaging.physics.checks` for code
that reads laboratory files (``g2 fit``, ``g2 scan``), which must not load torch.

Torch tensors are still accepted where arrays are (the training pipelines pass them): they are recognised
without importing torch (the caller has already imported it) and read through ``.detach().cpu()``; floating
tensors of any precision become float64 arrays, like NumPy float arrays and Python numbers (the documented
conversion of every caller here, which computes in float64). Integer values are refused (``TypeError``)
unless ``integer_ok`` (counts), then converted to float64; bool and complex values are always refused.
Errors name the argument, show the bad value (or its shape and dtype) and say what was expected:
``TypeError`` for a wrong kind, ``ValueError`` for a wrong value.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeGuard

import numpy as np

if TYPE_CHECKING:
    import torch


def is_tensor(value: object) -> TypeGuard[torch.Tensor]:
    """Whether ``value`` is a torch tensor (told by its type's module, so torch is never imported here)."""
    return type(value).__module__.split(".")[0] == "torch" and hasattr(value, "detach")


def describe(value: object) -> str:
    """``value`` in an error message: dtype and shape of a tensor or array, else its repr and type."""
    if is_tensor(value):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    if isinstance(value, np.ndarray):
        return f"a NumPy {value.dtype} array of shape {value.shape}"
    return f"{value!r} ({type(value).__name__})"


def _scalar(value: object) -> object:
    """A 0-d tensor as the NumPy scalar of its own dtype (a bool stays a bool); anything else unchanged."""
    if is_tensor(value) and value.ndim == 0:
        return value.detach().cpu().numpy()[()]
    return value


def count(name: str, value: object, minimum: int = 1) -> int:
    """``value`` as an ``int`` after checking it is an integer (not a bool) ``>= minimum``.

    ``TypeError`` for bools, floats (even 3.0) and non-numbers, ``ValueError`` below ``minimum``.
    """
    number = _scalar(value)
    if isinstance(number, (bool, np.bool_)) or not isinstance(number, numbers.Integral):
        raise TypeError(f"{name} must be an integer count, got {describe(value)}")
    if number < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {number}")
    return int(number)


def real_number(name: str, value: object, *, positive: bool = False, nonnegative: bool = False,
                finite: bool = True) -> float:
    """``value`` as a ``float`` after checking it is a real number (not a bool), finite and of the asked sign."""
    if is_tensor(value) and value.ndim != 0:
        raise ValueError(f"{name} must be a single number, got {describe(value)}")
    number = _scalar(value)
    if isinstance(number, (bool, np.bool_)) or not isinstance(number, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {describe(value)}")
    number = float(number)
    if finite and not math.isfinite(number):
        raise ValueError(f"{name} must be finite (no NaN or inf), got {number}")
    if positive and not number > 0:
        raise ValueError(f"{name} must be > 0, got {number:g}")
    if nonnegative and not number >= 0:
        raise ValueError(f"{name} must be >= 0, got {number:g}")
    return number


def as_array(value: object) -> np.ndarray:
    """``value`` as a NumPy array of its own dtype (a tensor through ``.detach().cpu()``; no conversion)."""
    if is_tensor(value):
        tensor = value.detach().cpu()
        return (tensor.double() if str(tensor.dtype) == "torch.bfloat16" else tensor).numpy()  # NumPy has no bfloat16
    return np.asarray(value)


def real_array(name: str, value: object, *, ndim: int | Sequence[int] | None = None, integer_ok: bool = False,
               finite: bool = True, positive: bool = False, nonnegative: bool = False, allow_empty: bool = False,
               expected: str = "") -> np.ndarray:
    """``value`` as a float64 array after checking kind, dimensions, emptiness, finiteness and sign.

    ``ndim``: allowed numbers of dimensions; ``integer_ok``: integer values (counts) are converted to float64
    instead of refused; ``expected``: words for the error messages, e.g. ``"(B, K)"``.
    """
    what = f" {expected}" if expected else ""
    array = _floating(name, value, integer_ok, what)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if array.ndim not in allowed:
            raise ValueError(f"{name} must have {' or '.join(map(str, allowed))} dimensions{what}, got shape {array.shape}")
    if array.size == 0 and not allow_empty:
        raise ValueError(f"{name} is empty (shape {array.shape}); expected at least one value{what}")
    if finite and not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite (no NaN or inf), it contains {array[~np.isfinite(array)].flat[0]}")
    if positive and np.any(array <= 0):
        raise ValueError(f"{name} must be > 0 everywhere, its smallest entry is {array.min():.6g}")
    if nonnegative and np.any(array < 0):
        raise ValueError(f"{name} must be >= 0 everywhere, its smallest entry is {array.min():.6g}")
    return array


def _floating(name: str, value: object, integer_ok: bool, what: str) -> np.ndarray:
    """``value`` as a float64 array (see :func:`real_array`); ``TypeError`` for anything but real numbers."""
    if isinstance(value, (bool, np.bool_, str, bytes)) or value is None:
        raise TypeError(f"{name} must be a real array{what}, got {describe(value)}")
    try:
        array = as_array(value)
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(f"{name} must be a real array{what}, got {describe(value)}") from error
    if array.dtype.kind in "iu":
        if not integer_ok:
            raise TypeError(f"{name} must hold floating-point numbers{what}, got {describe(value)}; "
                            f"convert it to float64 first")
        return array.astype(np.float64)
    if array.dtype.kind != "f":
        raise TypeError(f"{name} must hold real numbers{what}, got {describe(value)}")
    return array.astype(np.float64, copy=False)
