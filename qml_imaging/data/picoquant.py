"""PicoQuant files: PHU histograms and PTU T2/T3 time tags streamed into a histogram.

Both headers are read by :mod:`qml_imaging.data.pq_header` first, with every length checked against the
file; PTU records are read in chunks and decoded by their meaning (:mod:`qml_imaging.data.tttr_records`).
Formats as described in :mod:`qml_imaging.data.hbt_files`. (ptufile, which reads these files too,
decodes SYNC events of HydraHarp-family T2 records as input 0 and fails on damaged headers with
internal errors; hence this small reader of the public layout.)
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np

from qml_imaging.data.catalog import CONVENTIONS
from qml_imaging.data.histograms import HbtHistograms
from qml_imaging.data.pq_header import FIX, number, read_header
from qml_imaging.data.tag_streams import CHUNK_RECORDS, TagSource, correlate_source
from qml_imaging.data.tttr_records import RECORD_TYPES, Events, decode
from qml_imaging.physics.delay_axis import DelayAxis

PTU_MAGIC, PHU_MAGIC = b"PQTTTR\0\0", b"PQHISTO\0"
MAX_BINS = 1 << 26
"""More bins than this in one PHU curve is a damaged header."""


def read_phu(path: Path) -> HbtHistograms:
    """A PHU file's curves as rows ``(B, K)`` on the axis ``k * resolution`` (ns), with singles and time when the
    tags state them (see :mod:`qml_imaging.data.hbt_files`). Each curve's offset and length are checked against
    the file before it is read. ``ValueError`` for a damaged file, curves of different lengths or resolutions."""
    tags, _ = read_header(path, PHU_MAGIC)
    offsets, lengths = tags.get("HistResDscr_DataOffset"), tags.get("HistResDscr_HistogramBins")
    if not isinstance(offsets, list) or not isinstance(lengths, list) or len(offsets) != len(lengths):
        raise ValueError(f"{path}: the header does not locate its curves (HistResDscr_DataOffset, "
                         f"HistResDscr_HistogramBins); {FIX}")
    size = path.stat().st_size
    curves = []
    with path.open("rb") as handle:
        for index, (offset, bins) in enumerate(zip(offsets, lengths, strict=True)):
            if not isinstance(offset, int) or not isinstance(bins, int) or not 0 < bins <= MAX_BINS \
                    or offset < 0 or offset + 4 * bins > size:
                raise ValueError(f"{path}: curve {index} claims {bins} bins at byte {offset}, beyond the file's "
                                 f"{size} bytes; the file is truncated or damaged: {FIX}")
            handle.seek(offset)
            curves.append(np.frombuffer(handle.read(4 * bins), dtype="<u4").astype(np.float64))
    if not curves or len({len(c) for c in curves}) != 1:
        raise ValueError(f"{path}: the PHU file holds {len(curves)} curves of lengths {sorted({len(c) for c in curves})}; "
                         f"expected curves of one length")
    resolutions = tags.get("HistResDscr_MDescResolution") or [tags.get("MeasDesc_Resolution", 0.0)] * len(curves)
    resolution = float(resolutions[0])
    if resolution <= 0 or any(abs(float(r) - resolution) > 1e-6 * resolution for r in resolutions):
        raise ValueError(f"{path}: the PHU curves need one positive bin resolution, got {resolutions}")
    width_ns = resolution * 1e9
    axis = DelayAxis(bins=len(curves[0]), span_ns=width_ns * len(curves[0]), first_ns=0.0)
    seconds = singles = None
    milliseconds = float(tags.get("MeasDesc_AcquisitionTime", 0) or 0)
    if milliseconds > 0:
        seconds = milliseconds * 1e-3
        sync, rate = tags.get("HistResDscr_SyncRate"), tags.get("HistResDscr_InputRate")
        if sync is not None and rate is not None:
            singles = np.column_stack([np.asarray(sync, dtype=np.float64), np.asarray(rate, dtype=np.float64)]) * seconds
    return HbtHistograms(np.stack(curves), axis, singles, seconds, None, str(path))


def open_ptu(path: str | Path) -> TagSource:
    """A PTU file opened for streaming: its header read and checked (record type, record count against the
    file's size, resolutions), its records read and decoded chunk by chunk by meaning
    (:mod:`qml_imaging.data.tttr_records`). ``ValueError`` naming the file for an unknown record type,
    a truncated file or a damaged header."""
    path = Path(path)
    tags, offset = read_header(path, PTU_MAGIC)
    code = int(number(path, tags, "TTResultFormat_TTTRRecType"))
    if code not in RECORD_TYPES:
        known = ", ".join(t.name for t in RECORD_TYPES.values())
        raise ValueError(f"{path}: record type {code:#010x} is not one this reader knows ({known})")
    record_type = RECORD_TYPES[code]
    if int(number(path, tags, "TTResultFormat_BitsPerRecord", 32)) != 32:
        raise ValueError(f"{path}: {record_type.name} records must be 32 bits, the header says "
                         f"{tags['TTResultFormat_BitsPerRecord']}; {FIX}")
    records = int(number(path, tags, "TTResult_NumberOfRecords"))
    held = (path.stat().st_size - offset) // 4
    if records > held or records <= 0:
        raise ValueError(f"{path}: the header promises {records} records but the file holds {held}; the file is "
                         f"truncated or damaged: {FIX}")
    resolution = number(path, tags, "MeasDesc_GlobalResolution")
    tick = number(path, tags, "MeasDesc_Resolution", resolution) if record_type.t3 else resolution
    sync_rate = number(path, tags, "TTResult_SyncRate", 0.0)
    for name, value in (("MeasDesc_GlobalResolution", resolution), ("MeasDesc_Resolution", tick)):
        if not math.isfinite(value) or not 0 < value < 1:
            raise ValueError(f"{path}: the header's {name} is {value} s; expected a positive time below 1 s; {FIX}")
    period = resolution if record_type.t3 else (1.0 / sync_rate if sync_rate > 0 else None)
    milliseconds = number(path, tags, "MeasDesc_AcquisitionTime", 0.0)
    seconds = milliseconds * 1e-3 if milliseconds > 0 else None
    return TagSource(str(path), record_type.name, record_type.t3, tick, period, seconds,
                     partial(_chunks, path, offset, records, record_type))


def _chunks(path: Path, offset: int, records: int, record_type, size: int) -> Iterator[Events]:
    """Records read ``size`` at a time with plain reads (not a memory map, whose pages would stay resident and grow
    with the file), decoded with the overflow count carried across chunks."""
    overflows = 0
    with path.open("rb") as handle:
        handle.seek(offset)
        for first in range(0, records, size):
            words = np.frombuffer(handle.read(4 * min(size, records - first)), dtype="<u4")
            try:
                events, overflows = decode(words, record_type, overflows, first)
            except ValueError as error:
                raise ValueError(f"{path}: {error}; the file is damaged: {FIX}") from None
            yield events


def read_ptu(path: str | Path, *, axis: DelayAxis = DelayAxis(), channels: tuple = (0, 1),
             convention: str = "all-pairs", gate_ns: tuple[float, float] | None = None,
             chunk_records: int = CHUNK_RECORDS) -> HbtHistograms:
    """A PTU file's events on ``channels=(a, b)`` (inputs by number, ``"sync"`` for SYNC events) correlated into
    one histogram of ``t_b - t_a`` on ``axis``, streaming ``chunk_records`` records at a time (see
    :func:`~qml_imaging.data.tag_streams.correlate_source`; T2 and T3 files of every record type in
    :data:`~qml_imaging.data.tttr_records.RECORD_TYPES`). ``period_ns`` of the result: the T3 sync period, or
    the T2 header's sync rate. ``ValueError`` naming the file for a damaged file or an empty channel."""
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    return correlate_source(open_ptu(path), axis, channels, convention=convention, gate_ns=gate_ns,
                            chunk_records=chunk_records)
