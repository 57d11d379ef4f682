"""A run folder never writes outside itself, and its lock works without POSIX-only modules."""

import os
import subprocess
import sys
import types
import zipfile

import pytest
import torch

from qml_imaging import runs
from qml_imaging.cli import main
from qml_imaging.config import load_config
from qml_imaging.runs import MetricsLog, RunDir, RunFolderError, RunInUseError, release_locks, write_text_atomic
from qml_imaging.training.checkpoints import CheckpointError, load_checkpoint, load_state_file, save_checkpoint
from tests.conftest import EXPERIMENTS, REPO_ROOT

PRECIOUS = "precious user data\n"


@pytest.fixture
def outside(tmp_path):
    """A file and a folder outside the run folder that nothing may touch."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "notes.txt").write_text(PRECIOUS)
    return folder


def _snapshot(folder):
    return sorted((path.name, path.read_bytes()) for path in folder.iterdir())


def test_a_symlinked_run_lock_is_refused_by_run_and_the_outside_file_is_untouched(tmp_path, outside, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.lock").symlink_to(outside / "notes.txt")
    assert main(["run", str(EXPERIMENTS / "inr_smoke.yaml"), "train.epochs=1", "--out", str(run)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "run.lock is a symbolic link" in error and "remove the link" in error
    assert (outside / "notes.txt").read_text() == PRECIOUS


def test_a_symlinked_run_lock_is_refused_on_resume(tmp_path, outside):
    run = RunDir.create(load_config(EXPERIMENTS / "inr_smoke.yaml"), tmp_path / "run")
    (run.path / "run.lock").symlink_to(outside / "notes.txt")
    with pytest.raises(RunFolderError, match="run.lock is a symbolic link"):
        RunDir.open(run.path, lock=True)
    assert (outside / "notes.txt").read_text() == PRECIOUS


def test_a_hard_linked_run_lock_is_refused(tmp_path, outside):
    run = RunDir.create(load_config(EXPERIMENTS / "inr_smoke.yaml"), tmp_path / "run")
    os.link(outside / "notes.txt", run.path / "run.lock")
    with pytest.raises(RunFolderError, match=r"run.lock is a hard link \(2 names\)"):
        run.lock()
    assert (outside / "notes.txt").read_text() == PRECIOUS


def test_a_symlinked_checkpoint_folder_is_refused_and_nothing_is_written_through_it(tmp_path, outside):
    run = RunDir.create(load_config(EXPERIMENTS / "inr_smoke.yaml"), tmp_path / "run")
    (run.path / "checkpoints").mkdir()
    run.checkpoint_dir("camera").symlink_to(outside, target_is_directory=True)
    before = _snapshot(outside)
    with pytest.raises(RunFolderError, match=r"checkpoints/camera is a symbolic link .* replace the link"):
        save_checkpoint(run.checkpoint_dir("camera"), {"epoch": 1, "model": {}})
    with pytest.raises(RunFolderError, match="symbolic link"):
        save_checkpoint(runs.checkpoint_folder(run.path, "camera/qiren"), {"epoch": 1, "model": {}})
    assert _snapshot(outside) == before


def test_a_linked_folder_deeper_in_the_run_or_a_linked_log_is_not_followed(tmp_path, outside):
    run = RunDir.create(load_config(EXPERIMENTS / "inr_smoke.yaml"), tmp_path / "run")
    (run.path / "tasks").symlink_to(outside, target_is_directory=True)
    before = _snapshot(outside)
    with pytest.raises(RunFolderError, match="tasks is a symbolic link"):
        write_text_atomic(run.path / "tasks" / "a" / "result.json", "{}")
    with pytest.raises(RunFolderError, match="tasks is a symbolic link"):
        runs.make_folder(run.path / "tasks" / "b")
    (run.path / "metrics.jsonl").symlink_to(outside / "notes.txt")
    with pytest.raises(RunFolderError, match="metrics.jsonl is a symbolic link"):
        MetricsLog(run.path / "metrics.jsonl").append({"fit": "a", "epoch": 1})
    assert _snapshot(outside) == before


def test_a_file_replaced_by_rename_replaces_a_link_not_its_target(tmp_path, outside):
    run = RunDir.create(load_config(EXPERIMENTS / "inr_smoke.yaml"), tmp_path / "run")
    (run.path / "report.json").symlink_to(outside / "notes.txt")
    run.write_report({"psnr": 1.0})
    assert not (run.path / "report.json").is_symlink()
    assert (outside / "notes.txt").read_text() == PRECIOUS


def test_writes_outside_every_run_folder_are_not_restricted(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "linked").symlink_to(tmp_path / "real", target_is_directory=True)
    write_text_atomic(tmp_path / "linked" / "render.txt", "ok")  # a path the user chose, e.g. render --out
    assert (tmp_path / "real" / "render.txt").read_text() == "ok"


def _bomb(path, unpacked_bytes):
    """A zip shaped like a torch.save file whose data record is compressed (torch never compresses)."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02}q\x00.", compress_type=zipfile.ZIP_STORED)
        archive.writestr("archive/data/0", b"\0" * unpacked_bytes, compress_type=zipfile.ZIP_DEFLATED)


