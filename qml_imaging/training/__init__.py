"""The one training loop (:class:`Trainer`), its checkpoints, losses and metrics."""

from qml_imaging.training.checkpoints import seed_everything
from qml_imaging.training.trainer import FitResult, Trainer, supervised

__all__ = ["FitResult", "Trainer", "seed_everything", "supervised"]
