import json

import pytest

from qml_imaging.config import ConfigError, load_config
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
    assert set(summary["crb_mape"]) == {"5", "6"} and all(v > 0 for v in summary["crb_mape"].values())
    assert all(v > 0 for v in summary["constant_mape"].values())
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert "g2_predictions.png" in report["figures"]


def test_scan_smoke_run_gives_g2_maps_g2_images_and_the_fwhm_ratio(tmp_path):
    from qml_imaging.config import config_from_dict
    from qml_imaging.pipelines.g2.regression import run as regression
    from qml_imaging.pipelines.g2.scan import run as scan

    source_config = load_config(EXPERIMENTS / "g2_smoke.yaml")
    source = RunDir.create(source_config, tmp_path / "cnn")
    regression(source_config, source)
    raw = load_config(EXPERIMENTS / "srm_scan.yaml").model_dump()
    raw.update(source_run=str(source.path), workers=1,
               scan={**raw["scan"], "pixels": 13, "field_nm": 13 * 60.0, "seconds": 20})
    config = config_from_dict(raw)
    summary = scan(config, RunDir.create(config, tmp_path / "scan"))
    assert summary["fwhm_nm"]["one"]["pl"] == pytest.approx(300, rel=0.05)
    assert summary["fwhm_ratio_true"] == pytest.approx(2**0.5, rel=0.05)  # exact g2 maps: the squared PSF
    assert summary["dip"]["two"]["G2_true"] > summary["dip"]["two"]["pl"] > 0
    assert 0 < summary["g2_map_mape"]["one"]["lm"] and summary["cnn_seconds_per_1024"] > 0
    report = json.loads((tmp_path / "scan" / "report.json").read_text())
    assert {"scan_one.png", "cross_section_two.png"} <= set(report["figures"])


def test_f13_mape_training_targets_must_stay_above_the_floor():
    from qml_imaging.config import ConfigError

    with pytest.raises(ConfigError, match=r"simulation.g2_zero.low is 0.0, below 0.05"):
        load_config(EXPERIMENTS / "g2_smoke.yaml", ["simulation.g2_zero={low: 0.0, high: 0.5}"])
    with pytest.raises(ConfigError, match="simulation.rate.low"):
        load_config(EXPERIMENTS / "g2_smoke.yaml", ["simulation.rate={low: 0, high: 10}"])
    with pytest.raises(ConfigError, match="Input should be a finite number"):
        load_config(EXPERIMENTS / "g2_smoke.yaml", ["simulation.lifetime_ns={low: 10, high: .nan}"])


def test_f13_g2_map_errors_at_zero_truth_are_absolute_with_mape_undefined():
    import torch

    from qml_imaging.pipelines.g2.scan import map_errors

    truth = torch.zeros(4, dtype=torch.float64)
    errors = map_errors(torch.tensor([0.1, -0.1, 0.2, 0.0], dtype=torch.float64), truth)
    assert errors["mape"] is None
    assert errors["mae"] == pytest.approx(0.1) and errors["rmse"] == pytest.approx((0.06 / 4) ** 0.5)
    mixed = map_errors(torch.tensor([0.1, 0.55], dtype=torch.float64), torch.tensor([0.0, 0.5], dtype=torch.float64))
    assert mixed["mape"] == pytest.approx(10.0)


def test_scan_configs_refuse_empty_or_non_finite_scenes():
    from qml_imaging.config import ConfigError, config_from_dict

    raw = load_config(EXPERIMENTS / "srm_scan.yaml").model_dump()
    for scenes, message in (({"one": []}, "scenes.one holds no emitter"),
                            ({"one": [(float("nan"), 0.0)]}, "scenes.one.0.0: Input should be a finite number")):
        with pytest.raises((ConfigError, ValueError), match=message):
            config_from_dict({**raw, "scenes": scenes})


def test_non_positive_acquisition_times_are_refused_when_the_config_is_validated():
    with pytest.raises(ConfigError, match="evaluation.seconds.0: Input should be greater than 0"):
        load_config(EXPERIMENTS / "g2_smoke.yaml", ["evaluation.seconds=[-1]"])
