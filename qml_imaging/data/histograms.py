"""Coincidence histograms as read from laboratory files: :class:`HbtHistograms`.

``counts`` ``(B, K)`` float64 coincidences on one :class:`~qml_imaging.physics.hbt.DelayAxis` (bin
centres in ns, any width and span), and, when the file holds them, the singles counts of the two
channels ``(B, 2)`` and the acquisition times ``(B,)`` in s, from which the uncorrelated level per bin
is ``N1 N2 w / T`` (:meth:`HbtHistograms.baseline`). NumPy only: reading and fitting files imports no
torch. The readers: :mod:`qml_imaging.data.hbt_files`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from qml_imaging.physics.coincidences import baseline_from_singles
from qml_imaging.physics.delay_axis import DelayAxis

UNITS_NS = {"ps": 1e-3, "ns": 1.0, "us": 1e3, "µs": 1e3, "s": 1e9}
"""Nanoseconds per delay unit a file may state."""


@dataclass(frozen=True)
class HbtHistograms:
    """Histograms ``counts`` ``(B, K)`` (float64 counts >= 0) on ``axis``; ``singles`` ``(B, 2)`` photons per
    channel and ``seconds`` ``(B,)`` acquisition times in s, or ``None`` when the file lacks them;
    ``zero_delay_ns`` from the file (``None``: unknown, fit it); ``source``: where it was read; ``period_ns``:
    the laser repetition period the file states (time tags with a SYNC clock), else ``None``."""

    counts: np.ndarray
    axis: DelayAxis
    singles: np.ndarray | None = None
    seconds: np.ndarray | None = None
    zero_delay_ns: float | None = None
    source: str = ""
    g2_true: np.ndarray | None = field(default=None, compare=False)
    period_ns: float | None = None

    def __post_init__(self) -> None:
        counts = np.asarray(self.counts, dtype=np.float64)
        if counts.ndim == 1:
            counts = counts[None]
        where = f" in {self.source}" if self.source else ""
        if counts.ndim != 2 or counts.shape[1] != self.axis.bins:
            raise ValueError(f"counts{where} must be (B, {self.axis.bins}) for its delay axis, got {counts.shape}")
        if not np.all(np.isfinite(counts)) or np.any(counts < 0):
            raise ValueError(f"counts{where} must be finite and >= 0 (coincidence counts)")
        object.__setattr__(self, "counts", counts)
        batch = len(counts)
        if self.singles is not None:
            singles = np.asarray(self.singles, dtype=np.float64).reshape(-1, 2) if np.size(self.singles) else None
            if singles is None or singles.shape != (batch, 2) or not np.all(np.isfinite(singles)) or np.any(singles < 0):
                raise ValueError(f"singles{where} must be finite counts >= 0 of shape ({batch}, 2), got "
                                 f"{np.shape(self.singles)}")
            object.__setattr__(self, "singles", singles)
        if self.seconds is not None:
            seconds = np.broadcast_to(np.asarray(self.seconds, dtype=np.float64), (batch,)).copy()
            if not np.all(np.isfinite(seconds)) or np.any(seconds <= 0):
                raise ValueError(f"seconds{where} (acquisition time) must be finite and > 0")
            object.__setattr__(self, "seconds", seconds)
        if self.g2_true is not None:
            object.__setattr__(self, "g2_true", np.broadcast_to(np.asarray(self.g2_true, dtype=np.float64), (batch,)).copy())

    def __len__(self) -> int:
        return len(self.counts)

    @property
    def has_singles(self) -> bool:
        return self.singles is not None and self.seconds is not None

    def baseline(self) -> np.ndarray | None:
        """``(B,)`` float64 uncorrelated coincidences per bin ``N1 N2 w / T``
        (:func:`~qml_imaging.physics.coincidences.baseline_from_singles`), or ``None`` without singles and time."""
        if not self.has_singles:
            return None
        return baseline_from_singles(self.singles[:, 0], self.singles[:, 1], self.axis.width_ns, self.seconds)

    def rates(self) -> np.ndarray | None:
        """``(B,)`` mean singles rate per channel ``(N1 + N2) / 2T`` in counts/s, or ``None``."""
        return None if not self.has_singles else self.singles.mean(1) / self.seconds
