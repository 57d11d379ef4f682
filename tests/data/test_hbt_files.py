"""Readers of photon-correlation files, the T2 correlator against a brute-force pair count, and a
PTU T2 file written here read back into an L-M fit of known g2(0)."""

import math
import struct
import warnings

import numpy as np
import pytest
import torch

from qml_imaging.data.correlator import correlate
from qml_imaging.data.hbt_files import HbtHistograms, read_histograms, read_scan, write_npz
from qml_imaging.physics.g2_fit import fit_g2
from qml_imaging.physics.hbt import DelayAxis


# --- a minimal PicoQuant tagged-file writer (test only) ------------------------------------------
# Layout (PicoQuant "unified tag" header, as documented by PicoQuant and read by ptufile):
#   8-byte magic ("PQTTTR\0\0" for PTU, "PQHISTO\0" for PHU), 8-byte version string, then tags of
#   48 bytes each: 32-byte NUL-padded name, int32 index (-1 = not an array), uint32 type code,
#   8-byte value (int64 / float64; for strings and float arrays the byte length, the data following
#   the tag), ending with the tag "Header_End". The records follow the header.
# HydraHarp V2 T2 record (32 bits, little endian): bit 31 "special", bits 30-25 channel, bits 24-0
#   time tag in units of MeasDesc_GlobalResolution. A photon: special 0, channel = detector index.
#   An overflow: special 1, channel 63, the time-tag field = number of overflows of 2**25 units.
INT8, FLOAT8, STRING, FLOAT_ARRAY, EMPTY = 0x10000008, 0x20000008, 0x4001FFFF, 0x2001FFFF, 0xFFFF0008
HYDRAHARP2_T2 = 0x01010204
WRAP = 2**25


def tag(name, value, kind=INT8, index=-1):
    head = name.encode().ljust(32, b"\0") + struct.pack("<iI", index, kind)
    if kind == INT8:
        return head + struct.pack("<q", value)
    if kind == FLOAT8:
        return head + struct.pack("<d", value)
    if kind == EMPTY:
        return head + bytes(8)
    data = value.encode().ljust(8 * math.ceil((len(value) + 1) / 8), b"\0") if kind == STRING else value
    return head + struct.pack("<q", len(data)) + data


