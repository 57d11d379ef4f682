"""Lab exports read by their headers (qml_imaging.data.hbt_text): column order, error and index columns,
semicolons with decimal commas, and one-line refusals of anything ambiguous."""

import numpy as np
import pytest

from qml_imaging.data.hbt_files import read_histograms

DELAYS = [-2.0, -1.0, 0.0, 1.0, 2.0]
COUNTS = [40, 38, 5, 37, 41]


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_counts_before_delay_is_read_by_the_header(tmp_path):
    path = write(tmp_path, "swapped.csv", "counts,delay_ns\n" + "".join(f"{c},{d}\n" for d, c in zip(DELAYS, COUNTS)))
    data = read_histograms(path)
    assert data.counts.tolist() == [COUNTS] and data.axis.centres().tolist() == DELAYS


def test_an_error_column_is_recognised_and_not_fitted(tmp_path):
    rows = "".join(f"{d},{c},{c ** 0.5:.3f}\n" for d, c in zip(DELAYS, COUNTS))
    for header in ("delay_ns,counts,error", "Time (ns),Counts,Counts_err", "tau [ns],coincidences,uncertainty"):
        data = read_histograms(write(tmp_path, "errors.csv", header + "\n" + rows))
        assert data.counts.tolist() == [COUNTS], header


def test_semicolons_with_decimal_commas_and_an_index_column(tmp_path):
    rows = "".join(f"{i};{str(d / 2).replace('.', ',')};{c}\n" for i, (d, c) in enumerate(zip(DELAYS, COUNTS)))
    data = read_histograms(write(tmp_path, "europe.csv", "Bin;Delay (ns);Counts\n" + rows))
    assert data.counts.tolist() == [COUNTS] and data.axis.centres().tolist() == [d / 2 for d in DELAYS]
    tabbed = "".join(f"{str(d).replace('.', ',')}\t{c}\n" for d, c in zip(DELAYS, COUNTS))
    assert read_histograms(write(tmp_path, "tabs.txt", "time_ps\tcounts\n" + tabbed)).axis.width_ns == pytest.approx(1e-3)


def test_two_counts_columns_are_two_histograms_and_a_headerless_file_is_positional(tmp_path):
    rows = "".join(f"{d} {c} {2 * c}\n" for d, c in zip(DELAYS, COUNTS))
    data = read_histograms(write(tmp_path, "two.dat", "# delay_unit: ns\n" + rows))
    assert data.counts.tolist() == [COUNTS, [2 * c for c in COUNTS]]
    named = read_histograms(write(tmp_path, "named.csv", "counts_a,delay_ns,counts_b\n" +
                                  "".join(f"{c},{d},{2 * c}\n" for d, c in zip(DELAYS, COUNTS))))
    assert np.array_equal(named.counts, data.counts)


@pytest.mark.parametrize(("text", "message"), [
    ("delay_ns,counts,temperature\n" + "".join(f"{d},{c},20\n" for d, c in zip(DELAYS, COUNTS)),
     "column 'temperature' is not a delay, counts, error or index column"),
    ("delay_ns,time_ns,counts\n" + "".join(f"{d},{d},{c}\n" for d, c in zip(DELAYS, COUNTS)),
     "must name one delay column"),
    ("delay_ns,error\n" + "".join(f"{d},{c}\n" for d, c in zip(DELAYS, COUNTS)), "at least one counts column"),
    ("delay_ns;counts\n" + "".join(f"{d};1.000,5\n" for d in DELAYS), "ambiguous number '1.000,5'"),
    ("delay,counts\n" + "".join(f"{d},{c}\n" for d, c in zip(DELAYS, COUNTS)), "the delay unit is not stated"),
    ("delay_ns,counts,error\n" + "".join(f"{d},{c}\n" for d, c in zip(DELAYS, COUNTS)),
     "the header names 3 columns but the rows hold 2"),
])
def test_ambiguous_exports_are_refused_in_one_line_naming_the_file(tmp_path, text, message):
    path = write(tmp_path, "bad.csv", text)
    with pytest.raises(ValueError, match=message) as error:
        read_histograms(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)
