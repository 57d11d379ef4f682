"""PTU records of every supported type, written here by hand, read back by meaning: SYNC apart from input 0,
markers and overflows apart from photons; the streaming correlator equal to the whole-stream one for any chunking."""

import numpy as np
import pytest

from qml_imaging.data.correlator import StreamingCorrelator, correlate
from qml_imaging.data.hbt_files import read_histograms
from qml_imaging.data.picoquant import open_ptu, read_ptu
from qml_imaging.data.tttr_records import MARKER, OVERFLOW, PHOTON, SYNC
from qml_imaging.physics.hbt import DelayAxis
from tests.data.ptu_writer import CODES, layout, write_ptu

T2_TYPES = [name for name in CODES if name.endswith("T2")]
T3_TYPES = [name for name in CODES if name.endswith("T3")]


def events_for(record_type, rng, n=3000):
    """Sorted events over several overflow periods: photons on inputs 0 and 1, SYNC events where the type
    has them (HydraHarp-family T2), markers; times spread so that some gaps span many overflows."""
    wrap, _, t3 = layout(record_type)
    time = np.sort(rng.integers(0, 40 * wrap, n))
    time[n // 2:] += 3000 * wrap  # a long quiet stretch: overflow records that carry counts
    kinds = [PHOTON, PHOTON, MARKER] + ([SYNC] if record_type.endswith("T2") and "PicoHarp" not in record_type else [])
    kind = np.array(kinds)[rng.integers(0, len(kinds), n)]
    channel = np.where(kind == PHOTON, rng.integers(0, 2, n), np.where(kind == MARKER, rng.integers(1, 8, n), 0))
    if record_type == "PicoHarp T2":
        time = np.where(kind == MARKER, (time & ~0xF) | channel, time)  # its markers carry their bits in the time
        order = np.argsort(time, kind="stable")
        time, kind, channel = time[order], kind[order], channel[order]
    dtime = np.where(kind == PHOTON, rng.integers(0, 4000 if "PicoHarp" in record_type else 30000, n), 0) if t3 else None
    return time, kind, channel, dtime


@pytest.mark.parametrize("record_type", list(CODES))
def test_every_record_type_is_decoded_by_meaning(tmp_path, record_type):
    rng = np.random.default_rng(CODES[record_type] % 1000)
    time, kind, channel, dtime = events_for(record_type, rng)
    path = tmp_path / "f.ptu"
    records = write_ptu(path, record_type, time, kind, channel, dtime, resolution_s=1e-8 if dtime is not None else 1e-12,
                        micro_s=1e-12, seconds=1.0)
    source = open_ptu(path)
    assert source.name == record_type and source.t3 == (dtime is not None)
    chunks = list(source.chunks(97))  # chunk borders fall inside runs of overflow records
    assert sum(len(c) for c in chunks) == records > len(time)
    events = [c.kind != OVERFLOW for c in chunks]
    decoded = [np.concatenate([getattr(c, key)[e] for c, e in zip(chunks, events)]) for key in ("time", "kind", "channel")]
    assert np.array_equal(decoded[0], time) and np.array_equal(decoded[1], kind)
    assert np.array_equal(decoded[2], channel)
    if dtime is not None:
        assert np.array_equal(np.concatenate([c.dtime[e] for c, e in zip(chunks, events)]), dtime)


@pytest.mark.parametrize("record_type", T2_TYPES + T3_TYPES)
def test_sync_never_joins_input_0_and_chunked_reading_counts_what_the_whole_stream_does(tmp_path, record_type):
    rng = np.random.default_rng(7)
    t3 = record_type.endswith("T3")
    n, tick_ns = 20000, 1e-3
    time = np.sort(rng.integers(0, 2_000_000_000, n)) if not t3 else np.sort(rng.integers(0, 200_000, n))
    kind = np.where(rng.random(n) < 0.3, SYNC if not t3 and "PicoHarp" not in record_type else MARKER, PHOTON)
    channel = np.where(kind == PHOTON, rng.integers(0, 2, n), np.where(kind == MARKER, 1, 0))
    dtime = np.where(kind == PHOTON, rng.integers(0, 4000 if "PicoHarp" in record_type else 10000, n), 0) if t3 else None
    if t3:  # records in order of arrival
        order = np.argsort(time * 10000 + dtime, kind="stable")
        time, kind, channel, dtime = time[order], kind[order], channel[order], dtime[order]
    path = tmp_path / "f.ptu"
    write_ptu(path, record_type, time, kind, channel, dtime, resolution_s=1e-8 if t3 else 1e-12, micro_s=1e-12,
              seconds=2.0)
    axis = DelayAxis(bins=61, span_ns=122.0, first_ns=-60.0)
    absolute = time * 10000 + dtime if t3 else time
    streams = [absolute[(kind == PHOTON) & (channel == c)] for c in (0, 1)]
    whole = correlate(*streams, axis, resolution_ns=tick_ns)
    for chunk in (13, 1000, 1 << 20):
        data = read_ptu(path, axis=axis, chunk_records=chunk)
        assert np.array_equal(data.counts[0], whole) and data.singles.tolist() == [[len(s) for s in streams]]
    assert whole.sum() > 0
    if not t3 and "PicoHarp" not in record_type:
        syncs = np.sort(time[kind == SYNC])
        both = read_ptu(path, axis=axis, channels=("sync", 1), chunk_records=101)
        assert np.array_equal(both.counts[0], correlate(syncs, streams[1], axis, resolution_ns=tick_ns))


def test_an_empty_channel_is_refused_listing_what_the_file_holds(tmp_path):
    time = np.arange(0, 100_000, 1000)
    kind = np.where(np.arange(100) % 2, SYNC, PHOTON)
    write_ptu(tmp_path / "f.ptu", "MultiHarp T2", time, kind, np.zeros(100, dtype=int), seconds=1.0)
    with pytest.raises(ValueError, match=r"f.ptu: no events on input 1; the file holds sync \(50 SYNC events\), "
                                         r"input 0 \(50 photons\)"):
        read_histograms(tmp_path / "f.ptu")
    assert read_histograms(tmp_path / "f.ptu", channels=("sync", 0)).singles.tolist() == [[50, 50]]
    with pytest.raises(ValueError, match="in a T3 file SYNC is the time base"):
        write_ptu(tmp_path / "g.ptu", "MultiHarp T3", time, np.zeros(100, dtype=int), np.arange(100) % 2,
                  np.ones(100, dtype=int), resolution_s=1e-8)
        read_ptu(tmp_path / "g.ptu", channels=("sync", 1))


def test_streaming_correlator_equals_the_whole_streams_for_any_chunking():
    rng = np.random.default_rng(3)
    start, stop = np.sort(rng.integers(0, 300_000, 4000)), np.sort(rng.integers(0, 300_000, 4000))
    axis = DelayAxis(bins=50, span_ns=10.0, first_ns=-4.0)
    for convention in ("all-pairs", "start-stop"):
        whole = correlate(start, stop, axis, resolution_ns=1e-3, convention=convention)
        correlator = StreamingCorrelator(axis, resolution_ns=1e-3, convention=convention)
        edges = np.sort(rng.integers(0, 300_000, 40))
        for low, high in zip(np.concatenate([[0], edges]), np.concatenate([edges, [300_001]]), strict=True):
            correlator.add(start[(start >= low) & (start < high)], stop[(stop >= low) & (stop < high)], int(high))
        assert np.array_equal(correlator.counts()[0], whole) and whole.sum() > 100
    with pytest.raises(ValueError, match="go back"):
        correlator.add(start[:0], stop[:0], 5)
