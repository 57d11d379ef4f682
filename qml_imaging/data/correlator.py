"""Correlators of time tags: a histogram of delays ``t_stop - t_start`` between two sorted streams.

:func:`correlate` takes two whole streams; :class:`StreamingCorrelator` takes them in chunks (as a
file is read) and gives the same integer counts: a start is paired once every stop that can fall in
its window has arrived, and only the stops a pending or future start can still reach are kept, so its
memory is the chunk plus the tags of one window span, whatever the length of the file. Tags that
arrive sorted are never re-sorted. With labels (pixels of a scan), only pairs whose two tags carry the
same label count, into one histogram per label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from qml_imaging.data.catalog import CONVENTIONS
from qml_imaging.physics.delay_axis import DelayAxis

"""How start and stop tags are paired (see :func:`correlate`)."""


@dataclass(frozen=True)
class _Binning:
    """The axis in tag units: bin ``k`` holds delays in ``[low + k w, low + (k + 1) w)``; integer delays
    ``d`` are on the axis when ``first <= d < stop_at``."""

    low: float | int
    width: float | int
    bins: int
    first: int
    stop_at: int

    @classmethod
    def of(cls, axis: DelayAxis, resolution_ns: float) -> _Binning:
        if not math.isfinite(resolution_ns) or resolution_ns <= 0:
            raise ValueError(f"resolution_ns must be a positive tag unit in ns, got {resolution_ns}")
        width = axis.width_ns / resolution_ns
        low = (axis.start_ns - axis.width_ns / 2) / resolution_ns
        if abs(width - round(width)) < 1e-6 and abs(low - round(low)) < 1e-6 and round(width) > 0:
            width, low = round(width), round(low)  # edges on the tag grid: exact integer binning
        # integers: delay >= x <=> delay >= ceil(x)
        return cls(low, width, axis.bins, math.ceil(low), math.ceil(low + axis.bins * width))

    def index(self, delays: np.ndarray) -> np.ndarray:
        if isinstance(self.width, int):
            return (delays - self.low) // self.width
        return np.floor((delays - self.low) / self.width).astype(np.int64)


def _pair_counts(start: np.ndarray, stop: np.ndarray, binning: _Binning, convention: str,
                 start_labels: np.ndarray | None = None, stop_labels: np.ndarray | None = None,
                 labels: int = 1) -> np.ndarray:
    """``(labels, bins)`` int64 pair counts of sorted int64 ``start`` and ``stop``: one binary search per start for
    its first stop on the axis, then the k-th stops while they stay on it (the windows hold few stops, so few
    passes over a shrinking set of starts)."""
    first = np.searchsorted(stop, start + binning.first, side="left")
    counts = np.zeros(labels * binning.bins, dtype=np.int64)
    active = np.flatnonzero(first < len(stop))
    k = 0
    while len(active) and (k == 0 or convention == "all-pairs"):
        partner = first[active] + k
        delays = stop[partner] - start[active]
        near = delays < binning.stop_at
        active, partner, delays = active[near], partner[near], delays[near]
        index = binning.index(delays)
        on_axis = index < binning.bins
        if start_labels is not None:
            on_axis &= start_labels[active] == stop_labels[partner]
            index = index + start_labels[active].astype(np.int64) * binning.bins
        counts += np.bincount(index[on_axis], minlength=len(counts))
        k += 1
        active = active[first[active] + k < len(stop)]
    return counts.reshape(labels, binning.bins)


def correlate(start: np.ndarray, stop: np.ndarray, axis: DelayAxis, *, resolution_ns: float = 1.0,
              convention: str = "all-pairs") -> np.ndarray:
    """Histogram ``(K,)`` (float64) of delays ``t_stop - t_start`` on ``axis`` (bins ``[c - w/2, c + w/2)``).

    ``start``, ``stop``: sorted integer time tags ``(N1,)``, ``(N2,)`` in units of ``resolution_ns``.
    ``all-pairs`` counts every pair whose delay falls on the axis (a time tagger's correlation; its
    uncorrelated level is ``N1 N2 w / T``). ``start-stop`` pairs each start only with the first stop
    at or after ``t_start + (axis start - w/2)`` and counts it if that delay is on the axis (a TCSPC
    card's start-stop histogram, without dead time; it approaches all-pairs while the stop rate times
    the span is << 1). Bin edges that fall on the tag grid (within 1e-6 tick) are binned in exact
    integer arithmetic. ``ValueError`` for unsorted tags or an unknown convention.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    start, stop = np.asarray(start, dtype=np.int64), np.asarray(stop, dtype=np.int64)
    if np.any(np.diff(start) < 0) or np.any(np.diff(stop) < 0):
        raise ValueError("time tags must be sorted")
    return _pair_counts(start, stop, _Binning.of(axis, resolution_ns), convention)[0].astype(np.float64)


