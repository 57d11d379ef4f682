"""Time-tag files read in chunks and correlated in one streaming pass (PTU T2/T3, Photon-HDF5).

A :class:`TagSource` is an opened time-tag file: its chunks of decoded :class:`~qml_imaging.data.tttr_records.Events`,
its tag unit and, for T3 data, its sync period. :func:`correlate_source` turns the photons of two named
channels into one histogram with :class:`~qml_imaging.data.correlator.StreamingCorrelator`, so memory is
bounded by the chunk size and the histogram, never by the file's length.

Channels: a detector input by its 0-based number, or ``"sync"`` for the SYNC input's events (T2 files of
HydraHarp-family devices). SYNC is never a photon unless named. T3 photons are timed absolutely as
``sync number * sync period + micro time`` (in micro-time bins), so CW g2 comes from T3 files as from T2;
``gate_ns=(low, high)`` keeps only T3 photons whose micro time is in ``[low, high)`` ns (against laser
scatter and afterpulsing).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from qml_imaging.data.correlator import StreamingCorrelator
from qml_imaging.data.histograms import HbtHistograms
from qml_imaging.data.tttr_records import MARKER, PHOTON, SYNC, Events
from qml_imaging.physics.delay_axis import DelayAxis

CHUNK_RECORDS = 1 << 18
"""Records decoded at a time (1 MiB of PTU records; the decoded chunk and its temporaries take about 15 MiB)."""
SYNC_NAME = "sync"
MAX_INPUTS = 64


@dataclass(frozen=True)
class TagSource:
    """An opened time-tag file. ``chunks(size)`` yields its events in order; ``tick_s``: the unit of photon
    times (T2: the tag unit; T3: the micro-time bin); ``period_s``: T3 sync period, or for T2 the laser
    period the header states (``None`` if it states none); ``seconds``: the stated acquisition time, or
    ``None`` (then the span of the tags); ``name``: the record type, for messages."""

    path: str
    name: str
    t3: bool
    tick_s: float
    period_s: float | None
    seconds: float | None
    chunks: Callable[[int], Iterator[Events]]


def parse_channels(channels: tuple) -> tuple[int, int]:
    """``(a, b)`` with ``"sync"`` as -1; ``ValueError`` for anything but two different inputs or sync."""
    parsed = []
    for channel in channels:
        if isinstance(channel, str) and channel.strip().lower() == SYNC_NAME:
            parsed.append(-1)
        elif isinstance(channel, int | np.integer) and not isinstance(channel, bool) and 0 <= channel < MAX_INPUTS:
            parsed.append(int(channel))
        else:
            raise ValueError(f"a channel is a detector input 0..{MAX_INPUTS - 1} or 'sync', got {channel!r}")
    if len(parsed) != 2 or parsed[0] == parsed[1]:
        raise ValueError(f"channels must name two different detectors (inputs or 'sync'), got {channels}")
    return parsed[0], parsed[1]


class _Census:
    """Photons per input, SYNC events and markers seen, for the error that lists what a file holds."""

    def __init__(self) -> None:
        self.inputs = np.zeros(MAX_INPUTS, dtype=np.int64)
        self.syncs = self.markers = 0

    def add(self, events: Events) -> None:
        photons = events.kind == PHOTON
        self.inputs += np.bincount(events.channel[photons], minlength=MAX_INPUTS)[:MAX_INPUTS]
        self.syncs += int(np.count_nonzero(events.kind == SYNC))
        self.markers += int(np.count_nonzero(events.kind == MARKER))

    def describe(self) -> str:
        parts = [f"input {i} ({n} photons)" for i, n in enumerate(self.inputs) if n]
        if self.syncs:
            parts.insert(0, f"sync ({self.syncs} SYNC events)")
        if self.markers:
            parts.append(f"{self.markers} marker records")
        return ", ".join(parts) or "no events"


def _timing(source: TagSource) -> tuple[int | float, bool]:
    """``(syncs to ticks, exact)``: T3 sync periods in micro-time bins (an int when they are whole)."""
    ratio = source.period_s / source.tick_s
    return (round(ratio), True) if abs(ratio - round(ratio)) < 1e-9 * ratio else (ratio, False)


def photon_times(source: TagSource, events: Events, ratio: int | float | None = None) -> np.ndarray:
    """``(N,)`` int64 absolute times of ``events`` in ticks of ``source.tick_s`` (``ratio``: sync periods in ticks,
    computed from the source when not given)."""
    if not source.t3:
        return events.time
    if ratio is None:
        ratio = _timing(source)[0]
    if isinstance(ratio, int):
        return events.time * ratio + events.dtime
    return np.rint(events.time * ratio).astype(np.int64) + events.dtime


def _selected(events: Events, channel: int, gate: tuple[int, int] | None) -> np.ndarray:
    chosen = events.kind == SYNC if channel < 0 else (events.kind == PHOTON) & (events.channel == channel)
    if gate is not None:
        chosen &= (events.dtime >= gate[0]) & (events.dtime < gate[1])
    return chosen


def _ordered(times: np.ndarray) -> np.ndarray:
    """``times`` as they are when sorted (T2 tags always are); T3 photons of one chunk whose micro times run past
    the next sync are put in order (checked, not sorted, in the common case)."""
    return times if not np.any(times[1:] < times[:-1]) else np.sort(times)


def _gate_bins(source: TagSource, gate_ns: tuple[float, float] | None) -> tuple[int, int] | None:
    if gate_ns is None:
        return None
    if not source.t3:
        raise ValueError(f"{source.path}: a micro-time gate needs T3 data (photons timed against the laser); "
                         f"this is a {source.name} file")
    low, high = (float(g) for g in gate_ns)
    if not (math.isfinite(low) and math.isfinite(high) and 0 <= low < high):
        raise ValueError(f"the micro-time gate must be LOW,HIGH ns with 0 <= LOW < HIGH, got {gate_ns}")
    tick_ns = source.tick_s * 1e9
    return math.ceil(low / tick_ns - 1e-9), math.ceil(high / tick_ns - 1e-9)


def correlate_source(source: TagSource, axis: DelayAxis, channels: tuple = (0, 1), *, convention: str = "all-pairs",
                     gate_ns: tuple[float, float] | None = None, chunk_records: int = CHUNK_RECORDS) -> HbtHistograms:
    """One histogram of ``t_b - t_a`` for ``channels=(a, b)`` on ``axis``, in one streaming pass.

    Singles are the (gated) events per channel; the acquisition time is the stated one, else the span of
    the tags. ``ValueError`` naming the channels the file holds (SYNC among them) when a named one is empty.
    """
    first, second = parse_channels(channels)
    if source.t3 and -1 in (first, second):
        raise ValueError(f"{source.path}: in a T3 file SYNC is the time base (micro times), not a stream of events; "
                         f"name two detector inputs")
    gate = _gate_bins(source, gate_ns)
    ratio = _timing(source)[0] if source.t3 else 1
    correlator = StreamingCorrelator(axis, resolution_ns=source.tick_s * 1e9, convention=convention)
    census, singles, span = _Census(), np.zeros(2, dtype=np.int64), [None, None]
    for events in source.chunks(chunk_records):
        if not len(events):
            continue
        census.add(events)
        times = photon_times(source, events, ratio)
        streams = [times[_selected(events, c, gate)] for c in (first, second)]
        streams = [_ordered(s) for s in streams] if source.t3 else streams
        singles += [len(s) for s in streams]
        frontier = int(events.time[-1] * ratio) if source.t3 else int(times[-1])
        try:
            correlator.add(streams[0], streams[1], frontier)
        except ValueError as error:
            raise ValueError(f"{source.path}: {error}: the tags go back in time, the file is damaged") from None
        span = [times[0] if span[0] is None else span[0], times[-1]]
    _check_singles(source, (first, second), singles, census)
    seconds = source.seconds or float(span[1] - span[0]) * source.tick_s
    if not seconds > 0:
        raise ValueError(f"{source.path}: the acquisition time is not stated and the tags span no time")
    period_ns = None if source.period_s is None else source.period_s * 1e9
    return HbtHistograms(correlator.counts().astype(np.float64), axis, singles[None].astype(np.float64), seconds,
                         None, source.path, period_ns=period_ns)


def _check_singles(source: TagSource, channels: tuple[int, int], singles: np.ndarray, census: _Census) -> None:
    for channel, count in zip(channels, singles, strict=True):
        if not count:
            name = "sync (SYNC events)" if channel < 0 else f"input {channel}"
            raise ValueError(f"{source.path}: no events on {name}; the file holds {census.describe()}; name two of "
                             f"them with --channels A,B (inputs by number, 'sync' for the SYNC input)")
