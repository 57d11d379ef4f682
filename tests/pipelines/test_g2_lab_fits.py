"""``g2 fit`` on lab files: the printed line and CSV carry every fitted parameter, --plot draws data, fit and
residuals, and a file that contradicts itself (not whole counts, singles against tails) is refused in one line."""

import csv

import numpy as np

from qml_imaging.cli import main
from qml_imaging.physics.g2_model import binned_curve

DELAYS = np.arange(-200, 201) * 0.05  # +-10 ns, 50 ps bins


def write_csv(path, level=40.0, a1=0.95, t1=1.0, metadata="", seed=0):
    mean = level * binned_curve(DELAYS, 0.05, 15, 0.0, a1, t1, 0.0, 1.0, 0.0)
    counts = np.random.default_rng(seed).poisson(mean)
    path.write_text(metadata + "delay_ns,counts,error\n" +
                    "".join(f"{d:.3f},{c},{max(c, 1) ** 0.5:.3f}\n" for d, c in zip(DELAYS, counts)))
    return path


def test_the_line_and_the_csv_carry_every_parameter_and_plot_writes_each_histogram(tmp_path, capsys):
    path = write_csv(tmp_path / "qd.csv", metadata="# singles_1: 1e6\n# singles_2: 1e6\n# seconds: 1.25\n")
    out = tmp_path / "fits.csv"
    assert main(["g2", "fit", str(path), "--out", str(out), "--plot"]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    for part in ("g2(0) = ", "measured at zero delay", "a1 ", "t1 ", "jitter 0", "zero delay",
                 "baseline 40 +- 0/bin from singles", "reduced deviance"):
        assert part in line, (part, line)
    row = next(csv.DictReader(out.open()))
    assert abs(float(row["g2"]) - 0.05) < 3 * float(row["sigma"]) and row["status"] == ""
    assert abs(float(row["t1_ns"]) - 1.0) < 3 * float(row["t1_ns_sigma"]) and float(row["reduced_deviance"]) < 1.3
    for column in ("a1", "a2", "t2_ns", "jitter_ns", "zero_delay_ns", "baseline", "g2_measured", "bunching"):
        assert column in row and f"{column}_sigma" in row or column in ("bunching", "zero_delay_ns", "baseline")
    assert (tmp_path / "fits_plots" / "qd_0.png").stat().st_size > 10_000


def test_counts_that_are_not_whole_numbers_are_refused_naming_the_file(tmp_path, capsys):
    path = tmp_path / "normalised.csv"
    path.write_text("delay_ns,g2\n" + "".join(f"{d:.2f},{1 - 0.9 * np.exp(-abs(d)):.4f}\n" for d in DELAYS))
    assert main(["g2", "fit", str(path), "--out", str(tmp_path / "fits.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(path) in err and "not whole numbers" in err and "raw coincidence counts" in err


def test_a_singles_baseline_that_contradicts_the_tails_is_refused_in_one_line(tmp_path, capsys):
    # the rates put the uncorrelated level at 4 per bin while the histogram's tails hold 40 (a PHU rate tag read
    # at the wrong moment, a cut file): no g2(0) is printed
    path = write_csv(tmp_path / "rates.csv", metadata="# singles_1: 1e6\n# singles_2: 1e6\n# seconds: 12.5\n")
    out = tmp_path / "fits.csv"
    assert main(["g2", "fit", str(path), "--out", str(out)]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert ": refused: inconsistent file: the singles baseline N1 N2 w / T = 4 per bin" in line and "g2(0) =" not in line
    row = next(csv.DictReader(out.open()))
    assert row["g2"] == "" and row["status"].startswith("inconsistent file")


def test_jitter_option_is_checked_and_used(tmp_path, capsys):
    path = write_csv(tmp_path / "qd.csv")
    assert main(["g2", "fit", str(path), "--jitter", "-1", "--out", str(tmp_path / "f.csv")]) == 2
    assert "--jitter must be 'fit' or a finite number of ns >= 0, got '-1'" in capsys.readouterr().err
    assert main(["g2", "fit", str(path), "--jitter", "0.02", "--baseline", "tails", "--out", str(tmp_path / "f.csv")]) == 0
    assert "jitter 0.02 +- 0 ns" in capsys.readouterr().out
