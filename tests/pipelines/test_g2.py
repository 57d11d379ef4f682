import json

import pytest

from qml_imaging.config import load_config
from qml_imaging.pipelines.g2.regression import speedup_factor
from qml_imaging.runs import RunDir
from tests.conftest import EXPERIMENTS


def test_speedup_interpolates_log_log_between_lm_times():
    speedup, lower_bound = speedup_factor(10.0, 5, {5: 40.0, 20: 20.0, 80: 5.0})
    assert not lower_bound and speedup == pytest.approx(40 / 5)
    assert speedup_factor(1.0, 5, {5: 40.0, 80: 5.0}) == (16.0, True)


def test_smoke_run_writes_the_mape_table(tmp_path):
    config = load_config(EXPERIMENTS / "g2_smoke.yaml")
    from qml_imaging.pipelines.g2.regression import run

    summary = run(config, RunDir.create(config, tmp_path / "run"))
    assert set(summary["mape"]) == {"cnn", "lm"} and set(summary["mape"]["cnn"]) == {"5", "6"}
    assert summary["cnn_seconds_per_1024"] > 0 and summary["speedup"] > 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert "g2_predictions.png" in report["figures"]