def write_ptu_t2(path, times_ps, channels, seconds):
    """T2 records of photons at integer ``times_ps`` (sorted) on ``channels``, with overflow records."""
    words = []
    wraps = 0
    for time, channel in zip(times_ps, channels, strict=True):
        while time // WRAP > wraps:
            step = min(time // WRAP - wraps, WRAP - 1)
            words.append((1 << 31) | (63 << 25) | step)
            wraps += step
        words.append((channel << 25) | (time - wraps * WRAP))
    header = b"PQTTTR\0\0" + b"1.0.00\0\0" + b"".join([
        tag("Measurement_Mode", 2), tag("Measurement_SubMode", 0),
        tag("TTResultFormat_TTTRRecType", HYDRAHARP2_T2), tag("TTResultFormat_BitsPerRecord", 32),
        tag("TTResult_NumberOfRecords", len(words)), tag("MeasDesc_GlobalResolution", 1e-12, FLOAT8),
        tag("MeasDesc_Resolution", 1e-12, FLOAT8), tag("MeasDesc_AcquisitionTime", round(seconds * 1000)),
        tag("Header_End", 0, EMPTY)])
    path.write_bytes(header + np.asarray(words, dtype="<u4").tobytes())


def write_phu(path, curves, resolution_s, seconds, sync_rate, input_rate):
    """A PHU file of ``curves`` (uint32 counts) with the per-curve description tags ptufile reads."""
    n, bins = len(curves), len(curves[0])
    fixed = [tag("Measurement_Mode", 0), tag("Measurement_SubMode", 1), tag("HistoResult_NumberOfCurves", n),
             tag("MeasDesc_Resolution", resolution_s, FLOAT8), tag("MeasDesc_AcquisitionTime", round(seconds * 1000))]
    per_curve = lambda offset: [t for i in range(n) for t in (  # noqa: E731
        tag("HistResDscr_DataOffset", offset + 4 * bins * i, INT8, i), tag("HistResDscr_HistogramBins", bins, INT8, i),
        tag("HistResDscr_MDescResolution", resolution_s, FLOAT8, i), tag("HistResDscr_SyncRate", sync_rate, INT8, i),
        tag("HistResDscr_InputRate", input_rate, INT8, i))]
    size = 16 + 48 * (len(fixed) + 5 * n + 1)
    header = b"PQHISTO\0" + b"1.0.00\0\0" + b"".join([*fixed, *per_curve(size), tag("Header_End", 0, EMPTY)])
    assert len(header) == size
    path.write_bytes(header + np.asarray(curves, dtype="<u4").tobytes())


# --- simulated photon streams --------------------------------------------------------------------
def antibunched_stream(rng, g2_zero, seconds=2.0, rate=2e5, lifetime_ns=20.0, delay_ns=0.0):
    """Photons of an emitter with g2(tau) = 1 - (1 - g2(0)) exp(-|tau| / t1), split 50/50 onto two detectors.

    Single photons from a renewal process (each interval an exponential excitation wait plus an
    exponential decay of mean t1; its g2 is 1 - exp(-(k + 1/t1) tau), about t1 here) give g2(0) = 0;
    mixing in an uncorrelated Poisson stream with signal share rho gives g2(0) = 1 - rho^2. Returns
    sorted integer ps times, channels and the true g2(0) of the realised signal share."""
    rho = math.sqrt(1 - g2_zero)
    signal_rate = rho * rate
    n = int(signal_rate * seconds * 1.05)
    gaps = rng.exponential(1 / signal_rate, n) + rng.exponential(lifetime_ns * 1e-9, n)
    emitter = np.cumsum(gaps)
    emitter = emitter[emitter < seconds]
    background = rng.uniform(0, seconds, rng.poisson((1 - rho) * rate * seconds))
    times = np.concatenate([emitter, background])
    channels = rng.integers(0, 2, len(times))
    times = times + np.where(channels == 1, delay_ns * 1e-9, 0.0)
    order = np.argsort(times)
    share = len(emitter) / len(times)
    return np.round(times[order] * 1e12).astype(np.int64), channels[order], 1 - share**2


def brute_force(start, stop, axis, resolution_ns=1.0, first_only=False):
    """Every (start, stop) pair in two plain loops; bin edges in whole ticks (the test axes put them on the grid)."""
    histogram = np.zeros(axis.bins)
    low = round((axis.start_ns - axis.width_ns / 2) / resolution_ns)
    width = round(axis.width_ns / resolution_ns)
    for t in start:
        for s in stop:
            delay = int(s - t)
            if delay < low:
                continue
            k = (delay - low) // width
            if k >= axis.bins:
                break
            histogram[k] += 1
            if first_only:
                break
    return histogram


@pytest.mark.parametrize("convention", ["all-pairs", "start-stop"])
def test_correlator_equals_a_brute_force_pair_count(convention):
    rng = np.random.default_rng(0)
    start = np.sort(rng.integers(0, 200_000, 150))
    stop = np.sort(rng.integers(0, 200_000, 170))
    axis = DelayAxis(bins=40, span_ns=8.0, first_ns=-3.9)  # 0.2 ns bins, ps tags, an asymmetric axis
    fast = correlate(start, stop, axis, resolution_ns=1e-3, convention=convention)
    slow = brute_force(start, stop, axis, resolution_ns=1e-3, first_only=convention == "start-stop")
    assert fast.sum() > 20 and np.array_equal(fast, slow)


def test_ptu_t2_file_gives_the_brute_force_histogram_and_the_true_g2(tmp_path):
    rng = np.random.default_rng(1)
    seconds = 2.0
    times, channels, g2_zero = antibunched_stream(rng, 0.3, seconds=seconds, delay_ns=7.0)
    path = tmp_path / "hbt.ptu"
    write_ptu_t2(path, times, channels, seconds)
    axis = DelayAxis(bins=101, span_ns=400.0, first_ns=-193.0)
    data = read_histograms(path, axis=axis)
    start, stop = times[channels == 0], times[channels == 1]
    assert data.singles.tolist() == [[len(start), len(stop)]] and data.seconds.tolist() == [seconds]
    # brute force on a slice of the stream (the full stream has 4e5 photons), then the whole histogram's total
    part = slice(0, 1000)
    head_start, head_stop = start[start < times[part][-1]], stop[stop < times[part][-1]]
    assert np.array_equal(correlate(head_start, head_stop, axis, resolution_ns=1e-3),
                          brute_force(head_start, head_stop, axis, resolution_ns=1e-3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_g2(torch.from_numpy(data.counts), data.axis, baseline=data.baseline())
    sigma = fit.uncertainty.item()
    assert abs(fit.g2_zero.item() - g2_zero) < 2 * sigma and sigma < 0.1
    assert abs(fit.zero_delay_ns.item() - 7.0) < max(3 * fit.zero_delay_uncertainty.item(), 1.0)


def test_phu_curves_with_rates_and_time(tmp_path):
    curves = np.arange(12, dtype=np.uint32).reshape(2, 6)
    write_phu(tmp_path / "h.phu", curves, 4e-12 * 256, 10.0, 1000, 2000)
    data = read_histograms(tmp_path / "h.phu")
    assert data.counts.tolist() == curves.tolist() and data.axis.width_ns == pytest.approx(1.024)
    assert data.axis.start_ns == 0.0 and data.singles.tolist() == [[1e4, 2e4]] * 2
    assert data.baseline()[0].item() == pytest.approx(1e4 * 2e4 * 1.024e-9 / 10.0)


def test_text_files_state_their_unit_and_metadata(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("# singles_1: 1000\n# singles_2: 3000\n# seconds: 2\ndelay (ps),counts\n"
                    + "".join(f"{d},{c}\n" for d, c in zip(range(-2000, 2001, 1000), [4, 5, 1, 5, 4], strict=True)))
    data = read_histograms(path)
    assert data.axis.centres().tolist() == [-2.0, -1.0, 0.0, 1.0, 2.0]
    assert data.baseline().item() == pytest.approx(1000 * 3000 * 1e-9 / 2)
    bare = tmp_path / "bare.txt"
    bare.write_text("0 1\n1 2\n2 3\n")
    with pytest.raises(ValueError, match="delay unit is not stated"):
        read_histograms(bare)
    assert read_histograms(bare, delay_unit="ns").counts.tolist() == [[1.0, 2.0, 3.0]]
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("delay_ns,counts\n0,1\n1,2\n3,3\n")
    with pytest.raises(ValueError, match="equally spaced"):
        read_histograms(ragged)
    with pytest.raises(ValueError, match="unknown histogram file ending"):
        (tmp_path / "x.xyz").write_text("")
        read_histograms(tmp_path / "x.xyz")


def test_options_for_another_format_are_refused_not_ignored(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("delay_ns,counts\n-1,4\n0,1\n1,4\n")
    with pytest.raises(ValueError, match="h.csv: a delay axis .* is for bare NPY counts and PTU time tags"):
        read_histograms(path, axis=DelayAxis(bins=3, span_ns=3.0, first_ns=-1.0))
    for option in ({"channels": (0, 2)}, {"convention": "start-stop"}):
        with pytest.raises(ValueError, match="h.csv: channels and convention .* choose how PTU time tags"):
            read_histograms(path, **option)
    assert read_histograms(path).counts.tolist() == [[4.0, 1.0, 4.0]]


def test_npz_round_trip_and_npy_tables(tmp_path):
    axis = DelayAxis(bins=7, span_ns=14.0, first_ns=-1.0)
    original = HbtHistograms(np.ones((3, 7)), axis, np.full((3, 2), 10.0), np.array([1.0, 2.0, 3.0]), 2.5,
                             g2_true=np.array([0.1, 0.2, 0.3]))
    back = read_histograms(write_npz(tmp_path / "s.npz", original))
    assert np.array_equal(back.counts, original.counts) and back.axis == axis and back.zero_delay_ns == 2.5
    assert back.seconds.tolist() == [1.0, 2.0, 3.0] and back.g2_true.tolist() == [0.1, 0.2, 0.3]
    np.save(tmp_path / "t.npy", np.column_stack([np.arange(5) * 1000.0, np.ones(5)]))
    with pytest.raises(ValueError, match="pass delay_unit"):
        read_histograms(tmp_path / "t.npy")
    assert read_histograms(tmp_path / "t.npy", delay_unit="ps").axis.width_ns == pytest.approx(1.0)


def test_scan_folder_of_pixel_files_is_read_row_major(tmp_path):
    axis = DelayAxis(bins=7, span_ns=14.0, first_ns=-6.0)
    for r in range(2):
        for c in range(3):
            write_npz(tmp_path / f"pixel_{r}_{c}.npz", HbtHistograms(np.full(7, 10 * r + c), axis, [[5, 5]], 1.0))
    data, shape = read_scan(tmp_path)
    assert shape == (2, 3) and data.counts[:, 0].tolist() == [0, 1, 2, 10, 11, 12]
    (tmp_path / "pixel_1_2.npz").unlink()
    with pytest.raises(ValueError, match="1 of 6 pixels have no file"):
        read_scan(tmp_path)


def test_reader_table_has_one_entry_per_ending_and_checks_the_leading_bytes(tmp_path):
    from qml_imaging.data.hbt_files import ENDINGS, READERS

    assert len(ENDINGS) == len(set(ENDINGS)) and all(r.endings and r.fix for r in READERS)
    write_phu(tmp_path / "h.phu", np.ones((1, 4), dtype=np.uint32), 1e-9, 1.0, 10, 10)
    (tmp_path / "h.ptu").write_bytes((tmp_path / "h.phu").read_bytes())
    with pytest.raises(ValueError, match=r"h.ptu: not a PicoQuant PTU file .* looks like a PicoQuant PHU file: "
                                         r"give it the ending .phu"):
        read_histograms(tmp_path / "h.ptu")
    (tmp_path / "e.npz").write_bytes(b"")
    with pytest.raises(ValueError, match="e.npz: the file is empty"):
        read_histograms(tmp_path / "e.npz")
