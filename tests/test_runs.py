import json

import pytest

from qml_imaging.config import load_config
from qml_imaging.runs import MetricsLog, RunDir, atomic_replace, write_text_atomic
from tests.conftest import EXPERIMENTS


def test_atomic_replace_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "report.json"
    write_text_atomic(path, "old")
    with pytest.raises(RuntimeError):
        with atomic_replace(path) as temporary:
            temporary.write_text("half-writ")
            raise RuntimeError("crash while writing")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_metrics_log_truncates_one_fit_after_an_epoch(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    for fit in ("a", "b"):
        for epoch in range(1, 5):
            log.append({"fit": fit, "epoch": epoch, "train_loss": 1.0 / epoch})
    log.truncate("a", after_epoch=2)
    assert [r["epoch"] for r in log.records("a")] == [1, 2]
    assert [r["epoch"] for r in log.records("b")] == [1, 2, 3, 4]


def test_run_dir_writes_resolved_config_and_refuses_to_overwrite(tmp_path):
    config = load_config(EXPERIMENTS / "inr_smoke.yaml")
    run = RunDir.create(config, tmp_path / "run")
    assert RunDir.open(run.path).config == config
    run.write_report({"headline": 1.0})
    report = json.loads((run.path / "report.json").read_text())
    assert report["summary"] == {"headline": 1.0} and report["experiment"] == "inr_image"
    assert "torch" in report["environment"]
    with pytest.raises(FileExistsError, match="--resume"):
        RunDir.create(config, run.path)
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        RunDir.open(tmp_path)
