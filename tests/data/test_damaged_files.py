"""Damaged photon-counting files (PTU, PHU, NPY, NPZ, scan.npz) are refused in one line naming the file, what is
wrong and the fix, before anything is allocated from a length the file does not hold."""

import struct

import numpy as np
import pytest

from qml_imaging.cli import main
from qml_imaging.data.hbt_files import (
    HbtHistograms,
    read_histograms,
    read_scan,
    write_npz,
)
from qml_imaging.physics.hbt import DelayAxis
from tests.data.ptu_writer import EMPTY, FLOAT8, INT8, PHOTON, tag, write_ptu
from tests.data.test_hbt_files import write_phu


def good_ptu(path):
    time = np.arange(0, 4_000_000, 997)
    write_ptu(path, "HydraHarp v2 T2", time, np.full(len(time), PHOTON), np.arange(len(time)) % 2, seconds=1.0)
    return path.read_bytes()


def replace_tag(blob, name, new):
    at = blob.index(name.encode())
    return blob[:at] + new + blob[at + 48:]


@pytest.mark.parametrize("damage, message", [
    (lambda b: replace_tag(b, "Measurement_Mode", b"\xff\xfe" + b"x" * 30 + struct.pack("<iIq", -1, INT8, 2)),
     "damaged header: a tag name at byte 16 is not text"),
    (lambda b: replace_tag(b, "Measurement_SubMode", tag("Comment", "", 0x4001FFFF)[:40] + struct.pack("<q", 4 << 40)),
     "damaged header: tag 'Comment' claims 4398046511104 bytes of data but the file has"),
    (lambda b: b[:200], "the file ends inside the header"),
    (lambda b: replace_tag(b, "TTResultFormat_TTTRRecType", tag("Other", 1)), "the header lacks the tag "
                                                                                "TTResultFormat_TTTRRecType"),
    (lambda b: replace_tag(b, "TTResultFormat_TTTRRecType", tag("TTResultFormat_TTTRRecType", 0x77)),
     "record type 0x00000077 is not one this reader knows"),
    (lambda b: b[:-4000], "the header promises 4013 records but the file holds 3013"),
    (lambda b: replace_tag(b, "MeasDesc_GlobalResolution", tag("MeasDesc_GlobalResolution", float("nan"), FLOAT8)),
     "MeasDesc_GlobalResolution is nan s"),
    (lambda b: replace_tag(b, "Measurement_SubMode", tag("Measurement_SubMode", 0)[:36] + struct.pack("<I", 0x0BAD0008)
                           + bytes(8)),
     "tag 'Measurement_SubMode' has the unknown type code 0x0bad0008"),
])
def test_a_damaged_ptu_is_one_line_naming_the_file(tmp_path, damage, message):
    path = tmp_path / "hbt.ptu"
    path.write_bytes(damage(good_ptu(path)))
    with pytest.raises(ValueError, match=f"hbt.ptu: .*{message}") as error:
        read_histograms(path)
    assert "\n" not in str(error.value)


def test_a_record_no_layout_allows_is_named(tmp_path):
    path = tmp_path / "hbt.ptu"
    blob = bytearray(good_ptu(path))
    blob[-4:] = struct.pack("<I", (1 << 31) | (40 << 25))  # special channel 40: neither SYNC, marker nor overflow
    path.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match=r"hbt.ptu: record 4012 \(0xd0000000\) is not a valid HydraHarp v2 T2 record"):
        read_histograms(path)


def test_a_damaged_phu_is_one_line(tmp_path):
    write_phu(tmp_path / "h.phu", np.ones((2, 64), dtype=np.uint32), 1e-9, 1.0, 10, 10)
    blob = (tmp_path / "h.phu").read_bytes()
    (tmp_path / "h.phu").write_bytes(blob[:-100])
    with pytest.raises(ValueError, match=r"h.phu: curve 1 claims 64 bins at byte \d+, beyond the file's"):
        read_histograms(tmp_path / "h.phu")
    (tmp_path / "h.phu").write_bytes(blob[:300])
    with pytest.raises(ValueError, match="h.phu: damaged header: the file ends inside the header"):
        read_histograms(tmp_path / "h.phu")


def test_damaged_numpy_files_are_named_before_any_allocation(tmp_path, capsys):
    axis = DelayAxis(bins=7, span_ns=14.0, first_ns=-6.0)
    blob = write_npz(tmp_path / "s.npz", HbtHistograms(np.ones((3, 7)), axis)).read_bytes()
    (tmp_path / "s.npz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match=r"s.npz: a damaged .*BadZipFile"):
        read_histograms(tmp_path / "s.npz")
    np.save(tmp_path / "c.npy", np.ones(1000))
    header = (tmp_path / "c.npy").read_bytes()
    (tmp_path / "c.npy").write_bytes(header.replace(b"(1000,)", b"(10**12,)".replace(b"10**12", b"5" * 12)))
    with pytest.raises(ValueError, match=r"c.npy: its header promises an array \(555555555555,\) of float64 "
                                         r"\(4444444444440 bytes\) but \d+ bytes follow"):
        read_histograms(tmp_path / "c.npy", axis=axis)
    folder = tmp_path / "scan"
    folder.mkdir()
    (folder / "scan.npz").write_bytes(blob[:-30])
    with pytest.raises(ValueError, match="scan.npz: a damaged NumPy"):
        read_scan(folder)
    assert main(["g2", "fit", str(tmp_path / "s.npz"), "--out", str(tmp_path / "f.csv")]) == 2
    assert "s.npz: a damaged" in capsys.readouterr().err


def test_a_ptu_header_without_its_end_tag_is_named(tmp_path):
    (tmp_path / "x.ptu").write_bytes(b"PQTTTR\0\0" + b"1.0.00\0\0" + tag("Measurement_Mode", 2) + tag("A", 1, EMPTY))
    with pytest.raises(ValueError, match="x.ptu: damaged header: the file ends inside the header"):
        read_histograms(tmp_path / "x.ptu")


def test_a_damaged_photon_hdf5_file_is_one_line(tmp_path):
    pytest.importorskip("h5py")
    from qml_imaging.data.photon_hdf5 import write_photon_hdf5

    path = write_photon_hdf5(tmp_path / "p.h5", np.arange(0, 10_000, 7), np.arange(1429) % 2, 1e-9)
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match=r"p.h5: (not a readable HDF5 file|a damaged Photon-HDF5 file)"):
        read_histograms(path)
    import h5py

    with h5py.File(tmp_path / "q.h5", "w") as handle:
        handle["photon_data/timestamps"] = np.arange(5)
    with pytest.raises(ValueError, match="q.h5: not a Photon-HDF5 file: it lacks /photon_data/detectors"):
        read_histograms(tmp_path / "q.h5")