class StreamingCorrelator:
    """:func:`correlate` over chunks: ``add`` each chunk's start and stop tags (sorted, int64, in units of
    ``resolution_ns``) with the chunk's ``frontier`` (no later tag of either stream is earlier), then
    ``counts`` ``(labels, K)`` int64. The same pairs as :func:`correlate` of the whole streams, for any
    chunking. With ``labels`` > 1, ``add`` takes each tag's label (int, ``0 <= label < labels``) and
    only pairs of equal labels count. ``ValueError`` for a chunk that goes back in time."""

    def __init__(self, axis: DelayAxis, *, resolution_ns: float = 1.0, convention: str = "all-pairs",
                 labels: int = 1) -> None:
        if convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
        self.binning = _Binning.of(axis, resolution_ns)
        self.convention, self.labels = convention, labels
        self._counts = np.zeros((labels, axis.bins), dtype=np.int64)
        empty = np.zeros(0, dtype=np.int64)
        self._starts, self._stops = (empty, empty if labels > 1 else None), (empty, empty if labels > 1 else None)
        self._frontier: int | None = None

    def add(self, start: np.ndarray, stop: np.ndarray, frontier: int, start_labels: np.ndarray | None = None,
            stop_labels: np.ndarray | None = None) -> None:
        """Take one chunk; pair every pending start whose window the frontier has passed."""
        if self._frontier is not None and frontier < self._frontier:
            raise ValueError(f"time tags go back from {self._frontier} to {frontier} between chunks")
        self._frontier = frontier
        starts = self._joined(self._starts, start, start_labels, "start")
        stops = self._joined(self._stops, stop, stop_labels, "stop")
        ready = int(np.searchsorted(starts[0], frontier - self.binning.stop_at, side="right"))
        if ready:
            self._counts += _pair_counts(starts[0][:ready], stops[0], self.binning, self.convention,
                                         None if starts[1] is None else starts[1][:ready], stops[1], self.labels)
        self._starts = tuple(None if x is None else x[ready:] for x in starts)
        reach = min(int(self._starts[0][0]) if len(self._starts[0]) else frontier, frontier) + self.binning.first
        keep = int(np.searchsorted(stops[0], reach, side="left"))
        self._stops = tuple(None if x is None else x[keep:] for x in stops)

    def _joined(self, held: tuple, tags: np.ndarray, labels: np.ndarray | None, name: str) -> tuple:
        tags = np.asarray(tags, dtype=np.int64)
        if len(tags) and ((len(held[0]) and tags[0] < held[0][-1]) or np.any(tags[1:] < tags[:-1])):
            raise ValueError(f"{name} time tags must arrive sorted")
        if (labels is None) != (held[1] is None):
            raise ValueError(f"{name} labels must be given exactly when the correlator has labels > 1")
        joined_labels = None if labels is None else np.concatenate([held[1], np.asarray(labels, dtype=np.int64)])
        return np.concatenate([held[0], tags]), joined_labels

    def counts(self) -> np.ndarray:
        """``(labels, K)`` int64 pair counts of everything added, the pending starts paired now."""
        if len(self._starts[0]):
            self._counts += _pair_counts(self._starts[0], self._stops[0], self.binning, self.convention,
                                         self._starts[1], self._stops[1], self.labels)
            empty = np.zeros(0, dtype=np.int64)
            self._starts = (empty, None if self._starts[1] is None else empty)
        return self._counts.copy()
