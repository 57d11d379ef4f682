"""Pulsed g2(0) from simulated T3 files and T2 files with the laser on SYNC, Photon-HDF5 round trips, and the refusals."""

import numpy as np
import pytest

from qml_imaging.cli import main
from qml_imaging.data.hbt_files import read_histograms, stated_period_ns
from qml_imaging.data.photon_hdf5 import write_photon_hdf5
from qml_imaging.physics.pulsed_g2 import pulsed_axis, pulsed_g2, window_areas
from tests.data.photon_sources import pulsed_photons, write_t2_with_sync, write_t3


@pytest.mark.parametrize("g2_zero, lifetime_ns, period_ns", [(0.1, 2.0, 50.0), (0.2, 12.0, 25.0)])
def test_pulsed_g2_of_a_t3_file_is_within_two_sigma(tmp_path, g2_zero, lifetime_ns, period_ns):
    rng = np.random.default_rng(int(lifetime_ns))
    times, detector, truth = pulsed_photons(rng, g2_zero, int(period_ns * 1000), lifetime_ns * 1000, 4_000_000)
    write_t3(tmp_path / "p.ptu", times, detector, int(period_ns * 1000))
    assert stated_period_ns(tmp_path / "p.ptu") == pytest.approx(period_ns)
    data = read_histograms(tmp_path / "p.ptu", axis=pulsed_axis(period_ns, 4))
    level = data.singles[0].prod() / (data.seconds[0] * 1e9)
    result = pulsed_g2(data.counts[0], data.axis, data.period_ns, level_per_ns=level)
    assert result.method == ("windows" if lifetime_ns < 5 else "fit")
    assert abs(result.g2_zero - truth) < 2 * result.sigma < 0.2


def test_t2_with_the_laser_on_sync_gives_the_t3_value_and_the_cli_reads_the_period(tmp_path, capsys):
    rng = np.random.default_rng(5)
    period_ps, pulses = 50_000, 400_000
    times, detector, truth = pulsed_photons(rng, 0.15, period_ps, 3000, pulses)
    write_t2_with_sync(tmp_path / "sync.ptu", times, detector, period_ps, pulses)
    write_t2_with_sync(tmp_path / "nosync.ptu", times, detector, period_ps, pulses, with_sync=False)
    axis = pulsed_axis(50.0, 3)
    with_sync, without = (read_histograms(tmp_path / name, axis=axis) for name in ("sync.ptu", "nosync.ptu"))
    assert np.array_equal(with_sync.counts, without.counts) and with_sync.singles.tolist() == without.singles.tolist()
    assert with_sync.period_ns == pytest.approx(50.0)
    assert main(["g2", "fit", str(tmp_path / "sync.ptu"), "--mode", "pulsed", "--side-peaks", "3",
                 "--out", str(tmp_path / "f.csv")]) == 0
    printed = capsys.readouterr().out
    g2, sigma = (float(x) for x in printed.split("pulsed g2(0) = ")[1].split()[0:3:2])
    assert abs(g2 - truth) < 2 * sigma and "period 50 ns" in printed


def test_photon_hdf5_round_trip_equals_the_t3_file(tmp_path):
    pytest.importorskip("h5py")
    rng = np.random.default_rng(2)
    period_ps = 25_000
    times, detector, _ = pulsed_photons(rng, 0.3, period_ps, 2000, 200_000)
    write_t3(tmp_path / "p.ptu", times, detector, period_ps, micro_ps=4)
    sync, micro = times // period_ps, (times % period_ps) // 4
    write_photon_hdf5(tmp_path / "p.h5", sync, detector, period_ps * 1e-12, nanotimes=micro, tcspc_unit=4e-12,
                      laser_repetition_rate=1e12 / period_ps)
    axis = pulsed_axis(25.0, 2)
    ptu, hdf5 = read_histograms(tmp_path / "p.ptu", axis=axis), read_histograms(tmp_path / "p.h5", axis=axis)
    assert np.array_equal(ptu.counts, hdf5.counts) and ptu.counts.sum() > 100 and hdf5.period_ns == pytest.approx(25.0)
    gated = read_histograms(tmp_path / "p.h5", axis=axis, gate_ns=(0.0, 5.0))
    assert 0 < gated.singles.sum() < hdf5.singles.sum()


def test_a_window_wider_than_the_period_and_missing_periods_are_refused(tmp_path, capsys):
    axis = pulsed_axis(10.0, 2)
    counts = np.ones(axis.bins)
    with pytest.raises(ValueError, match=r"window \(12.0 ns\) must be positive and no wider than the repetition period"):
        window_areas(counts, axis, 10.0, 12.0, 2)
    with pytest.raises(ValueError, match=r"3 side peaks .* \(at most 2 side peaks fit\)"):
        window_areas(counts, axis, 10.0, 10.0, 3)
    (tmp_path / "h.csv").write_text("delay_ns,counts\n" + "".join(f"{d},5\n" for d in range(-30, 31)))
    assert main(["g2", "fit", str(tmp_path / "h.csv"), "--mode", "pulsed", "--out", str(tmp_path / "f.csv")]) == 2
    assert "states no laser repetition period; give it with --period NS" in capsys.readouterr().err
    assert main(["g2", "fit", str(tmp_path / "h.csv"), "--mode", "pulsed", "--period", "10", "--window", "20",
                 "--side-peaks", "2", "--out", str(tmp_path / "f.csv")]) == 2
    assert "no wider than the repetition period" in capsys.readouterr().err
    assert main(["g2", "fit", str(tmp_path / "h.csv"), "--period", "10", "--out", str(tmp_path / "f.csv")]) == 2
    assert "--period: options of --mode pulsed" in capsys.readouterr().err


def test_photon_hdf5_without_h5py_is_one_line_naming_the_extra(tmp_path, monkeypatch):
    (tmp_path / "x.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    monkeypatch.setitem(__import__("sys").modules, "h5py", None)
    with pytest.raises(ImportError, match=r'Photon-HDF5 files needs h5py, which is not installed: pip install "qml-imaging\[lab\]"'):
        read_histograms(tmp_path / "x.h5")
