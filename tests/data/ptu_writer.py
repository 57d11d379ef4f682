"""A PicoQuant PTU writer for tests and benchmarks (the package only reads PTU files).

Written from PicoQuant's public record layouts (the ``PTU_Demo`` readers), independently of the
package's decoder: a tag header (8-byte magic, 8-byte version, 48-byte tags, ``Header_End``) and 32-bit
records. Events are given as sorted absolute times (T2: ticks; T3: sync numbers, with micro times)
with a kind (photon, SYNC, marker) and a channel (input number or marker bits); overflow records are
inserted where the time field wraps, as many as each record type needs.
"""

import math
import struct
from pathlib import Path

import numpy as np

INT8, FLOAT8, STRING, EMPTY = 0x10000008, 0x20000008, 0x4001FFFF, 0xFFFF0008
PHOTON, SYNC, MARKER = 0, 1, 2
CODES = {"PicoHarp T2": 0x00010203, "PicoHarp T3": 0x00010303, "HydraHarp v1 T2": 0x00010204,
         "HydraHarp v1 T3": 0x00010304, "HydraHarp v2 T2": 0x01010204, "HydraHarp v2 T3": 0x01010304,
         "TimeHarp 260 N T2": 0x00010205, "TimeHarp 260 N T3": 0x00010305, "TimeHarp 260 P T2": 0x00010206,
         "TimeHarp 260 P T3": 0x00010306, "MultiHarp T2": 0x00010207, "MultiHarp T3": 0x00010307}


def tag(name, value, kind=INT8, index=-1):
    head = name.encode().ljust(32, b"\0") + struct.pack("<iI", index, kind)
    if kind == INT8:
        return head + struct.pack("<q", int(value))
    if kind == FLOAT8:
        return head + struct.pack("<d", value)
    if kind == EMPTY:
        return head + bytes(8)
    data = value.encode().ljust(8 * math.ceil((len(value) + 1) / 8), b"\0")
    return head + struct.pack("<q", len(data)) + data


def layout(record_type):
    """``(wrap, largest overflow count one record carries, t3)`` of a record type name."""
    t3 = record_type.endswith("T3")
    if record_type.startswith("PicoHarp"):
        return (65536, 1, True) if t3 else (210698240, 1, False)
    v1 = record_type.startswith("HydraHarp v1")
    if t3:
        return 1024, 1 if v1 else 1023, True
    return (33552000, 1, False) if v1 else (2**25, 2**25 - 1, False)


def words_of(record_type, time, kind, channel, dtime=None, start_epoch=0):
    """The 32-bit records (uint32) of sorted events, with overflow records inserted (``start_epoch``: overflows
    already written, for a file written in blocks)."""
    wrap, most, t3 = layout(record_type)
    time, kind, channel = (np.asarray(x, dtype=np.int64) for x in (time, kind, channel))
    dtime = np.zeros_like(time) if dtime is None else np.asarray(dtime, dtype=np.int64)
    epoch = time // wrap
    jumps = np.diff(np.concatenate([[start_epoch], epoch]))
    pieces = -(-jumps // most)
    events = _event_words(record_type, time - epoch * wrap, kind, channel, dtime, t3)
    counts = np.full(int(pieces.sum()), most, dtype=np.int64)
    ends = np.cumsum(pieces)[pieces > 0] - 1
    counts[ends] = jumps[pieces > 0] - (pieces[pieces > 0] - 1) * most
    overflows = _overflow_words(record_type, counts, t3)
    out = np.empty(len(events) + len(overflows), dtype=np.int64)
    at = np.arange(len(events)) + np.cumsum(pieces)
    mask = np.zeros(len(out), dtype=bool)
    mask[at] = True
    out[at], out[~mask] = events, overflows
    return out.astype("<u4")


def _event_words(record_type, field, kind, channel, dtime, t3):
    if record_type.startswith("PicoHarp"):
        if t3:
            return np.where(kind == MARKER, (15 << 28) | (channel << 16) | field,
                            ((channel + 1) << 28) | (dtime << 16) | field)
        return np.where(kind == MARKER, (15 << 28) | (field & ~0xF) | channel, (channel << 28) | field)
    low = (dtime << 10) | field if t3 else field
    special = (1 << 31) | (np.where(kind == SYNC, 0, channel) << 25) | (field if t3 else low)
    return np.where(kind == PHOTON, (channel << 25) | low, special)


def _overflow_words(record_type, counts, t3):
    if record_type.startswith("PicoHarp"):
        return np.full(len(counts), 15 << 28, dtype=np.int64)
    return (1 << 31) | (63 << 25) | counts


def header(record_type, records, *, resolution_s=1e-12, micro_s=None, seconds=None, sync_rate=0, extra_tags=()):
    """The tag header of a PTU file of ``records`` records."""
    t3 = record_type.endswith("T3")
    tags = [tag("Measurement_Mode", 3 if t3 else 2), tag("Measurement_SubMode", 0),
            tag("TTResultFormat_TTTRRecType", CODES[record_type]), tag("TTResultFormat_BitsPerRecord", 32),
            tag("TTResult_NumberOfRecords", records), tag("MeasDesc_GlobalResolution", resolution_s, FLOAT8),
            tag("MeasDesc_Resolution", micro_s or resolution_s, FLOAT8), tag("TTResult_SyncRate", sync_rate),
            *extra_tags]
    if seconds is not None:
        tags.append(tag("MeasDesc_AcquisitionTime", round(seconds * 1000)))
    return b"PQTTTR\0\0" + b"1.0.00\0\0" + b"".join([*tags, tag("Header_End", 0, EMPTY)])


def write_ptu(path, record_type, time, kind, channel, dtime=None, **options):
    """A PTU file of ``record_type`` holding the events; options of :func:`header` (``resolution_s``: the T2 tag
    unit or the T3 sync period; ``micro_s``: the T3 micro-time bin). Returns the number of records."""
    words = words_of(record_type, time, kind, channel, dtime)
    Path(path).write_bytes(header(record_type, len(words), **options) + words.tobytes())
    return len(words)


def write_ptu_blocks(path, record_type, blocks, **options):
    """A PTU file written block by block: ``blocks`` yields ``(time, kind, channel)`` of consecutive sorted events,
    so a file of any length is written in bounded memory. Returns the number of records."""
    wrap = layout(record_type)[0]
    size = len(header(record_type, 0, **options))
    records, epoch = 0, 0
    with Path(path).open("wb") as handle:
        handle.write(bytes(size))
        for time, kind, channel in blocks:
            words = words_of(record_type, time, kind, channel, start_epoch=epoch)
            handle.write(words.tobytes())
            records, epoch = records + len(words), int(time[-1]) // wrap
        handle.seek(0)
        handle.write(header(record_type, records, **options))
    return records
