import pytest

from qml_imaging.reporting.stats import mean_std, median_seconds


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