def test_a_checkpoint_that_would_unpack_beyond_its_size_is_refused_before_unpacking(tmp_path, monkeypatch):
    _bomb(tmp_path / "last.pt", 20_000_000)
    assert (tmp_path / "last.pt").stat().st_size < 100_000
    monkeypatch.setattr(zipfile.ZipFile, "testzip", lambda self: pytest.fail("a record was unpacked"))
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("the archive was handed to torch.load"))
    with pytest.raises(CheckpointError, match=r"unpack to 20000\d+ bytes from a \d+-byte file .*compressed records"):
        load_state_file(tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match="no usable checkpoint"):
        load_checkpoint(tmp_path)


def test_a_checkpoint_torch_wrote_passes_the_size_check(tmp_path):
    save_checkpoint(tmp_path, {"epoch": 3, "model": {"w": torch.ones(1000)}})
    assert load_checkpoint(tmp_path)["epoch"] == 3


def test_every_module_imports_without_fcntl():
    """Windows has no fcntl: no module of the package may need it (or any POSIX-only module) at import."""
    script = (
        "import sys, importlib, pkgutil\n"
        "for name in ('fcntl', 'termios', 'resource', 'pwd', 'grp'):\n"
        "    sys.modules[name] = None\n"
        "import qml_imaging\n"
        "names = [m.name for m in pkgutil.walk_packages(qml_imaging.__path__, 'qml_imaging.')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "print(len(names))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) > 50


def test_the_windows_lock_takes_one_byte_past_the_pid_and_names_the_holder(tmp_path, monkeypatch):
    calls = []
    held = {"by_other": False}

    def locking(handle, mode, count):
        calls.append((os.lseek(handle, 0, os.SEEK_CUR), mode, count))
        if held["by_other"]:
            raise OSError(36, "Resource deadlock avoided")

    monkeypatch.setitem(sys.modules, "msvcrt", types.SimpleNamespace(locking=locking, LK_NBLCK=2))
    monkeypatch.setattr(sys, "platform", "win32")
    run = RunDir.create(load_config(EXPERIMENTS / "inr_smoke.yaml"), tmp_path / "run", lock=True)
    assert calls == [(runs._WINDOWS_LOCK_OFFSET, 2, 1)]
    assert (run.path / "run.lock").read_text() == f"{os.getpid()}\n"
    release_locks()
    held["by_other"] = True
    with pytest.raises(RunInUseError, match=rf"in use by another process \(pid {os.getpid()}\)"):
        run.lock()


def test_a_linked_live_log_is_not_followed(tmp_path, outside):
    from qml_imaging.training.live_logs import CsvSink

    run = RunDir.create(load_config(EXPERIMENTS / "inr_smoke.yaml"), tmp_path / "run")
    (run.path / "csv").mkdir()
    (run.path / "csv" / "fit.csv").symlink_to(outside / "notes.txt")
    with pytest.raises(RunFolderError, match="fit.csv is a symbolic link"):
        CsvSink(run.path / "csv" / "fit.csv").write({"fit": "fit", "epoch": 1, "train_loss": 0.5})
    assert (outside / "notes.txt").read_text() == PRECIOUS
