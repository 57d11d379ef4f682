"""Run folders: every run writes one self-describing directory.

Layout of a run folder::

    config.yaml        the fully resolved config (every default written out)
    metrics.jsonl      one JSON object per line: {"fit": ..., "epoch": ..., "train_loss": ...}
    checkpoints/       one sub-folder per fit, holding last.pt and previous.pt (see qml_imaging.training.checkpoints)
    report.json        {"experiment", "name", "summary": {headline numbers}, "details", "environment", ...}
    *.png              figures
    run.lock           held (flock on POSIX, msvcrt.locking on Windows) by the process working on the run

Every file that a crash could leave half-written is written atomically (temp file + rename), with the
permissions an ordinary ``open`` would give it (the process umask applies). ``metrics.jsonl`` is
appended to; a line cut short by a crash is ignored when it is read and removed when a fit resumes.

A run folder never writes outside itself: a folder between the run folder and a file it writes may not
be a symbolic link (:func:`check_inside_run`), files that are opened rather than replaced (``run.lock``,
``metrics.jsonl``) are opened without following a link and refused when they are links or hard links,
and a file replaced by rename replaces a link itself, never what it points to.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qml_imaging.config import ExperimentConfig, TrainSettings, dump_config, load_config
from qml_imaging.environment import environment, precision_report

LOCK_NAME = "run.lock"
_held_locks: dict[str, int] = {}  # run folder (real path) -> descriptor of its locked run.lock, in this process
_run_roots: set[str] = set()  # run folders (absolute, links not resolved) this process writes into
_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
_WINDOWS_LOCK_OFFSET = 2**31  # the byte msvcrt.locking locks: past the pid, so other processes can read the pid


class RunFolderError(Exception):
    """A run folder that cannot be used as asked: of another kind, in use, or holding a damaged file."""


class RunInUseError(RunFolderError):
    """Another process holds a run folder's lock."""


