import pytest

from qml_imaging.reporting.stats import (
    format_difference,
    format_stat,
    mean_std,
    median_seconds,
    paired_test,
    summary_stat,
)


def test_mean_std_is_the_mean_and_sample_standard_deviation():
    assert mean_std([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0))
    assert mean_std([4.0]) == (4.0, 0.0)
    with pytest.raises(ValueError, match="at least one value"):
        mean_std([])
    with pytest.raises(ValueError, match="finite values"):
        mean_std([1.0, float("nan")])


def test_median_seconds_warms_up_untimed_and_checks_its_counts():
    calls = []
    seconds = median_seconds(lambda: calls.append(1), 3, warmup=2)
    assert len(calls) == 5 and seconds >= 0
    for repeats in (0, True, 2.5):
        with pytest.raises(ValueError, match="repeats must be an integer >= 1"):
            median_seconds(lambda: None, repeats)


def test_summary_values_are_labelled_and_one_seed_has_no_spread():
    assert summary_stat([1.0, 3.0]) == {"mean": 2.0, "std": pytest.approx(2 ** 0.5), "n": 2}
    assert summary_stat([0.00399]) == {"mean": 0.00399, "std": None, "n": 1}
    assert format_stat(summary_stat([0.00399])) == "0.00399"
    assert format_stat(summary_stat([1.0, 3.0])) == "2 ± 1.4"
    assert format_stat(summary_stat([30.0, 31.0]), ".2f") == "30.50 ± 0.71"


def test_paired_test_has_no_p_value_for_one_seed_and_formats_without_a_spread():
    several = paired_test([-10.0, -10.5, -9.5])
    assert several["n"] == 3 and several["p_value"] < 0.05 and several["differences"] == [-10.0, -10.5, -9.5]
    assert format_difference(several).startswith("-10.00 ± 0.50 (p = ")
    one = paired_test([2.5])
    assert one == {"mean": 2.5, "std": None, "n": 1, "p_value": None, "differences": [2.5]}
    assert format_difference(one) == "+2.50 (one seed: not tested)"
    assert paired_test([1.0, 1.0])["p_value"] == 1.0
