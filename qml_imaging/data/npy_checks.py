"""NumPy ``.npy`` / ``.npz`` files opened only after every array's header is checked against the bytes that hold it.

A truncated or damaged file, or a header that promises more data than the file holds (which would make
``numpy.load`` allocate that much before it reads), is one ``ValueError`` naming the file, what is wrong
and the fix, before anything is allocated. Object arrays are refused (nothing is unpickled).
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import IO

import numpy as np

FIX = "write it again (numpy.save / numpy.savez, or qml_imaging.data.hbt_files.write_npz)"
_DAMAGE = (zipfile.BadZipFile, EOFError, OSError, KeyError, ValueError)


class DamagedArrayFile(ValueError):
    """A NumPy file whose bytes do not hold what its headers promise."""


def load_checked(path: Path):
    """``numpy.load(path, allow_pickle=False)`` of a ``.npy`` or ``.npz`` file whose array headers were checked first
    (an ``NpzFile`` for ``.npz``: use it in a ``with`` block). ``ValueError`` naming the file when it is damaged."""
    try:
        with path.open("rb") as handle:
            zipped = handle.read(2) == b"PK"
        if zipped:
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    if info.filename.endswith(".npy"):
                        with archive.open(info) as member:
                            _check_header(member, info.file_size, f"{path} (member {info.filename})")
        else:
            with path.open("rb") as handle:
                _check_header(handle, path.stat().st_size, str(path))
        return np.load(path, allow_pickle=False)
    except DamagedArrayFile:
        raise
    except _DAMAGE as error:
        raise DamagedArrayFile(f"{path}: a damaged NumPy file ({type(error).__name__}: {error}); {FIX}") from None


def _check_header(handle: IO[bytes], size: int, where: str) -> None:
    version = np.lib.format.read_magic(handle)
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = reader(handle)
    if dtype.hasobject:
        raise DamagedArrayFile(f"{where}: holds Python objects (dtype {dtype}), which are never unpickled; store "
                               f"numbers only")
    needed = math.prod(shape) * dtype.itemsize
    held = size - handle.tell()
    if needed > held:
        raise DamagedArrayFile(f"{where}: its header promises an array {shape} of {dtype} ({needed} bytes) but "
                               f"{held} bytes follow; the file is truncated or damaged: {FIX}")
