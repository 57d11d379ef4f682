"""Interrupt a run in this process (Ctrl-C at a checkpoint or in the middle of an epoch), resume it, and
collect every number it reported, for comparison with an uninterrupted run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from qml_imaging.cli import main
from qml_imaging.quantum.fast import caches
from qml_imaging.runs import RunDir
from qml_imaging.training.trainer import Trainer

# Wall-clock measurements differ between any two runs; everything else a run reports must not.
# (``lm_mape_by_seconds`` is an error per acquisition time, compared like every other number.)
TIMING = re.compile(r"^(seconds|speedup|speedup_is_lower_bound|environment|started|finished)$|_seconds$|seconds_per_")


class Interruptions:
    """Raise KeyboardInterrupt (what Ctrl-C raises) in every fit of a run, once at each of two points: right
    after the fit's first checkpoint is written, and in the epoch after that checkpoint (after the epoch's
    first batch, before it ends), so that each fit resumes once from a checkpoint at its boundary and once
    after losing part of an epoch; and once when the run, its work done, first writes ``report.json``
    (pipelines that train nothing are stopped there). ``stops`` ((fit, point) pairs; ``("run", "report")``)
    is shared by the sessions of one run, and ``stoppable`` collects the fits that checkpoint before their
    last epoch (those that can be stopped twice)."""

    def __init__(self, monkeypatch, stops: list[tuple[str, str]], stoppable: set[str]):
        save, train_epoch, fit, write_report = Trainer._save, Trainer._train_epoch, Trainer.fit, RunDir.write_report

        def interrupting_report(run_dir, *args, **kwargs):
            if ("run", "report") not in stops:
                stops.append(("run", "report"))
                raise KeyboardInterrupt
            return write_report(run_dir, *args, **kwargs)

        def recording_fit(trainer, *args, **kwargs):
            if trainer.checkpoint_dir is not None and trainer.settings.epochs > trainer.settings.checkpoint_every:
                stoppable.add(trainer.fit_name)
            return fit(trainer, *args, **kwargs)

        def interrupting_save(trainer, epoch, *args, **kwargs):
            save(trainer, epoch, *args, **kwargs)
            if (trainer.fit_name, "checkpoint") not in stops and trainer.checkpoint_dir is not None:
                stops.append((trainer.fit_name, "checkpoint"))
                raise KeyboardInterrupt

        def interrupting_epoch(trainer, batches, epoch, *args, **kwargs):
            if epoch == trainer.settings.checkpoint_every and (trainer.fit_name, "epoch") not in stops:
                stops.append((trainer.fit_name, "epoch"))
                batches = self._cut(batches)
            return train_epoch(trainer, batches, epoch, *args, **kwargs)

        monkeypatch.setattr(RunDir, "write_report", interrupting_report)
        monkeypatch.setattr(Trainer, "fit", recording_fit)
        monkeypatch.setattr(Trainer, "_save", interrupting_save)
        monkeypatch.setattr(Trainer, "_train_epoch", interrupting_epoch)

    @staticmethod
    def _cut(batches):
        for index, batch in enumerate(batches):
            if index == 1:
                break
            yield batch
        raise KeyboardInterrupt


def forget_process_state() -> None:
    """What a new process would not have: the fast simulator's plans and caches (built lazily)."""
    caches.release()


def run_to_end(config_path: Path, out: Path) -> None:
    """``qml-imaging run CONFIG --out OUT``, uninterrupted."""
    assert main(["run", str(config_path), "--out", str(out)]) == 0


def run_interrupted(config_path: Path, out: Path, monkeypatch, sessions: int = 100
                    ) -> tuple[list[tuple[str, str]], set[str]]:
    """Run with :class:`Interruptions`, resuming with ``run --resume`` in a fresh-process state after each
    stop until the run finishes; returns the stops ((fit, "checkpoint" or "epoch") in order) and the fits
    that could be stopped at both points."""
    stops: list[tuple[str, str]] = []
    stoppable: set[str] = set()
    for session in range(sessions):
        with monkeypatch.context() as patch:
            Interruptions(patch, stops, stoppable)
            arguments = ["run", str(config_path), "--out", str(out)] if session == 0 else ["run", "--resume", str(out)]
            code = main(arguments)
        forget_process_state()
        if code != 130:
            assert code == 0, f"session {session + 1} of the interrupted run failed"
            return stops, stoppable
    raise AssertionError(f"the run did not finish in {sessions} sessions")


def reported_numbers(run_path: Path) -> dict:
    """Every ``metrics.jsonl`` row (per file, per fit, in order) and ``report.json`` without wall-clock times."""
    metrics = {}
    for path in sorted(run_path.rglob("metrics.jsonl")):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        by_fit: dict[str, list] = {}
        for row in rows:
            by_fit.setdefault(row.get("fit", ""), []).append(_without_times(row))
        metrics[path.relative_to(run_path).as_posix()] = by_fit
    report = json.loads((run_path / "report.json").read_text().replace(json.dumps(str(run_path))[1:-1], "<run>"))
    return {"metrics": metrics, "report": _without_times(report)}


def _without_times(value):
    if isinstance(value, dict):
        return {key: _without_times(item) for key, item in value.items() if not TIMING.search(str(key))}
    if isinstance(value, list):
        return [_without_times(item) for item in value]
    return value


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path
