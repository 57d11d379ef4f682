"""A scan recorded as one PTU file with line and frame markers: photons to pixels, per-pixel histograms equal to
correlating each pixel's photons alone, singles and dwell per pixel, and the g2 scan command on the file."""

import numpy as np
import pytest

from qml_imaging.cli import main
from qml_imaging.data.correlator import correlate
from qml_imaging.data.marker_scan import read_marker_scan
from qml_imaging.physics.delay_axis import DelayAxis
from tests.data.photon_sources import marker_scan_events
from tests.data.ptu_writer import MARKER, PHOTON, tag, write_ptu

IMAGING_TAGS = (tag("ImgHdr_PixX", 4), tag("ImgHdr_PixY", 3), tag("ImgHdr_LineStart", 1), tag("ImgHdr_LineStop", 2),
                tag("ImgHdr_Frame", 3))


def test_marker_scan_gives_each_pixel_the_histogram_of_its_own_photons(tmp_path):
    rng = np.random.default_rng(4)
    rates = rng.uniform(2e4, 8e4, (1, 3, 4))
    time, kind, channel = marker_scan_events(rng, rates, dwell_s=5e-3, background_cps=1e6, frames=2)
    write_ptu(tmp_path / "scan.ptu", "MultiHarp T2", time, kind, channel, seconds=1.0, extra_tags=IMAGING_TAGS)
    axis = DelayAxis(bins=41, span_ns=82.0, first_ns=-40.0)
    data, shape = read_marker_scan(tmp_path / "scan.ptu", axis=axis, chunk_records=501)
    assert shape == (3, 4) and data.counts.shape == (12, 41)
    # the reference: each pixel's photons found with the known scan timing, correlated alone
    line_s, retrace_s = 4 * 5e-3, 1e-3
    photon = kind == PHOTON
    seconds = time[photon] * 1e-12
    line = (seconds // (line_s + retrace_s)).astype(int)
    column = ((seconds - line * (line_s + retrace_s)) // 5e-3).astype(int)
    pixel = np.where(column < 4, (line % 3) * 4 + column, -1)
    for p in range(12):
        streams = [time[photon][(pixel == p) & (channel[photon] == c)] for c in (0, 1)]
        assert data.singles[p].tolist() == [len(s) for s in streams]
        assert np.array_equal(data.counts[p], correlate(*streams, axis, resolution_ns=1e-3))
    assert data.counts.sum() > 1000 and np.allclose(data.seconds, 2 * 5e-3)


def test_g2_scan_of_a_marker_file_writes_maps_and_refuses_a_missing_layout(tmp_path, capsys):
    rng = np.random.default_rng(1)
    rates = np.full((1, 3, 4), 1e5)
    time, kind, channel = marker_scan_events(rng, rates, dwell_s=5e-3, background_cps=2e4)
    write_ptu(tmp_path / "scan.ptu", "HydraHarp v2 T2", time, kind, channel, seconds=1.0, extra_tags=IMAGING_TAGS)
    assert main(["g2", "scan", str(tmp_path / "scan.ptu"), "--out", str(tmp_path / "maps")]) == 0
    maps = np.load(tmp_path / "maps" / "maps.npz")
    assert maps["g2_lm"].shape == (3, 4) and 0 < maps["counts"].sum() <= (kind == PHOTON).sum()
    write_ptu(tmp_path / "bare.ptu", "HydraHarp v2 T2", time, kind, channel, seconds=1.0)
    assert main(["g2", "scan", str(tmp_path / "bare.ptu"), "--out", str(tmp_path / "m2")]) == 2
    assert "does not state the pixels per line (--pixels)" in capsys.readouterr().err
    assert main(["g2", "scan", str(tmp_path / "bare.ptu"), "--pixels", "4", "--lines", "3", "--markers", "1,2,3",
                 "--out", str(tmp_path / "m2")]) == 0
    with pytest.raises(ValueError, match="no complete line"):
        read_marker_scan(tmp_path / "bare.ptu", pixels=4, lines=3, markers=(5, 6))
    assert MARKER in kind
