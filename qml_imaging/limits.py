"""Bounds on the sizes a user gives, checked before any work, and the memory this process may still use.

Every size a command takes from its user (images to draw, grid points, histogram bins, normals,
qubits, rates) is checked here before anything is allocated or computed, and refused in one line
naming the option, the value and the limit (an :class:`OptionError`, which the command line prints as
one line with exit status 2). :func:`available_memory` is the memory a new allocation may still take: the least of the
host's ``MemAvailable``, the address-space limit of the process (``RLIMIT_AS``) and the limit of its
container (cgroup v2 ``memory.max``, cgroup v1 ``memory.limit_in_bytes``).

This module imports neither torch nor any POSIX-only module at import time.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

MAX_SAMPLE_IMAGES = 10_000
"""``sample --n``: images drawn by one command (draw more with other ``--seed`` values)."""
MAX_RENDER_POINTS = 2**24
"""``render --size``: grid points (a 4096 x 4096 image) or signal samples of one render."""
MAX_WAV_RATE = 2**31 - 1
"""``render --rate``: the largest sample rate a WAV header holds (a signed 32-bit field for libsndfile)."""
MAX_NOISE_NORMALS = 2**28
"""``noise-bank --size``: normals in one bank (1 GiB of float32)."""
MAX_HISTOGRAM_BINS = 2**18
"""``g2 fit --axis``: bins of a delay axis (four times the 65,536 of PicoQuant's largest histograms)."""
MAX_IMAGE_PIXELS = 89_478_485
"""Pixels of an image file, read from its header before decoding (Pillow's own ``Image.MAX_IMAGE_PIXELS``)."""


class OptionError(ValueError):
    """A value given on the command line outside its limits: one line, exit status 2, for every command."""


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


def integer(text: str) -> int:
    """An argparse ``type``: an integer, also written as ``1e8`` or ``64.0``; anything else is refused."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not math.isfinite(value) or value != int(value):
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}")
    return int(value)


def check_count(option: str, value: int, low: int, high: int, why: str = "") -> int:
    """``value`` when ``low <= value <= high``; else :class:`OptionError` naming ``option``, value and limits."""
    if not low <= value <= high:
        raise OptionError(f"{option} must be an integer from {low:,} to {high:,}{f' ({why})' if why else ''}, "
                         f"got {value:,}")
    return value


def check_number(option: str, value: float, low: float, high: float = math.inf, why: str = "") -> float:
    """``value`` when finite and ``low <= value <= high``; else :class:`OptionError` naming ``option`` and limits."""
    if not (math.isfinite(value) and low <= value <= high):
        upper = f" and at most {_number(high)}" if math.isfinite(high) else ""
        reason = f" ({why})" if why else ""
        raise OptionError(f"{option} must be a finite number of at least {_number(low)}{upper}{reason}, got {value!r}")
    return value


def check_bytes(what: str, needed: int, fix: str) -> None:
    """Refuse work whose arrays need ``needed`` bytes when :func:`available_memory` is known and smaller."""
    free = available_memory()
    if free is not None and needed > free:
        raise MemoryError(f"{what} needs {needed / 2**30:.2f} GiB but this process may use only "
                          f"{free / 2**30:.2f} GiB more (free memory, ulimit -v and container limits); {fix}")


def available_memory() -> int | None:
    """Bytes a new allocation of this process may still take on the host, None where nothing is known.

    The least of ``MemAvailable`` (``/proc/meminfo``), ``RLIMIT_AS`` less the address space in use
    (``/proc/self/status`` ``VmSize``) and the container's limit less its usage (cgroup v2 or v1).
    """
    known = [value for value in (_mem_available(), _address_space_left(), _cgroup_left()) if value is not None]
    return max(0, min(known)) if known else None


def _read_number(path: Path, field: str | None = None) -> int | None:
    """An integer in ``path`` (the value after ``field:`` when given, in kB then); None when absent or 'max'."""
    try:
        text = path.read_text()
    except OSError:
        return None
    if field is None:
        return int(text.split()[0]) if text.split() and text.split()[0].isdigit() else None
    for line in text.splitlines():
        if line.startswith(f"{field}:") and line.split()[1].isdigit():
            return int(line.split()[1]) * 1024
    return None


def _mem_available() -> int | None:
    return _read_number(Path("/proc/meminfo"), "MemAvailable")


def _address_space_left() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    used = _read_number(Path("/proc/self/status"), "VmSize")
    return soft - (used or 0)


def _cgroup_left() -> int | None:
    """The container's memory limit less its usage: cgroup v2 (``memory.max``) or v1 (``memory.limit_in_bytes``)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, group = line.split(":", 2)
        if controllers == "":
            folder = Path("/sys/fs/cgroup") / group.lstrip("/")
            limit, usage = _read_number(folder / "memory.max"), _read_number(folder / "memory.current")
        elif "memory" in controllers.split(","):
            folder = Path("/sys/fs/cgroup/memory") / group.lstrip("/")
            if not folder.is_dir():
                folder = Path("/sys/fs/cgroup/memory")
            limit = _read_number(folder / "memory.limit_in_bytes")
            usage = _read_number(folder / "memory.usage_in_bytes")
        else:
            continue
        if limit is not None and limit < 2**60:  # v1 writes a huge number for "no limit"
            return limit - (usage or 0)
    return None
