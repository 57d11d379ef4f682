"""Run folders: every run writes one self-describing directory.

Layout of a run folder::

    config.yaml        the fully resolved config (every default written out)
    metrics.jsonl      one JSON object per line: {"fit": ..., "epoch": ..., "train_loss": ...}
    checkpoints/       one sub-folder per fit, holding last.pt (see qml_imaging.training.checkpoints)
    report.json        {"experiment", "name", "summary": {headline numbers}, "details", "environment", ...}
    *.png              figures

Every file that a crash could leave half-written is written atomically (temp file + rename).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qml_imaging.config import ExperimentConfig, dump_config, load_config


@contextlib.contextmanager
def atomic_replace(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``.

    A reader never sees a partial file: either the old content or the new one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        yield Path(temporary)
        os.replace(temporary, path)
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
        with self.path.open("a") as stream:
            stream.write(json.dumps(record, sort_keys=False) + "\n")

    def records(self, fit: str | None = None) -> list[dict[str, Any]]:
        """All records, or those of one fit."""
        if not self.path.exists():
            return []
        rows = [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
        return [row for row in rows if fit is None or row.get("fit") == fit]

    def truncate(self, fit: str, after_epoch: int) -> None:
        """Drop the records of ``fit`` whose epoch is past ``after_epoch`` (they will be produced again)."""
        kept = [r for r in self.records() if not (r.get("fit") == fit and r.get("epoch", 0) > after_epoch)]
        write_text_atomic(self.path, "".join(json.dumps(r) + "\n" for r in kept))


class RunDir:
    """One run's folder: its config, metrics, checkpoints, report and figures."""

    def __init__(self, path: str | Path, config: ExperimentConfig):
        self.path = Path(path)
        self.config = config
        self.metrics = MetricsLog(self.path / "metrics.jsonl")

    @classmethod
    def create(cls, config: ExperimentConfig, out: str | Path | None = None, root: str | Path = "runs") -> RunDir:
        """Make a new run folder (``out``, or ``root/<name>-<timestamp>``) and write ``config.yaml``."""
        if out is None:
            stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            out = Path(root) / f"{config.name}-{stamp}"
        path = Path(out)
        if path.exists() and any(path.iterdir()):
            raise FileExistsError(
                f"run folder {str(path)!r} already holds a run; continue it with "
                f"`qml-imaging run --resume {path}` or choose another --out"
            )
        path.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path / "config.yaml", dump_config(config))
        return cls(path, config)

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """Reopen an existing run folder (for ``--resume``) from its ``config.yaml``."""
        path = Path(path)
        if not (path / "config.yaml").is_file():
            raise FileNotFoundError(f"{str(path)!r} is not a run folder: it has no config.yaml")
        return cls(path, load_config(path / "config.yaml"))

    def checkpoint_dir(self, fit: str) -> Path:
        return self.path / "checkpoints" / fit

    def figure_path(self, name: str) -> Path:
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
            "figures": sorted(p.name for p in self.path.glob("*.png")),
        }
        path = self.path / "report.json"
        write_text_atomic(path, json.dumps(report, indent=2, default=_json_default) + "\n")
        return path


def environment() -> dict[str, str]:
    """Versions and hardware a result was produced with."""
    import torch

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
        "cpu_threads": str(torch.get_num_threads()),
    }


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to report.json")
