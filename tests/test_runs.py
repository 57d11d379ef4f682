import json
import os
import stat
import subprocess
import sys

import pytest

from qml_imaging.config import load_config
from qml_imaging.runs import (
    MetricsLog,
    RunDir,
    RunFolderError,
    RunInUseError,
    atomic_replace,
    release_locks,
    write_text_atomic,
)
from tests.conftest import EXPERIMENTS, REPO_ROOT


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


def test_metrics_log_skips_a_torn_line_and_keeps_later_records_apart(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    log.append({"fit": "a", "epoch": 1})
    with log.path.open("a") as stream:
        stream.write('{"fit": "a", "epo')  # a crash in the middle of an append
    assert [r["epoch"] for r in log.records()] == [1]
    log.append({"fit": "a", "epoch": 2})  # starts on a line of its own
    assert [r["epoch"] for r in log.records()] == [1, 2]
    log.truncate("a", after_epoch=5)  # nothing past epoch 5, but the torn line goes
    assert log.path.read_text() == '{"fit": "a", "epoch": 1}\n{"fit": "a", "epoch": 2}\n'


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_atomic_files_get_the_mode_an_ordinary_open_gives(tmp_path, umask):
    previous = os.umask(umask)
    try:
        write_text_atomic(tmp_path / "atomic.txt", "x")
        (tmp_path / "plain.txt").write_text("x")
    finally:
        os.umask(previous)
    mode = stat.S_IMODE((tmp_path / "atomic.txt").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode) == 0o666 & ~umask


def test_leftover_temporary_files_do_not_make_a_folder_a_run(tmp_path):
    config = load_config(EXPERIMENTS / "inr_smoke.yaml")
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / ".config.yaml.abc123.tmp").write_text("half-written by a crash")
    run = RunDir.create(config, folder)
    assert sorted(p.name for p in folder.iterdir()) == ["config.yaml"]
    assert not run.created_folder
    with pytest.raises(FileExistsError, match="already holds a run; continue it with `qml-imaging run --resume"):
        RunDir.create(config, folder)
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(FileExistsError, match="'.*a_file' is an existing file, not a folder"):
        RunDir.create(config, tmp_path / "a_file")


def test_out_on_a_folder_that_is_not_a_run_is_refused_in_one_line_leaving_it_untouched(tmp_path, capsys):
    from qml_imaging.cli import main

    data = tmp_path / "data"
    data.mkdir()
    (data / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"'.*data' is a folder that is not a run \(it holds notes.txt\)"):
        RunDir.create(load_config(EXPERIMENTS / "inr_smoke.yaml"), data, lock=True)
    assert main(["run", str(EXPERIMENTS / "inr_smoke.yaml"), "--out", str(data)]) != 0
    message = capsys.readouterr().err.strip()
    assert "is a folder that is not a run (it holds notes.txt); give a new or empty folder" in message
    assert "\n" not in message and "--resume" not in message
    assert sorted(p.name for p in data.iterdir()) == ["notes.txt"], "no run.lock or config.yaml left behind"


def test_a_run_without_saved_work_is_discarded_and_one_with_work_is_kept(tmp_path):
    config = load_config(EXPERIMENTS / "inr_smoke.yaml")
    run = RunDir.create(config, tmp_path / "new", lock=True)
    (run.path / "checkpoints" / "fit").mkdir(parents=True)  # made, nothing saved in it
    assert run.discard_if_unused() and not run.path.exists()
    given = tmp_path / "given"
    given.mkdir()
    run = RunDir.create(config, given)
    assert run.discard_if_unused() and given.is_dir() and not any(given.iterdir())  # the user's folder stays
    run = RunDir.create(config, tmp_path / "worked")
    run.metrics.append({"fit": "a", "epoch": 1})
    assert not run.discard_if_unused() and (run.path / "config.yaml").is_file()


def test_run_folder_of_another_kind_is_refused_by_name(tmp_path):
    config = load_config(EXPERIMENTS / "inr_smoke.yaml")
    RunDir.create(config, tmp_path / "run")
    with pytest.raises(RunFolderError, match=r"is a 'inr_image' run; a 'inr_runtime' run is needed here"):
        RunDir.open(tmp_path / "run", experiments=("inr_runtime",))


def test_one_process_per_run_folder(tmp_path):
    config = load_config(EXPERIMENTS / "inr_smoke.yaml")
    run = RunDir.create(config, tmp_path / "run")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from qml_imaging.runs import RunDir; from qml_imaging.config import "
         "load_config; RunDir.open(sys.argv[1], lock=True); print('locked', flush=True); time.sleep(60)", str(run.path)],
        stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunInUseError, match=rf"run folder .* is in use by another process \(pid {holder.pid}\)"):
            RunDir.open(run.path, lock=True)
    finally:
        holder.kill()
        holder.wait()
    RunDir.open(run.path, lock=True)  # the lock went with the killed process
    RunDir.open(run.path, lock=True)  # re-entrant within one process
    release_locks()
