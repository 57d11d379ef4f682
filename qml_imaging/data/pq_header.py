"""PicoQuant tagged file headers (PTU, PHU), read with every length checked against the file before it is used.

Layout (PicoQuant's unified tag format, as documented in PicoQuant's public file-format demos): an
8-byte magic (``PQTTTR\\0\\0`` for PTU, ``PQHISTO\\0`` for PHU), an 8-byte version string, then tags of
48 bytes: a 32-byte NUL-padded name, an ``int32`` index (-1: not part of an array), a ``uint32`` type
code and an 8-byte value; for strings, float arrays and binary blobs the value is the byte length of
data that follows the tag. The tag ``Header_End`` closes the header; a PTU file's records follow it.

A damaged header (a name or string that is not text, a length beyond the file, a header without
``Header_End``, a missing tag) is one ``ValueError`` naming the file, what is wrong and the fix;
nothing is allocated from a length that has not been checked against the file's size.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

TAG_BYTES = 48
MAX_TAGS = 100_000
"""More tags than this is a damaged header (real files hold a few hundred)."""
FIX = "copy or export the file again from the acquisition software"
_EIGHT_BYTE = {0xFFFF0008: "empty", 0x00000008: "bool", 0x10000008: "int", 0x11000008: "int", 0x12000008: "int",
               0x20000008: "float", 0x21000008: "float"}
_SIZED = {0x2001FFFF: "floats", 0x4001FFFF: "text", 0x4002FFFF: "wide", 0xFFFFFFFF: "blob"}


def read_header(path: Path, magic: bytes) -> tuple[dict[str, Any], int]:
    """``(tags, offset of the first byte after the header)`` of a PicoQuant file starting with ``magic``.

    ``tags`` maps each name to its value (``int``, ``float``, ``str``, ``bytes`` or a tuple of floats); a
    tag with an index >= 0 maps to a list indexed by it. ``ValueError`` for a damaged header.
    """
    size = path.stat().st_size
    with path.open("rb") as handle:
        if handle.read(8) != magic:
            raise ValueError(f"{path}: not a PicoQuant file (it does not start with {magic!r})")
        handle.seek(16)
        tags: dict[str, Any] = {}
        for _ in range(MAX_TAGS):
            name, index, value = _read_tag(path, handle, size)
            if name == "Header_End":
                return tags, handle.tell()
            _store(path, tags, name, index, value)
    raise ValueError(f"{path}: damaged header: no Header_End tag in the first {MAX_TAGS} tags; {FIX}")


def _read_tag(path: Path, handle, size: int) -> tuple[str, int, Any]:
    raw = handle.read(TAG_BYTES)
    if len(raw) < TAG_BYTES:
        raise ValueError(f"{path}: damaged header: the file ends inside the header (no Header_End tag after "
                         f"{handle.tell()} bytes); the file is truncated: {FIX}")
    try:
        name = raw[:32].split(b"\0", 1)[0].decode("ascii")
    except UnicodeDecodeError:
        raise ValueError(f"{path}: damaged header: a tag name at byte {handle.tell() - TAG_BYTES} is not text "
                         f"({raw[:16]!r}); {FIX}") from None
    index, kind = struct.unpack("<iI", raw[32:40])
    if kind in _EIGHT_BYTE:
        form = _EIGHT_BYTE[kind]
        return name, index, struct.unpack("<d" if form == "float" else "<q", raw[40:48])[0]
    if kind not in _SIZED:
        raise ValueError(f"{path}: damaged header: tag {name!r} has the unknown type code {kind:#010x}; {FIX}")
    length = struct.unpack("<q", raw[40:48])[0]
    if length < 0 or handle.tell() + length > size:
        raise ValueError(f"{path}: damaged header: tag {name!r} claims {length} bytes of data but the file has "
                         f"{size - handle.tell()} left; {FIX}")
    return name, index, _sized_value(path, name, _SIZED[kind], handle.read(length))


def _sized_value(path: Path, name: str, form: str, data: bytes) -> Any:
    try:
        if form == "text":
            return data.split(b"\0", 1)[0].decode("utf-8")
        if form == "wide":
            return data.decode("utf-16-le").split("\0", 1)[0]
    except UnicodeDecodeError:
        raise ValueError(f"{path}: damaged header: the text of tag {name!r} is not valid {form} text; {FIX}") from None
    if form == "floats":
        return struct.unpack(f"<{len(data) // 8}d", data[: len(data) // 8 * 8])
    return data


def _store(path: Path, tags: dict[str, Any], name: str, index: int, value: Any) -> None:
    if index < 0:
        tags[name] = value
        return
    values = tags.setdefault(name, [])
    if not isinstance(values, list) or index >= MAX_TAGS:
        raise ValueError(f"{path}: damaged header: tag {name!r} has the index {index} (expected 0..{MAX_TAGS - 1}, "
                         f"not mixed with a single value); {FIX}")
    values.extend([None] * (index + 1 - len(values)))
    values[index] = value


def number(path: Path, tags: dict[str, Any], name: str, default: float | None = None) -> float:
    """Tag ``name`` as a float (``default`` when absent); ``ValueError`` naming the file when it is required."""
    value = tags.get(name, default)
    if value is None:
        raise ValueError(f"{path}: the header lacks the tag {name}; {FIX}")
    if not isinstance(value, int | float):
        raise ValueError(f"{path}: damaged header: tag {name} holds {value!r}, not a number; {FIX}")
    return float(value)
