"""NumPy ``.npz`` archives read whole and checked, so a damaged one is one line naming the file and the fix.

:func:`read_npz` checks the zip directory before unpacking anything (the archive's records must be
whole and their unpacked size must fit in memory, :func:`qml_imaging.limits.check_bytes`), then reads
the named arrays with ``allow_pickle=False``. A truncated file, a file that is not an NPZ archive, a
record that fails its CRC-32 or a missing array is a :class:`ValueError` naming the file, what is
wrong with it and ``fix`` (what to do about it), instead of NumPy's ``BadZipFile`` or ``KeyError``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from qml_imaging.limits import check_bytes


def read_npz(path: str | Path, names: tuple[str, ...] | None = None, *, what: str = "an NPZ archive",
             fix: str = "write it again or restore it from a copy") -> dict[str, np.ndarray]:
    """The arrays ``names`` (all when None) of the ``.npz`` file ``path``, as a dict of ``np.ndarray``.

    ``what`` says what the file is for (in the message), ``fix`` what to do about a damaged one.
    Raises FileNotFoundError for a missing file and ValueError (one line) for a damaged one.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist")
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(record.file_size for record in archive.infolist())
            check_bytes(f"{path} ({what})", unpacked, fix)
        with np.load(path, allow_pickle=False) as stored:
            missing = [name for name in names or () if name not in stored.files]
            if missing:
                raise KeyError(f"it has no array {missing[0]!r} (it holds {stored.files})")
            return {name: stored[name] for name in (names or stored.files)}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as error:
        reason = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
        problem = "not a whole NPZ archive (truncated, or another kind of file)" \
            if isinstance(error, (zipfile.BadZipFile, EOFError)) else reason
        raise ValueError(f"{path} ({what}) is damaged: {problem}; {fix}") from None
