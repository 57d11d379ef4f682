"""Hooks into :class:`qml_imaging.training.Trainer`: subclass :class:`Callback` and override what you need.

The trainer calls its callbacks on the main process only, after it has written the same record to
``metrics.jsonl`` (the source of truth), in this order within a fit:

* ``on_fit_start(trainer, start_epoch)``: once, before the first epoch trained in this session
  (``start_epoch`` > 0 when the fit resumes from a checkpoint; records past it were dropped from
  ``metrics.jsonl``, and a mirror should drop them too);
* ``on_epoch_end(trainer, record)``: after each epoch, with the record logged
  (``{"fit", "epoch", "train_loss", "lr", ...}``);
* ``on_evaluation(trainer, record)``: after each evaluation (``{"fit", "epoch", "eval/<name>": value}``);
* ``on_checkpoint(trainer, epoch, folder)``: after a checkpoint of ``epoch`` was written to ``folder``;
* ``on_fit_end(trainer, result)``: after the last epoch, with the :class:`~qml_imaging.training.FitResult`.

An exception raised by a callback stops the fit, as any training error does. ``trainer`` is the calling
:class:`~qml_imaging.training.Trainer` (typed ``Any`` here: the trainer imports this module, not the reverse).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any



class Callback:
    """A no-op hook at each point of a fit; see the module docstring for when each one runs."""

    def on_fit_start(self, trainer: Any, start_epoch: int) -> None:
        """Called once before training, with the epoch the fit starts from (0, or the resumed one)."""

    def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
        """Called after each epoch with the record just appended to ``metrics.jsonl``."""

    def on_evaluation(self, trainer: Any, record: dict[str, Any]) -> None:
        """Called after each evaluation with the record just appended to ``metrics.jsonl``."""

    def on_checkpoint(self, trainer: Any, epoch: int, folder: Path) -> None:
        """Called after the checkpoint of ``epoch`` was written to ``folder``."""

    def on_fit_end(self, trainer: Any, result: Any) -> None:
        """Called after the last epoch; a sink closes its files here."""


class RecordSink(Callback):
    """A callback that mirrors every ``metrics.jsonl`` record (epochs and evaluations) through :meth:`write`."""

    def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
        """Mirror the epoch's record."""
        self.write(record)

    def on_evaluation(self, trainer: Any, record: dict[str, Any]) -> None:
        """Mirror the evaluation's record."""
        self.write(record)

    def write(self, record: dict[str, Any]) -> None:
        """Write one record ``{"fit": str, "epoch": int, name: float, ...}``; subclasses implement it."""
        raise NotImplementedError


def scalars(record: dict[str, Any]) -> dict[str, float]:
    """The record's logged values: every key but ``fit`` and ``epoch``, as floats."""
    return {name: float(value) for name, value in record.items() if name not in ("fit", "epoch")}
