"""The delay axis of an HBT histogram (bin centres in ns), in plain Python and numpy.

Kept apart from :mod:`qml_imaging.physics.hbt` (which re-exports it) so that reading and correlating
laboratory files imports no torch; :meth:`DelayAxis.centres` imports torch when it is called.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

DEFAULT_BINS = 215
DEFAULT_SPAN_NS = 500.0


def _count(name: str, value: object) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer count, got {type(value).__name__} {value!r}")
    return int(value)


def _real(name: str, value: object, positive: bool = False) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite (no NaN or inf), got {number}")
    if positive and not number > 0:
        raise ValueError(f"{name} must be > 0, got {number:g}")
    return number


@dataclass(frozen=True)
class DelayAxis:
    """Bin centres of an HBT histogram: ``bins`` equal bins of ``span_ns / bins`` ns.

    ``first_ns`` ``None`` (the simulator's axis): symmetric about 0 with an odd number of bins, so
    bin ``zero_bin`` is centred on zero delay. ``first_ns`` given (measured data): the centre of the
    first bin in ns; any number of bins >= 3, zero delay anywhere (also outside the axis). Raises
    ``TypeError`` / ``ValueError`` (naming the field) for wrong kinds, even ``bins`` without
    ``first_ns``, non-positive ``span_ns`` or a non-finite ``first_ns``.
    """

    bins: int = DEFAULT_BINS
    span_ns: float = DEFAULT_SPAN_NS
    first_ns: float | None = None

    def __post_init__(self) -> None:
        bins = _count("bins", self.bins)
        if self.first_ns is None and (bins < 3 or bins % 2 == 0):
            raise ValueError(f"an HBT histogram needs an odd number of bins >= 3 (a bin centred on zero), got {self.bins}")
        if bins < 3:
            raise ValueError(f"an HBT histogram needs at least 3 bins, got {self.bins}")
        _real("span_ns", self.span_ns, positive=True)
        if self.first_ns is not None:
            _real("first_ns", self.first_ns)

    @classmethod
    def from_centres(cls, centres, *, relative_tolerance: float = 1e-3) -> DelayAxis:
        """The axis of equally spaced, increasing bin centres ``(K,)`` in ns (any real array, K >= 3).

        ``TypeError`` for booleans, complex or non-numeric centres; ``ValueError`` when they are not one
        dimension, not finite, not increasing or not equally spaced within ``relative_tolerance`` of the
        bin width (files store rounded delays).
        """
        values = np.asarray(centres)
        if values.dtype.kind not in "iuf":
            raise TypeError(f"centres must be real numbers ((K,) bin centres in ns), got dtype {values.dtype}")
        values = values.astype(np.float64)
        if values.ndim != 1:
            raise ValueError(f"centres must be (K,) bin centres in ns, got shape {values.shape}")
        if not np.all(np.isfinite(values)):
            raise ValueError("centres must be finite (no NaN or inf)")
        if len(values) < 3:
            raise ValueError(f"a delay axis needs at least 3 bin centres, got {len(values)}")
        steps = np.diff(values)
        width = float((values[-1] - values[0]) / (len(values) - 1))
        if width <= 0 or (steps <= 0).any():
            raise ValueError("delay bin centres must be strictly increasing")
        if float(np.abs(steps - width).max()) > relative_tolerance * width:
            raise ValueError(f"delay bins must be equally spaced: steps range from {float(steps.min()):.6g} to "
                             f"{float(steps.max()):.6g} ns (mean {width:.6g} ns); rebin the histogram first")
        return cls(bins=len(values), span_ns=width * len(values), first_ns=float(values[0]))

    @property
    def width_ns(self) -> float:
        return self.span_ns / self.bins

    @property
    def start_ns(self) -> float:
        """Centre of the first bin in ns."""
        return -(self.bins // 2) * self.width_ns if self.first_ns is None else float(self.first_ns)

    @property
    def zero_bin(self) -> int:
        """The bin centred on zero delay (symmetric axis); for a measured axis the bin nearest 0, clipped to the axis."""
        if self.first_ns is None:
            return self.bins // 2
        return min(max(round(-self.start_ns / self.width_ns), 0), self.bins - 1)

    def centres_ns(self) -> np.ndarray:
        """``(bins,)`` float64 numpy bin centres in ns (no torch)."""
        if self.first_ns is None:
            return (np.arange(self.bins, dtype=np.float64) - self.zero_bin) * self.width_ns
        return self.start_ns + np.arange(self.bins, dtype=np.float64) * self.width_ns

    def centres(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """``(bins,)`` bin centres in ns as a torch tensor of floating ``dtype`` (default float64; ``TypeError``
        otherwise)."""
        import torch

        dtype = torch.float64 if dtype is None else dtype
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating-point torch dtype, got {dtype!r}")
        if self.first_ns is None:
            return (torch.arange(self.bins, dtype=dtype) - self.zero_bin) * self.width_ns
        return (self.start_ns + torch.arange(self.bins, dtype=torch.float64) * self.width_ns).to(dtype)
