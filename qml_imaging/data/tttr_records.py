"""PicoQuant T2/T3 records decoded by their meaning: detector photons, SYNC events, markers, overflows.

Record layouts (32-bit little-endian words; PicoQuant's public file-format demos, ``PTU_Demo``):

- **PicoHarp T2** (``0x00010203``): bits 31-28 channel, 27-0 time tag. Channel 15 is special: marker
  bits in the low 4 bits, or an overflow of 210,698,240 ticks when they are 0. Channels 0-4 are
  inputs (channel 0 is the PicoHarp's SYNC input working as a detector in T2 mode; there are no
  separate SYNC events).
- **PicoHarp T3** (``0x00010303``): bits 31-28 channel, 27-16 micro time, 15-0 sync count. Channel 15
  is special: an overflow of 65,536 syncs when the micro time is 0, else markers (its low 4 bits);
  channels 1-4 are the routed inputs 0-3.
- **HydraHarp v1, v2, TimeHarp 260 N/P, MultiHarp** (generic) **T2**: bit 31 special, 30-25 channel,
  24-0 time tag. Special channel 63: overflow (v1: one of 33,552,000 ticks; v2 and later: the time-tag
  field counts overflows of 2**25 ticks, 0 meaning 1); special channel 0: a **SYNC** event; special
  channels 1-15: markers (the channel field is the marker bits). Not special: a photon on input
  ``channel`` (0-based).
- **The same devices in T3**: bit 31 special, 30-25 channel, 24-10 micro time, 9-0 sync count. Special
  channel 63: overflow of 1,024 syncs (v1: one; v2 and later: the sync field counts them, 0 meaning 1);
  special 1-15: markers; not special: a photon on input ``channel``. SYNC is the time base, not an event.

:func:`decode` turns a chunk of words into :class:`Events` and carries the overflow count from one chunk
to the next, so a file is read in pieces with the same result as at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PHOTON, SYNC, MARKER, OVERFLOW = 0, 1, 2, 3
"""Event kinds in :attr:`Events.kind` (an overflow record stays in place, timed at the start of its period, so
that a chunk is decoded without copying it)."""


@dataclass(frozen=True)
class RecordType:
    """One PicoQuant record type: ``family`` ``picoharp`` or ``hydraharp``, ``version`` (HydraHarp v1 or v2+)."""

    name: str
    code: int
    t3: bool
    family: str
    version: int = 2

    @property
    def wrap(self) -> int:
        """Ticks (T2) or syncs (T3) per overflow."""
        if self.family == "picoharp":
            return 65_536 if self.t3 else 210_698_240
        if self.t3:
            return 1024
        return 33_552_000 if self.version == 1 else 2**25


RECORD_TYPES = {t.code: t for t in (
    RecordType("PicoHarp T2", 0x00010203, False, "picoharp"), RecordType("PicoHarp T3", 0x00010303, True, "picoharp"),
    RecordType("HydraHarp v1 T2", 0x00010204, False, "hydraharp", 1),
    RecordType("HydraHarp v1 T3", 0x00010304, True, "hydraharp", 1),
    RecordType("HydraHarp v2 T2", 0x01010204, False, "hydraharp"), RecordType("HydraHarp v2 T3", 0x01010304, True, "hydraharp"),
    RecordType("TimeHarp 260 N T2", 0x00010205, False, "hydraharp"),
    RecordType("TimeHarp 260 N T3", 0x00010305, True, "hydraharp"),
    RecordType("TimeHarp 260 P T2", 0x00010206, False, "hydraharp"),
    RecordType("TimeHarp 260 P T3", 0x00010306, True, "hydraharp"),
    RecordType("MultiHarp T2", 0x00010207, False, "hydraharp"), RecordType("MultiHarp T3", 0x00010307, True, "hydraharp"),
)}
"""Every supported record type by its ``TTResultFormat_TTTRRecType`` code."""


@dataclass(frozen=True)
class Events:
    """Decoded records ``(N,)`` in order: ``time`` int64 (T2: ticks of the global resolution; T3: the absolute
    sync number), ``kind`` uint8 (:data:`PHOTON`, :data:`SYNC`, :data:`MARKER`, :data:`OVERFLOW`), ``channel``
    int16 (the input of a photon, the bits of a marker, 0 otherwise), ``dtime`` int64 micro times (T3; 0 for
    other kinds) or ``None``."""

    time: np.ndarray
    kind: np.ndarray
    channel: np.ndarray
    dtime: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.time)


@dataclass(frozen=True)
class _Fields:
    """One chunk split by meaning: ``special`` indices of the special records and, for them, which are overflows
    (``overflow``, with ``increment``), SYNC events (``sync``) and markers (``marker``, with their ``bits``);
    per record the ``channel`` (photon input), the time-tag ``field`` (T2 ticks or T3 sync count within the
    current overflow) and ``dtime`` (T3); ``bad``: whether any record fits no layout, and the first one."""

    special: np.ndarray
    overflow: np.ndarray
    increment: np.ndarray | int
    sync: np.ndarray
    marker: np.ndarray
    bits: np.ndarray
    channel: np.ndarray
    field: np.ndarray
    dtime: np.ndarray | None
    bad: np.ndarray


def decode(words: np.ndarray, record_type: RecordType, overflows: int = 0, first: int = 0) -> tuple[Events, int]:
    """``(events, overflows after the chunk)`` of ``words`` ``(N,)`` uint32; ``overflows`` counted before it,
    ``first`` its first record's index in the file (for errors). ``ValueError`` naming the record for a word
    no layout allows (a damaged file). Special records are handled by index, so a chunk of photons costs a
    few passes over its words."""
    words = np.asarray(words, dtype=np.uint32)
    split = _picoharp(words, record_type.t3) if record_type.family == "picoharp" else _hydraharp(words, record_type)
    if split.bad.any():
        index = int(np.flatnonzero(split.bad)[0])
        raise ValueError(f"record {first + index} ({int(words[index]):#010x}) is not a valid {record_type.name} record")
    places = split.special[split.overflow]
    steps = np.concatenate([[overflows], overflows + np.cumsum(split.increment * np.ones(len(places), dtype=np.int64))])
    count = np.repeat(steps, np.diff(np.concatenate([[0], places, [len(words)]])))  # an overflow opens its period
    kind = np.zeros(len(words), dtype=np.uint8)
    kind[split.special[split.sync]] = SYNC
    kind[split.special[split.marker]] = MARKER
    kind[places] = OVERFLOW
    channel = split.channel.astype(np.int16)
    channel[split.special[split.sync]] = 0
    channel[split.special[split.marker]] = split.bits
    channel[places] = 0
    field = split.field
    field[places] = 0
    time = count * record_type.wrap + field
    dtime = split.dtime
    if dtime is not None:
        dtime = dtime.astype(np.int64)
        dtime[split.special] = 0
    return Events(time, kind, channel, dtime), int(steps[-1])


def _picoharp(words: np.ndarray, t3: bool) -> _Fields:
    chan = words >> 28
    special = np.flatnonzero(chan == 15)
    if t3:
        dtime = (words >> 16) & 0xFFF
        marks = dtime[special]
        bad = (chan != 15) & ((chan < 1) | (chan > 4))
        return _Fields(special, marks == 0, 1, np.zeros(len(special), bool), marks != 0, (marks & 0xF)[marks != 0],
                       chan.astype(np.int16) - 1, (words & 0xFFFF).astype(np.int64), dtime, bad)
    field = words & 0x0FFFFFFF
    marks = field[special] & 0xF
    bad = (chan != 15) & (chan > 4)
    return _Fields(special, marks == 0, 1, np.zeros(len(special), bool), marks != 0, marks[marks != 0],
                   chan.astype(np.int16), field.astype(np.int64), None, bad)


def _hydraharp(words: np.ndarray, record_type: RecordType) -> _Fields:
    special = np.flatnonzero(words >> 31)
    chan = (words >> 25) & 0x3F
    kinds = chan[special]
    overflow = kinds == 63
    marker = (kinds >= 1) & (kinds <= 15)
    sync = (kinds == 0) & (not record_type.t3)
    bad = np.zeros(len(words), dtype=bool)
    bad[special[~(overflow | marker | sync)]] = True
    low = words & (0x3FF if record_type.t3 else 0x1FFFFFF)
    increment = 1 if record_type.version == 1 else np.maximum(low[special[overflow]], 1).astype(np.int64)
    dtime = (words >> 10) & 0x7FFF if record_type.t3 else None
    return _Fields(special, overflow, increment, sync, marker, kinds[marker], chan, low.astype(np.int64), dtime, bad)