def _umask() -> int:
    """The process umask (read without changing it where Linux allows)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _is_temporary(name: str) -> bool:
    """A temporary file of :func:`atomic_replace` (``.NAME.xxxx.tmp``), left behind only by a crash."""
    return name.startswith(".") and name.endswith(".tmp")


def register_run_folder(path: str | Path) -> Path:
    """Mark ``path`` as a run folder of this process: writes below it are kept inside it (:func:`check_inside_run`)."""
    _run_roots.add(os.path.abspath(path))
    return Path(path)


def check_inside_run(path: str | Path) -> None:
    """Refuse a write to ``path`` that a symbolic link would carry out of its run folder.

    ``path`` below a registered run folder (:func:`register_run_folder`): every folder between the
    run folder and ``path`` that exists must be a real folder, not a link (a link there may point
    anywhere, e.g. a ``checkpoints/<fit>`` pointing into someone's home). Paths outside every run
    folder (a ``render --out`` the user chose) are not checked. Raises :class:`RunFolderError`.
    """
    target = os.path.abspath(path)
    roots = [root for root in _run_roots if target.startswith(root.rstrip(os.sep) + os.sep)]
    if not roots:
        return
    root = min(roots, key=len)
    current = Path(root)
    for part in Path(target).relative_to(root).parts[:-1]:
        current = current / part
        if current.is_symlink():
            raise RunFolderError(
                f"{current} is a symbolic link (to {os.readlink(current)!r}); a run writes only inside its folder "
                f"{root}: replace the link by a real folder (or remove it) and retry")


def make_folder(path: str | Path) -> Path:
    """``mkdir -p path``, refusing a link out of a run folder on the way (see :func:`check_inside_run`)."""
    path = Path(path)
    check_inside_run(path / "_")
    path.mkdir(parents=True, exist_ok=True)
    return path


def open_inside_run(path: str | Path, flags: int) -> int:
    """``os.open`` of a file of a run folder that is written in place (the lock, an appended log).

    The file is opened without following a symbolic link and must be a regular file with one name
    (a hard link would let the write reach a file elsewhere). Raises :class:`RunFolderError` otherwise.
    """
    path = Path(path)
    check_inside_run(path)
    if os.path.islink(path):  # O_NOFOLLOW does this on POSIX; Windows has no such flag
        raise RunFolderError(f"{path} is a symbolic link (to {os.readlink(path)!r}); a run writes only inside "
                             "its folder: remove the link and retry")
    try:
        handle = os.open(path, flags | _NO_FOLLOW, 0o666)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise RunFolderError(f"{path} is a symbolic link; a run writes only inside its folder: "
                                 "remove the link and retry") from None
        raise
    status = os.fstat(handle)
    if not stat.S_ISREG(status.st_mode) or status.st_nlink > 1:
        os.close(handle)
        what = "not a regular file" if not stat.S_ISREG(status.st_mode) else f"a hard link ({status.st_nlink} names)"
        raise RunFolderError(f"{path} is {what}; a run writes only its own files: remove it and retry")
    return handle


def _try_lock(handle: int) -> bool:
    """Take an exclusive lock on the open file ``handle`` without waiting; False when another process holds it.

    POSIX: ``fcntl.flock``; Windows: ``msvcrt.locking`` of one byte far past the pid. Both are
    released by the system when the process ends. The modules are imported here, not at import
    time, so every module of the package imports on both systems.
    """
    if sys.platform == "win32":
        import msvcrt

        os.lseek(handle, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(handle, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno not in (errno.EWOULDBLOCK, errno.EACCES, errno.EAGAIN):
            raise
        return False
    return True


def _read_pid(handle: int) -> str:
    os.lseek(handle, 0, os.SEEK_SET)
    return os.read(handle, 64).decode(errors="replace").strip()


def _write_pid(handle: int) -> None:
    os.ftruncate(handle, 0)
    os.lseek(handle, 0, os.SEEK_SET)
    os.write(handle, f"{os.getpid()}\n".encode())


@contextlib.contextmanager
def atomic_replace(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``.

    A reader never sees a partial file: either the old content or the new one. The data is flushed
    to disk before the rename, and the file gets the mode ``open`` would give a new file (0666 less
    the umask), not ``mkstemp``'s private 0600. A ``path`` that is a symbolic link is replaced by the
    file, never written through; inside a run folder, a linked folder on the way is refused
    (:func:`check_inside_run` raises :class:`RunFolderError`).
    """
    path = Path(path)
    make_folder(path.parent)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    os.chmod(temporary, 0o666 & ~_umask())
    try:
        yield Path(temporary)
        if os.path.exists(temporary):
            with open(temporary, "rb") as written:
                os.fsync(written.fileno())
        os.replace(temporary, path)
    except OSError as error:  # a full disk, a file size limit: say which file, and that it is as it was
        error.add_note(f"writing {path} failed (is the disk full?); it was left as it was")
        raise
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_replace(path) as temporary:
        temporary.write_text(text)


def save_arrays_atomic(path: str | Path, **arrays) -> None:
    """Write numpy ``arrays`` to the ``.npz`` file ``path`` atomically."""
    import numpy as np

    with atomic_replace(path) as temporary, open(temporary, "wb") as handle:
        np.savez(handle, **arrays)


class MetricsLog:
    """Append-only ``metrics.jsonl``; on resume, records past the restored checkpoint are dropped."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def append(self, record: dict[str, Any]) -> None:
        """Append ``record`` as one JSON line; a line cut short by a crash is kept apart from it."""
        line = (json.dumps(record, sort_keys=False) + "\n").encode()
        make_folder(self.path.parent)
        handle = open_inside_run(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND)
        with os.fdopen(handle, "a+b") as stream:
            if stream.tell() > 0:
                stream.seek(-1, os.SEEK_END)
                if stream.read(1) != b"\n":  # a line cut short by a crash: keep it apart from this record
                    line = b"\n" + line
            stream.write(line)

    def records(self, fit: str | None = None) -> list[dict[str, Any]]:
        """All records, or those of one fit; a line that is not a whole JSON object (cut short by a crash) is skipped."""
        rows = self._read()[0]
        return [row for row in rows if fit is None or row.get("fit") == fit]

    def truncate(self, fit: str, after_epoch: int) -> None:
        """Drop the records of ``fit`` whose epoch is past ``after_epoch`` (they will be produced again).

        Lines cut short by a crash are dropped too. The file is rewritten (atomically) only when
        something is dropped.
        """
        rows, torn = self._read()
        kept = [r for r in rows if not (r.get("fit") == fit and r.get("epoch", 0) > after_epoch)]
        if torn or len(kept) != len(rows):
            write_text_atomic(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def replace_fits(self, records: list[dict[str, Any]]) -> None:
        """Replace every record of the fits named in ``records`` by ``records`` (one atomic rewrite).

        Used by the grid runner's driver to take in a finished task's own log; doing it twice leaves
        the file as doing it once.
        """
        fits = {record.get("fit") for record in records}
        kept = [row for row in self._read()[0] if row.get("fit") not in fits]
        write_text_atomic(self.path, "".join(json.dumps(r) + "\n" for r in [*kept, *records]))

    def _read(self) -> tuple[list[dict[str, Any]], int]:
        """The whole records and the number of lines that are not whole JSON objects."""
        if not self.path.exists():
            return [], 0
        rows, torn = [], 0
        for line in self.path.read_bytes().decode(errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                torn += 1
                continue
            if isinstance(row, dict):
                rows.append(row)
            else:
                torn += 1
        return rows, torn


def checkpoint_folder(run_path: str | Path, fit: str) -> Path:
    """The checkpoints of fit ``fit`` in the run folder ``run_path`` (for tasks, which get a path, not a RunDir)."""
    return register_run_folder(run_path) / "checkpoints" / fit


def _check_reusable(path: Path) -> list[Path]:
    """The leftovers (temporary files) of an existing ``--out`` folder that a new run may take over: one holding
    nothing else but a ``run.lock``. ``FileExistsError`` in one line otherwise: a run (``config.yaml``) is
    continued with ``--resume``; any other folder is the user's and is left untouched."""
    entries = [entry for entry in path.iterdir() if entry.name != LOCK_NAME]
    if all(_is_temporary(entry.name) and entry.is_file() for entry in entries):
        return entries
    if (path / "config.yaml").is_file():
        raise FileExistsError(f"run folder {str(path)!r} already holds a run; continue it with "
                              f"`qml-imaging run --resume {path}` or choose another --out")
    shown = ", ".join(sorted(entry.name for entry in entries)[:3]) + (", ..." if len(entries) > 3 else "")
    raise FileExistsError(f"--out {str(path)!r} is a folder that is not a run (it holds {shown}); give a new or "
                          f"empty folder for the run, e.g. --out {path / 'run'}")


class RunDir:
    """One run's folder: its config, metrics, checkpoints, report and figures."""

    def __init__(self, path: str | Path, config: ExperimentConfig):
        self.path = register_run_folder(path)
        self.config = config
        self.metrics = MetricsLog(self.path / "metrics.jsonl")
        self.created_folder = False  # set by create() when it made the folder itself

    @classmethod
    def create(cls, config: ExperimentConfig, out: str | Path | None = None, root: str | Path = "runs",
               *, lock: bool = False) -> RunDir:
        """Make a new run folder (``out``, or ``root/<name>-<timestamp>``) and write ``config.yaml``.

        An existing folder is accepted when it is empty but for temporary files a crash left behind
        (which are removed). With ``lock`` the folder is locked (see :meth:`lock`) before it is checked.
        """
        if out is None:
            stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            out = Path(root) / f"{config.name}-{stamp}"
        path = Path(out)
        if path.exists() and not path.is_dir():
            raise FileExistsError(f"--out {str(path)!r} is an existing file, not a folder; give a folder path for the run")
        created = not path.exists()
        if not created:
            _check_reusable(path)  # before anything is written into the user's folder
        path.mkdir(parents=True, exist_ok=True)
        run = cls(path, config)
        run.created_folder = created
        if lock:
            run.lock()
        try:
            leftovers = _check_reusable(path)  # again under the lock: another process may have started a run here
        except FileExistsError:
            run.unlock()
            raise
        for entry in leftovers:
            entry.unlink(missing_ok=True)
        write_text_atomic(path / "config.yaml", dump_config(config))
        return run

    @classmethod
    def open(cls, path: str | Path, *, experiments: tuple[str, ...] | None = None, hint: str = "",
             lock: bool = False, check_files: bool = True) -> RunDir:
        """Reopen an existing run folder (for ``--resume``) from its ``config.yaml``.

        ``experiments``: the kinds of run the caller can use; another kind is refused with a message
        naming both (and ``hint``, where to find the right one). With ``lock`` the folder is locked (see :meth:`lock`).
        ``check_files=False``: the data files the config names need not exist any more (loading a model).
        """
        path = Path(path)
        if path.is_file():
            raise FileNotFoundError(f"{str(path)!r} is a file; give the run folder (the one holding config.yaml)")
        if not (path / "config.yaml").is_file():
            raise FileNotFoundError(f"{str(path)!r} is not a run folder: it has no config.yaml")
        run = cls(path, load_config(path / "config.yaml", check_files=check_files))
        if experiments is not None and run.config.experiment not in experiments:
            expected = " or ".join(repr(kind) for kind in experiments)
            raise RunFolderError(f"{str(path)!r} is a {run.config.experiment!r} run; a {expected} run is needed here"
                                 + (f" ({hint})" if hint else ""))
        if lock:
            run.lock()
        return run

    def lock(self) -> None:
        """Take the folder's exclusive lock (``run.lock``) until :func:`release_locks` or the process ends.

        Raises :class:`RunInUseError` when another process holds it; within one process the lock is
        re-entrant. The lock is an ``flock`` (``msvcrt.locking`` on Windows), so the system releases it
        when its process ends, however it ends (a kill included). A ``run.lock`` that is a symbolic or
        hard link is refused with :class:`RunFolderError` and left as it is (see :func:`open_inside_run`).
        """
        key = os.path.realpath(self.path)
        if key in _held_locks:
            return
        handle = open_inside_run(self.path / LOCK_NAME, os.O_RDWR | os.O_CREAT)
        if not _try_lock(handle):
            holder = _read_pid(handle)
            os.close(handle)
            raise RunInUseError(
                f"run folder {str(self.path)!r} is in use by another process"
                f"{f' (pid {holder})' if holder.isdigit() else ''}; wait for it to finish or stop it, then retry"
            )
        _write_pid(handle)
        _held_locks[key] = handle

    def unlock(self) -> None:
        """Release the lock taken by :meth:`lock` (it is released at exit anyway)."""
        handle = _held_locks.pop(os.path.realpath(self.path), None)
        if handle is not None:
            os.close(handle)

    def discard_if_unused(self) -> bool:
        """Remove what :meth:`create` wrote when no work has been saved yet; True when the folder was cleared.

        A run that fails before any training (a bad input found by its pipeline) must not leave a
        folder that blocks running the same command again. A folder holding anything besides
        ``config.yaml``, the lock, temporary files and empty folders is kept.
        """
        entries = list(self.path.iterdir()) if self.path.is_dir() else []
        for entry in entries:
            if entry.is_dir():
                if any(part.is_file() for part in entry.rglob("*")):
                    return False
            elif entry.name not in ("config.yaml", LOCK_NAME) and not _is_temporary(entry.name):
                return False
        self.unlock()
        for entry in entries:
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        if self.created_folder:
            with contextlib.suppress(OSError):
                self.path.rmdir()
        return True

    def checkpoint_dir(self, fit: str) -> Path:
        """The checkpoint folder of ``fit``: ``<run>/checkpoints/<fit>``."""
        return checkpoint_folder(self.path, fit)

    def figure_path(self, name: str) -> Path:
        """The path of figure ``name``: ``<run>/<name>.png``."""
        return self.path / f"{name}.png"

    def write_report(self, summary: dict[str, Any], details: dict[str, Any] | None = None) -> Path:
        """Write ``report.json`` with the headline ``summary`` and the run's provenance."""
        report = {
            "experiment": self.config.experiment,
            "name": self.config.name,
            "description": self.config.description,
            "finished": _dt.datetime.now().isoformat(timespec="seconds"),
            "summary": summary,
            "details": details or {},
            "environment": environment(),
            **_training_precision(self.config),
            "figures": sorted(p.name for p in self.path.glob("*.png")),
        }
        path = self.path / "report.json"
        write_text_atomic(path, json.dumps(report, indent=2, default=_json_default) + "\n")
        return path


def _training_precision(config: ExperimentConfig) -> dict[str, Any]:
    """``{"training_precision": ..}`` (:func:`qml_imaging.environment.precision_report`) for a config with a
    ``train`` section, else nothing (and no torch import)."""
    train = getattr(config, "train", None)
    if not isinstance(train, TrainSettings):
        return {}
    return {"training_precision": precision_report(train.precision, train.channels_last, train.device)}


def release_locks() -> None:
    """Release every run-folder lock this process holds (the command is done with its folders)."""
    while _held_locks:
        os.close(_held_locks.popitem()[1])


@contextlib.contextmanager
def holding_lock(path: str | Path) -> Iterator[None]:
    """Hold the lock of folder ``path`` (see :meth:`RunDir.lock`) for the block.

    Raises :class:`RunInUseError` when another process holds it. A lock this process already held
    (a command that locked the folder on opening it) stays held after the block; one taken here is
    released.
    """
    folder = RunDir(path, None)
    already_held = os.path.realpath(folder.path) in _held_locks
    folder.lock()
    try:
        yield
    finally:
        if not already_held:
            folder.unlock()


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to report.json")
