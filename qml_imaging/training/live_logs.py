"""Live mirrors of ``metrics.jsonl`` for following a fit while it trains: TensorBoard, CSV and MLflow.

Each sink is a :class:`~qml_imaging.training.callbacks.RecordSink` fed by the trainer with the very
records it appends to ``metrics.jsonl``, which stays the source of truth. The config section
``train.logging`` (:class:`~qml_imaging.config.LiveLogSettings`) turns them on; :func:`live_sinks`
builds them for one fit, in the folder of that fit's ``metrics.jsonl``:

* TensorBoard: ``<folder>/tensorboard/<fit>/events.out.tfevents.*``, one scalar per record key, step =
  epoch, stored as float64 tensors (``new_style``, ``double_precision``) so the values read back are
  exactly those of ``metrics.jsonl``. Open with ``tensorboard --logdir RUN_FOLDER``. Every session of a
  fit opens its writer with ``purge_step`` = the first epoch it trains, so TensorBoard (whose reader
  honours a restart after the first session start) drops what an interrupted session logged past
  its checkpoint, as ``metrics.jsonl`` does.
* CSV: ``<folder>/csv/<fit>.csv`` in long form (``fit,epoch,name,value``); a resumed fit keeps the rows
  up to the epoch it resumes from.
* MLflow: one MLflow run per fit (``mlflow.log_metrics`` with step = epoch) in the tracking store that
  MLflow's own settings name; MLflow cannot drop metrics, so a resumed fit logs its redone epochs again.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from qml_imaging.config import LiveLogSettings
from qml_imaging.runs import make_folder, open_inside_run, write_text_atomic
from qml_imaging.training.callbacks import Callback, RecordSink, scalars

CSV_HEADER = ("fit", "epoch", "name", "value")


class TensorBoardSink(RecordSink):
    """Writes records as TensorBoard float64 scalars to ``folder`` (torch's ``SummaryWriter``)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.writer: Any = None

    def on_fit_start(self, trainer: Any, start_epoch: int) -> None:
        """Open the writer, purging the events of earlier sessions past ``start_epoch``."""
        from torch.utils.tensorboard import SummaryWriter

        make_folder(self.folder)  # no link out of the run folder on the way (runs.check_inside_run)
        self.writer = SummaryWriter(log_dir=str(self.folder), purge_step=start_epoch + 1)

    def write(self, record: dict[str, Any]) -> None:
        """One scalar per value at step ``record["epoch"]``, flushed at once."""
        for name, value in scalars(record).items():
            self.writer.add_scalar(name, value, global_step=record["epoch"], new_style=True, double_precision=True)
        self.writer.flush()

    def on_fit_end(self, trainer: Any, result: Any) -> None:
        """Close the event file."""
        self.writer.close()


class CsvSink(RecordSink):
    """Writes records to the CSV file ``path``, one row per value: ``fit,epoch,name,value`` (``repr`` floats)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def on_fit_start(self, trainer: Any, start_epoch: int) -> None:
        """Start the file, keeping the rows up to ``start_epoch`` when resuming."""
        kept: list[list[str]] = []
        if start_epoch and self.path.is_file():
            with open(self.path, newline="") as handle:
                kept = [row for row in list(csv.reader(handle))[1:] if int(row[1]) <= start_epoch]
        lines = [",".join(CSV_HEADER), *(",".join(row) for row in kept)]
        write_text_atomic(self.path, "\n".join(lines) + "\n")

    def write(self, record: dict[str, Any]) -> None:
        """Append the record's rows."""
        handle = open_inside_run(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        with os.fdopen(handle, "a", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            for name, value in scalars(record).items():
                writer.writerow([record["fit"], record["epoch"], name, repr(value)])


class MlflowSink(RecordSink):
    """Logs records to an MLflow run named after the fit (``mlflow.log_metrics``, step = epoch)."""

    def __init__(self, fit_name: str):
        self.fit_name = fit_name

    def on_fit_start(self, trainer: Any, start_epoch: int) -> None:
        """Start the MLflow run of this fit."""
        import mlflow

        mlflow.start_run(run_name=self.fit_name)

    def write(self, record: dict[str, Any]) -> None:
        """Log the record's values at step ``record["epoch"]``."""
        import mlflow

        mlflow.log_metrics(scalars(record), step=record["epoch"])

    def on_fit_end(self, trainer: Any, result: Any) -> None:
        """End the MLflow run."""
        import mlflow

        mlflow.end_run()


def live_sinks(settings: LiveLogSettings, folder: str | Path, fit_name: str) -> list[Callback]:
    """The sinks ``settings`` turns on for the fit ``fit_name`` whose ``metrics.jsonl`` is in ``folder``."""
    folder = Path(folder)
    sinks: list[Callback] = []
    if settings.tensorboard:
        sinks.append(TensorBoardSink(folder / "tensorboard" / fit_name))
    if settings.csv:
        sinks.append(CsvSink(folder / "csv" / f"{fit_name}.csv"))
    if settings.mlflow:
        sinks.append(MlflowSink(fit_name))
    return sinks
