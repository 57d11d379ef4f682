"""A confocal scan recorded as one time-tag file with line and frame markers, correlated per pixel in one pass.

The scanner writes a marker at each line start and line stop (and frame start). A photon between a line's
start ``t0`` and stop ``t1`` belongs to row ``r`` (lines since the last frame marker; without frame markers,
the line count modulo the lines per frame) and column ``floor((t - t0) / (t1 - t0) * W)``; photons outside
lines (the retrace) belong to no pixel. Photons of an unfinished line wait for its stop marker, so memory is
one chunk plus one line. Every pixel's histogram of ``t_b - t_a`` comes from the
:class:`~qml_imaging.data.correlator.StreamingCorrelator` with the pixel as label (pairs within one pixel
only); singles are counted per pixel and the acquisition time of a pixel is its summed dwell time.

Marker bits and sizes come from the PTU header where it states them (``ImgHdr_LineStart``,
``ImgHdr_LineStop``, ``ImgHdr_Frame``: marker numbers, bit ``number - 1``; ``ImgHdr_PixX``, ``ImgHdr_PixY``),
else from the options.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qml_imaging.data.correlator import StreamingCorrelator
from qml_imaging.data.histograms import HbtHistograms
from qml_imaging.data.picoquant import PTU_MAGIC, open_ptu
from qml_imaging.data.pq_header import read_header
from qml_imaging.data.tag_streams import (
    CHUNK_RECORDS,
    TagSource,
    parse_channels,
    photon_times,
)
from qml_imaging.data.tttr_records import MARKER, PHOTON, Events
from qml_imaging.physics.delay_axis import DelayAxis

MAX_PIXELS = 4096 * 4096
"""More pixels than this in a scan is refused before anything is allocated."""


@dataclass(frozen=True)
class ScanLayout:
    """``pixels`` per line, ``lines`` per frame, and the marker numbers (1-based bits) of line start, line stop
    and frame start (``frame`` ``None``: none written)."""

    pixels: int
    lines: int
    start: int
    stop: int
    frame: int | None = None

    def __post_init__(self) -> None:
        for name in ("pixels", "lines", "start", "stop"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"scan {name} must be an integer >= 1, got {value!r}")
        if self.pixels * self.lines > MAX_PIXELS:
            raise ValueError(f"a scan of {self.pixels} x {self.lines} pixels is more than the {MAX_PIXELS} allowed")
        markers = [m for m in (self.start, self.stop, self.frame) if m is not None]
        if len(set(markers)) != len(markers) or max(markers) > 15:
            raise ValueError(f"line start, line stop and frame markers must be different numbers 1..15, got {markers}")


def layout_of(path: Path, pixels: int | None = None, lines: int | None = None,
              markers: tuple[int, ...] | None = None) -> ScanLayout:
    """The scan layout from the options, else from the PTU header's imaging tags; ``ValueError`` naming what is
    missing."""
    tags, _ = read_header(path, PTU_MAGIC)
    stated = [tags.get(k) for k in ("ImgHdr_LineStart", "ImgHdr_LineStop", "ImgHdr_Frame")]
    start, stop, frame = (*markers, None)[:3] if markers is not None else stated
    values = {"pixels per line (--pixels)": pixels or tags.get("ImgHdr_PixX"),
              "lines per frame (--lines)": lines or tags.get("ImgHdr_PixY"),
              "line start and stop markers (--markers START,STOP[,FRAME])": start if stop is not None else None}
    missing = [name for name, value in values.items() if value is None]
    if missing:
        raise ValueError(f"{path}: the header does not state the {' or '.join(missing)}; give them as options")
    return ScanLayout(int(values["pixels per line (--pixels)"]), int(values["lines per frame (--lines)"]), int(start),
                      int(stop), None if frame is None else int(frame))


class _Lines:
    """Line intervals from marker events, carried across chunks: complete lines ``(start, stop, row)``."""

    def __init__(self, layout: ScanLayout) -> None:
        self.layout = layout
        self.open_start: int | None = None
        self.count = 0
        self.frame_first = 0

    def take(self, times: np.ndarray, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        starts, stops, rows = [], [], []
        mask = {name: 1 << (number - 1) for name, number in (("start", self.layout.start), ("stop", self.layout.stop),
                                                             ("frame", self.layout.frame)) if number is not None}
        for time, bit in zip(times.tolist(), bits.tolist(), strict=True):
            if bit & mask.get("frame", 0):
                self.frame_first = self.count
            if bit & mask["stop"] and self.open_start is not None:
                starts.append(self.open_start)
                stops.append(time)
                rows.append(self._row())
                self.open_start, self.count = None, self.count + 1
            if bit & mask["start"]:
                self.open_start = time
        return np.array(starts, dtype=np.int64), np.array(stops, dtype=np.int64), np.array(rows, dtype=np.int64)

    def _row(self) -> int:
        row = self.count - self.frame_first if self.layout.frame is not None else self.count % self.layout.lines
        return row if row < self.layout.lines else -1


def _pixels(times: np.ndarray, starts: np.ndarray, stops: np.ndarray, rows: np.ndarray, width: int) -> np.ndarray:
    """The pixel (``row * width + column``) of each photon time, -1 outside every complete line."""
    line = np.searchsorted(starts, times, side="right") - 1
    inside = (line >= 0) & (times < stops[np.maximum(line, 0)]) if len(starts) else np.zeros(len(times), dtype=bool)
    line = np.maximum(line, 0)
    if len(starts):
        column = ((times - starts[line]) * width) // np.maximum(stops[line] - starts[line], 1)
        inside &= rows[line] >= 0
        return np.where(inside, rows[line] * width + np.minimum(column, width - 1), -1)
    return np.full(len(times), -1, dtype=np.int64)


class _ScanPass:
    """The state of one streaming pass: the correlator, per-pixel singles and dwell, photons waiting for a line."""

    def __init__(self, source: TagSource, layout: ScanLayout, axis: DelayAxis, channels: tuple[int, int]) -> None:
        self.source, self.layout, self.channels = source, layout, channels
        self.size = layout.pixels * layout.lines
        self.correlator = StreamingCorrelator(axis, resolution_ns=source.tick_s * 1e9, labels=self.size)
        self.singles = np.zeros((self.size, 2), dtype=np.int64)
        self.dwell = np.zeros(self.size, dtype=np.float64)
        self.lines = _Lines(layout)
        self.waiting = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))

    def add(self, events: Events) -> None:
        times = photon_times(self.source, events)
        marker = events.kind == MARKER
        starts, stops, rows = self.lines.take(times[marker], events.channel[marker])
        photon = (events.kind == PHOTON) & np.isin(events.channel, self.channels)
        held_times = np.concatenate([self.waiting[0], times[photon]])
        held_channels = np.concatenate([self.waiting[1], events.channel[photon].astype(np.int64)])
        later = held_times >= self.lines.open_start if self.lines.open_start is not None else np.zeros(len(held_times), bool)
        self.waiting = (held_times[later], held_channels[later])
        times, channel = held_times[~later], held_channels[~later]
        pixel = _pixels(times, starts, stops, rows, self.layout.pixels)
        self._dwell(starts, stops, rows)
        if not len(stops):
            return
        streams = [(times[(channel == c) & (pixel >= 0)], pixel[(channel == c) & (pixel >= 0)]) for c in self.channels]
        for index, (_, labels) in enumerate(streams):
            self.singles[:, index] += np.bincount(labels, minlength=self.size)
        self.correlator.add(streams[0][0], streams[1][0], int(stops[-1]), streams[0][1], streams[1][1])

    def _dwell(self, starts: np.ndarray, stops: np.ndarray, rows: np.ndarray) -> None:
        seconds = (stops - starts) * self.source.tick_s / self.layout.pixels
        for start, row in ((s, r) for s, r in zip(seconds, rows, strict=True) if r >= 0):
            self.dwell[row * self.layout.pixels:(row + 1) * self.layout.pixels] += start


def read_marker_scan(path: str | Path, *, axis: DelayAxis = DelayAxis(), channels: tuple = (0, 1),
                     pixels: int | None = None, lines: int | None = None, markers: tuple[int, ...] | None = None,
                     chunk_records: int = CHUNK_RECORDS) -> tuple[HbtHistograms, tuple[int, int]]:
    """A marker-based scan PTU file as one :class:`HbtHistograms` of ``H * W`` rows (row-major) and its shape
    ``(H, W)`` (module docstring), in one streaming pass. ``ValueError`` for a layout the header does not state
    and the options do not give, a file without complete lines, or SYNC named as a channel."""
    path = Path(path)
    layout = layout_of(path, pixels, lines, markers)
    first, second = parse_channels(channels)
    if min(first, second) < 0:
        raise ValueError("a marker scan correlates two detector inputs; SYNC is not a photon stream here")
    scan = _ScanPass(open_ptu(path), layout, axis, (first, second))
    for events in scan.source.chunks(chunk_records):
        scan.add(events)
    if not scan.dwell.any():
        raise ValueError(f"{path}: no complete line (line start marker {layout.start} followed by line stop marker "
                         f"{layout.stop}); check the marker numbers (--markers START,STOP[,FRAME])")
    lit = scan.dwell > 0
    seconds = np.where(lit, scan.dwell, scan.dwell[lit].min())
    counts = scan.correlator.counts().astype(np.float64)
    return (HbtHistograms(counts, axis, scan.singles.astype(np.float64), seconds, None, str(path)),
            (layout.lines, layout.pixels))
