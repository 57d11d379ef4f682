"""Atomic training checkpoints with the full RNG state, so a resumed run continues the same trajectory."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qml_imaging.runs import atomic_replace

CHECKPOINT_NAME = "last.pt"


def save_checkpoint(directory: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``directory/last.pt`` atomically (temp file + rename); return the path."""
    path = Path(directory) / CHECKPOINT_NAME
    with atomic_replace(path) as temporary:
        torch.save(state, temporary)
    return path


def load_checkpoint(directory: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
    """The state saved in ``directory/last.pt``, or None when there is none yet."""
    path = Path(directory) / CHECKPOINT_NAME
    if not path.is_file():
        return None
    return torch.load(path, map_location=map_location, weights_only=False)


def capture_rng_state() -> dict[str, Any]:
    """State of every random generator a training step may draw from (torch CPU and CUDA, NumPy, Python)."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def seed_everything(seed: int) -> None:
    """Seed torch, NumPy and Python's ``random`` from one integer."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
