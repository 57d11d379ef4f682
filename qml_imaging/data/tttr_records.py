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

PHOTON, SYNC, MARKER = 0, 1, 2
"""Event kinds in :attr:`Events.kind`."""


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
    """Decoded events ``(N,)`` in record order: ``time`` int64 (T2: ticks of the global resolution; T3: the
    absolute sync number), ``kind`` uint8 (:data:`PHOTON`, :data:`SYNC`, :data:`MARKER`), ``channel`` int16
    (the input of a photon, the bits of a marker, 0 for SYNC), ``dtime`` int64 micro times (T3) or ``None``."""

    time: np.ndarray
    kind: np.ndarray
    channel: np.ndarray
    dtime: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.time)


def decode(words: np.ndarray, record_type: RecordType, overflows: int = 0, first: int = 0) -> tuple[Events, int]:
    """``(events, overflows after the chunk)`` of ``words`` ``(N,)`` uint32; ``overflows`` counted before it,
    ``first`` its first record's index in the file (for errors). ``ValueError`` naming the record for a word
    no layout allows (a damaged file)."""
    words = np.asarray(words, dtype=np.uint32).astype(np.int64)
    fields = _picoharp(words, record_type.t3) if record_type.family == "picoharp" else _hydraharp(words, record_type)
    overflow, increment, kind, channel, low, bad = fields
    if bad.any():
        index = int(np.argmax(bad))
        raise ValueError(f"record {first + index} ({int(words[index]):#010x}) is not a valid {record_type.name} record")
    counts = np.cumsum(np.where(overflow, increment, 0)) + overflows
    keep = ~overflow
    after = int(counts[-1]) if len(counts) else overflows
    if record_type.t3:
        sync_field, dtime = low
        events = Events(counts[keep] * record_type.wrap + sync_field[keep], kind[keep].astype(np.uint8),
                        channel[keep].astype(np.int16), dtime[keep])
    else:
        events = Events(counts[keep] * record_type.wrap + low[keep], kind[keep].astype(np.uint8),
                        channel[keep].astype(np.int16))
    return events, after


def _picoharp(words: np.ndarray, t3: bool):
    chan = words >> 28
    special = chan == 15
    if t3:
        sync_field, dtime = words & 0xFFFF, (words >> 16) & 0xFFF
        overflow = special & (dtime == 0)
        marker = special & ~overflow
        channel = np.where(marker, dtime & 0xF, chan - 1)
        bad = ~special & ((chan < 1) | (chan > 4))
        return overflow, 1, np.where(marker, MARKER, PHOTON), channel, (sync_field, np.where(marker, 0, dtime)), bad
    field = words & 0x0FFFFFFF
    overflow = special & ((field & 0xF) == 0)
    marker = special & ~overflow
    bad = ~special & (chan > 4)
    return overflow, 1, np.where(marker, MARKER, PHOTON), np.where(marker, field & 0xF, chan), field, bad


def _hydraharp(words: np.ndarray, record_type: RecordType):
    special = (words >> 31) == 1
    chan = (words >> 25) & 0x3F
    overflow = special & (chan == 63)
    marker = special & (chan >= 1) & (chan <= 15)
    sync = special & (chan == 0) & (not record_type.t3)
    bad = special & ~overflow & ~marker & ~sync
    kind = np.where(sync, SYNC, np.where(marker, MARKER, PHOTON))
    channel = np.where(sync, 0, chan)
    if record_type.t3:
        sync_field = words & 0x3FF
        increment = 1 if record_type.version == 1 else np.maximum(sync_field, 1)
        return overflow, increment, kind, channel, (sync_field, (words >> 10) & 0x7FFF), bad
    field = words & 0x1FFFFFF
    increment = 1 if record_type.version == 1 else np.maximum(field, 1)
    return overflow, increment, kind, channel, field, bad
