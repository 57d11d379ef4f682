"""The T2 correlator: a histogram of delays between two sorted streams of integer time tags."""

from __future__ import annotations

import numpy as np

from qml_imaging.physics.hbt import DelayAxis

CONVENTIONS = ("all-pairs", "start-stop")
"""How start and stop tags are paired (see :func:`correlate`)."""


def correlate(start: np.ndarray, stop: np.ndarray, axis: DelayAxis, *, resolution_ns: float = 1.0,
              convention: str = "all-pairs") -> np.ndarray:
    """Histogram ``(K,)`` (float64) of delays ``t_stop - t_start`` on ``axis`` (bins ``[c - w/2, c + w/2)``).

    ``start``, ``stop``: sorted integer time tags ``(N1,)``, ``(N2,)`` in units of ``resolution_ns``.
    ``all-pairs`` counts every pair whose delay falls on the axis (a time tagger's correlation; its
    uncorrelated level is ``N1 N2 w / T``). ``start-stop`` pairs each start only with the first stop
    at or after ``t_start + (axis start - w/2)`` and counts it if that delay is on the axis (a TCSPC
    card's start-stop histogram, without dead time; it approaches all-pairs while the stop rate times
    the span is << 1). Bin edges that fall on the tag grid (within 1e-6 tick) are binned in exact
    integer arithmetic. Vectorised over the k-th stop inside each start's window.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    start, stop = np.asarray(start, dtype=np.int64), np.asarray(stop, dtype=np.int64)
    if np.any(np.diff(start) < 0) or np.any(np.diff(stop) < 0):
        raise ValueError("time tags must be sorted")
    width = axis.width_ns / resolution_ns
    low = (axis.start_ns - axis.width_ns / 2) / resolution_ns
    if abs(width - round(width)) < 1e-6 and abs(low - round(low)) < 1e-6 and round(width) > 0:
        width, low = round(width), round(low)  # edges on the tag grid: exact integer binning
    high = low + axis.bins * width
    # first stop with delay >= low, and first stop with delay >= high (integers: delay >= x <=> delay >= ceil(x))
    first = np.searchsorted(stop, start + int(np.ceil(low)), side="left")
    last = np.searchsorted(stop, start + int(np.ceil(high)), side="left")
    if convention == "start-stop":
        last = np.minimum(last, first + 1)
    histogram = np.zeros(axis.bins, dtype=np.float64)
    inside = last - first
    k = 0
    while True:
        chosen = inside > k
        if not chosen.any():
            break
        delays = stop[first[chosen] + k] - start[chosen]
        index = (delays - low) // width if isinstance(width, int) else np.floor((delays - low) / width).astype(np.int64)
        index = index[(index >= 0) & (index < axis.bins)]
        histogram += np.bincount(index, minlength=axis.bins)
        k += 1
    return histogram
