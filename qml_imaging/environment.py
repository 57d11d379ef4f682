"""What a result was produced with: ``report.json``'s ``environment`` block.

Package versions come from the installed distributions' metadata (``importlib.metadata``), so the
optional stacks (Qiskit, Aer, IBM Runtime) are reported without being imported, and as ``None`` when
they are not installed. The toolkit's git commit is recorded when it runs from a checkout.
"""

from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal, get_args

REPORTED_DISTRIBUTIONS = {
    "qml_imaging": "qml-imaging",
    "torch": "torch",
    "pennylane": "pennylane",
    "pennylane_lightning": "pennylane-lightning",
    "qiskit": "qiskit",
    "qiskit_aer": "qiskit-aer",
    "qiskit_ibm_runtime": "qiskit-ibm-runtime",
    "numpy": "numpy",
    "scipy": "scipy",
}
"""report key -> distribution name of every version in the environment block."""


def distribution_version(name: str) -> str | None:
    """The installed version of distribution ``name`` (``"qiskit-aer"``), or None when it is not installed."""
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def toolkit_version() -> str:
    """This toolkit's version from its installed metadata; ``0+unknown`` for a source tree never installed."""
    return distribution_version("qml-imaging") or "0+unknown"


def git_commit(folder: Path | None = None) -> str | None:
    """The commit of the checkout the package runs from (``folder``, default this package's folder, whose
    parent must be the checkout's root), with ``-dirty`` when tracked files differ from it; None for an
    installed copy (site-packages, even inside another project's checkout) or without git."""
    folder = folder or Path(__file__).resolve().parent
    if not (folder.parent / ".git").exists():
        return None
    try:
        described = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=40"], cwd=folder,
                                   capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if described.returncode != 0:
        return None
    return described.stdout.strip() or None


def _cpu_name() -> str:
    """The processor's model name (``/proc/cpuinfo`` on Linux), else what :func:`platform.processor` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict[str, str | None]:
    """Versions and hardware a result was produced with: Python, platform, the toolkit's version and git
    commit, the versions of :data:`REPORTED_DISTRIBUTIONS` (None when not installed), CPU model and
    cores, torch's CPU threads and the CUDA device (``"none"`` without one)."""
    import torch

    versions = {key: distribution_version(name) for key, name in REPORTED_DISTRIBUTIONS.items()}
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        **versions,
        "qml_imaging_commit": git_commit(),
        "cpu": _cpu_name(),
        "cpu_cores": str(os.cpu_count()),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
        "cpu_threads": str(torch.get_num_threads()),
    }


Precision = Literal["auto", "fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
"""Values of ``train.precision`` (see :mod:`qml_imaging.training.precision`)."""


def cpu_bf16_support() -> dict[str, bool]:
    """Whether this CPU has native bfloat16 matrix instructions: ``{"amx_bf16": .., "avx512_bf16": ..}``
    (torch's CPU capability probes; both False where torch does not provide them)."""
    import torch

    probes = {"amx_bf16": "_is_amx_tile_supported", "avx512_bf16": "_is_avx512_bf16_supported"}
    return {key: bool(getattr(torch.cpu, probe, lambda: False)()) for key, probe in probes.items()}


def autocast_choice(precision: str, device_type: str) -> str | None:
    """The torch dtype name (``"bfloat16"``, ``"float16"``) ``train.precision`` means on a ``cpu`` or ``cuda``
    device, None for float32. ``auto``: bfloat16 on a CPU with :func:`cpu_bf16_support`, else float32; on
    CUDA bfloat16, or float16 where the GPU lacks bfloat16. Raises ValueError for ``fp16`` on a CPU, ``bf16``
    on a GPU without it, or a value not in :data:`PRECISIONS`."""
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"train.precision: expected one of {list(PRECISIONS)}, got {precision!r}")
    if precision == "fp32":
        return None
    if device_type == "cuda":
        bf16 = torch.cuda.is_bf16_supported()
        if precision == "bf16" and not bf16:
            raise ValueError("train.precision: bf16, but this GPU has no bfloat16; use auto, fp16 or fp32")
        return {"auto": "bfloat16" if bf16 else "float16", "bf16": "bfloat16", "fp16": "float16"}[precision]
    if precision == "fp16":
        raise ValueError("train.precision: fp16 runs on CUDA only; on a CPU use auto, bf16 or fp32")
    if precision == "auto" and not any(cpu_bf16_support().values()):
        return None
    return "bfloat16"


def precision_report(precision: str, channels_last: bool | str, device: str) -> dict[str, Any]:
    """``report.json``'s ``training_precision`` block for the ``train`` settings ``precision``,
    ``channels_last`` and ``device`` (``auto``, ``cpu``, ``cuda``): what they resolve to on this machine.
    The models it applies to are named by rule, not listed, so the block does not depend on what the
    process happened to import (a resumed run writes the same report)."""
    import torch

    on = "cuda" if device != "cpu" and torch.cuda.is_available() else "cpu"
    dtype = autocast_choice(precision, on)
    return {"precision": precision, "device": on, "autocast": dtype or "none",
            "autocast_modules": "models whose class sets autocast_safe" if dtype is not None else "none",
            "channels_last": "models whose class sets channels_last_pays" if channels_last == "auto" else channels_last,
            "compile": False, "cpu_bf16": cpu_bf16_support()}
