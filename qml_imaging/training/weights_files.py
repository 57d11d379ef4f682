"""A fit's final weights as a safetensors file: what an export (:mod:`qml_imaging.training.export`) holds
in place of the pickled-free-but-torch-format checkpoints, and how loaders read it back.

In an export, each checkpoint folder ``checkpoints/<name>/`` holds ``weights.safetensors`` (the state
dict the run's loader would take from its final checkpoint: the EMA weights when the fit kept an EMA)
and ``weights.json`` (``{"format": 1, "epoch", "ema", "metrics", "seconds"}``), beside the run's
``model.json``. safetensors stores raw tensors with a JSON header: reading it runs no code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from qml_imaging.runs import RunFolderError, atomic_replace, write_text_atomic

WEIGHTS_FILE = "weights.safetensors"
INFO_FILE = "weights.json"
_FORMAT = 1


def write_weights(folder: str | Path, weights: dict[str, torch.Tensor], info: dict[str, Any]) -> None:
    """Write ``weights`` (a state dict) to ``folder/weights.safetensors`` and ``info`` (plain JSON data:
    ``epoch``, ``ema``, ``metrics``, ``seconds``) to ``folder/weights.json``, each atomically.

    Tensors are copied to contiguous CPU tensors of their own (safetensors refuses shared storage)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    tensors = {name: value.detach().cpu().contiguous().clone() for name, value in weights.items()}
    with atomic_replace(folder / WEIGHTS_FILE) as temporary:
        save_file(tensors, str(temporary))
    write_text_atomic(folder / INFO_FILE, json.dumps({"format": _FORMAT, **info}, indent=1, sort_keys=True) + "\n")


def read_weights(folder: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """``(state_dict, info)`` from ``folder`` when it holds exported weights, else None.

    Raises :class:`~qml_imaging.runs.RunFolderError` (one line) for a damaged or foreign file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / WEIGHTS_FILE).is_file():
        return None
    try:
        info = json.loads((folder / INFO_FILE).read_text())
        if info.get("format") != _FORMAT:
            raise ValueError(f"format {info.get('format')!r}, expected {_FORMAT}")
        return load_file(str(folder / WEIGHTS_FILE)), info
    except (OSError, ValueError, AttributeError, SafetensorError) as error:
        raise RunFolderError(f"the exported weights in {folder} are damaged ({error}); export the run again") from None
