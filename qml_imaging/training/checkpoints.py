"""Training checkpoints: atomic, checksummed, safe to load, with the full RNG state for exact resume.

A checkpoint folder holds ``last.pt`` and, once a second checkpoint has been written, ``previous.pt``
(the one before it). Both are written atomically (temporary file + rename), so a crash leaves either
the old or the new file, never a mix. A file damaged afterwards (truncated copy, full disk, bit rot)
is detected by the CRC-32 that ``torch.save`` stores for every record, and loading falls back to
``previous.pt``.

Loading never runs code from the file: everything is read with ``torch.load(weights_only=True)``,
which accepts tensors and plain data (dicts, lists, tuples, numbers, strings) only. That is why the
RNG states are stored as tensors and lists rather than NumPy's and Python's own objects. A file that
holds anything else is refused with :class:`UnsafeCheckpointError`; its payload is never executed.
"""

from __future__ import annotations

import os
import pickle
import random
import re
import shutil
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qml_imaging.runs import RunFolderError, atomic_replace

CHECKPOINT_NAME = "last.pt"
PREVIOUS_NAME = "previous.pt"
_REQUIRED_KEYS = ("epoch", "model")


class CheckpointError(RunFolderError):
    """A checkpoint file that cannot be used (unreadable, damaged, or not a training checkpoint)."""


class UnsafeCheckpointError(CheckpointError):
    """A file that holds Python objects other than tensors and plain data: refused, never unpickled."""


def save_checkpoint(directory: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``directory/last.pt`` atomically; the checkpoint it replaces becomes ``previous.pt``."""
    path = Path(directory) / CHECKPOINT_NAME
    with atomic_replace(path) as temporary:
        torch.save(state, temporary)
        if path.is_file():
            _keep_as_previous(path)
    return path


def load_checkpoint(directory: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
    """The state saved in ``directory``: ``last.pt``, or ``previous.pt`` when ``last.pt`` is damaged.

    Returns None when the folder holds no checkpoint yet. Raises :class:`UnsafeCheckpointError` for a
    file holding anything but tensors and plain data (no fallback: the folder has been tampered
    with), and :class:`CheckpointError` when no file is usable.
    """
    directory = Path(directory)
    paths = [directory / name for name in (CHECKPOINT_NAME, PREVIOUS_NAME) if (directory / name).is_file()]
    if not paths:
        return None
    problems: list[str] = []
    for path in paths:
        try:
            state = load_state_file(path, map_location)
            missing = [key for key in _REQUIRED_KEYS if not isinstance(state, dict) or key not in state]
            if missing:
                raise CheckpointError(f"{path} is not a qml-imaging training checkpoint (it lacks {missing})")
        except UnsafeCheckpointError:
            raise
        except CheckpointError as error:
            problems.append(str(error))
            continue
        if problems:
            print(f"qml-imaging: {problems[0]}; using {path} (epoch {state['epoch']}) instead", file=sys.stderr)
        return state
    raise CheckpointError(
        f"no usable checkpoint in {directory}: {'; '.join(problems)}; "
        f"delete {directory} to train this fit again from the start"
    )


def load_state_file(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """Read a file written by ``torch.save`` safely: CRC-checked, tensors and plain data only.

    Raises :class:`CheckpointError` naming the file when it is damaged and
    :class:`UnsafeCheckpointError` when it holds other Python objects (which are not unpickled).
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            _check_unpacked_size(path, archive)
            damaged = archive.testzip()
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
        raise CheckpointError(f"{path} is damaged (truncated or not a torch.save file: {error})") from error
    if damaged is not None:
        raise CheckpointError(f"{path} is damaged (record {damaged!r} fails its CRC-32 check)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"Unsupported (global|operand)\W*(?:GLOBAL\s+)?([^\s]+)", str(error))
        if found is None and "Weights only load failed" not in str(error):
            raise CheckpointError(f"{path} is damaged ({error})") from error
        what = f"{found.group(1)} {found.group(2)}" if found else "a type weights_only loading does not allow"
        raise UnsafeCheckpointError(
            f"refusing to load {path}: it holds Python objects other than tensors and plain data "
            f"(it asks for {what}); qml-imaging "
            "never writes such files, so it was written by an older version or altered by someone else. "
            "Nothing in it was run; delete it or use a run folder you trust"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError) as error:
        raise CheckpointError(f"{path} is damaged ({type(error).__name__}: {error})") from error


def _check_unpacked_size(path: Path, archive: zipfile.ZipFile) -> None:
    """Refuse an archive whose records would unpack to more than the file holds, before unpacking any.

    ``torch.save`` stores every record uncompressed, so the sizes in the zip directory add up to less
    than the file; a compressed record (a 2 MB file claiming 2 GiB) was not written by torch and is
    refused with :class:`CheckpointError` before a byte of it is decompressed.
    """
    records = archive.infolist()
    unpacked = sum(record.file_size for record in records)
    on_disk = path.stat().st_size
    packed = [record.filename for record in records
              if record.compress_type != zipfile.ZIP_STORED or record.compress_size != record.file_size]
    if packed or unpacked > on_disk:
        raise CheckpointError(
            f"{path} is not a file torch.save wrote: its records unpack to {unpacked} bytes from a {on_disk}-byte "
            f"file{f' (compressed records such as {packed[0]!r})' if packed else ''}, and torch.save stores records "
            "uncompressed; it was not unpacked: delete it or use a run folder you trust")


def _keep_as_previous(path: Path) -> None:
    """Make ``path``'s current content ``previous.pt`` atomically (a hard link when the file system allows)."""
    with atomic_replace(path.with_name(PREVIOUS_NAME)) as temporary:
        temporary.unlink()
        try:
            os.link(path, temporary)
        except OSError:
            shutil.copyfile(path, temporary)


def capture_rng_state() -> dict[str, Any]:
    """State of every random generator a training step may draw from (torch CPU and CUDA, NumPy, Python).

    Everything is a tensor or plain data, so checkpoints holding it load with ``weights_only=True``.
    """
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "python": {"version": int(version), "internal": torch.tensor(internal, dtype=torch.int64),
                   "gauss_next": gauss_next},
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    numpy = state["numpy"]
    np.random.set_state((numpy["kind"], numpy["keys"].cpu().numpy().astype(np.uint32), numpy["position"],
                         numpy["has_gauss"], numpy["cached_gaussian"]))
    python = state["python"]
    random.setstate((python["version"], tuple(int(v) for v in python["internal"].tolist()), python["gauss_next"]))


def seed_everything(seed: int) -> None:
    """Seed torch, NumPy and Python's ``random`` from one integer."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
