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
