"""Optional dependencies: the one place that imports a package of an install extra.

The core install (``pip install qml-imaging``) runs every experiment on the fast, default.qubit and
lightning.qubit backends. Heavier stacks are extras (``pyproject.toml``'s ``[project.optional-dependencies]``);
a feature that needs one calls :func:`require` (at use) or :func:`check` (at config validation), which
fail with one line naming the install command, e.g.
``backend 'qiskit.aer' needs Qiskit, which is not installed: pip install "qml-imaging[qiskit]"``.
This module imports nothing heavy itself.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType

EXTRA_OF_MODULE = {
    "qiskit": "qiskit",
    "qiskit_aer": "qiskit",
    "qiskit_ibm_runtime": "qiskit",
    "pennylane_qiskit": "qiskit",
    "medmnist": "medmnist",
    "soundfile": "audio",
    "h5py": "lab",
    "ray": "ray",
    "tensorboard": "logging",
}
"""The extra that installs each optional top-level module (keep in step with pyproject.toml)."""

QISKIT_MODULES = ("qiskit", "qiskit_aer", "qiskit_ibm_runtime", "pennylane_qiskit")
"""Everything the Qiskit backends (``qiskit.aer``, ``ibm``) import, directly or through PennyLane's plugin."""


class MissingExtraError(ImportError):
    """An optional package a feature needs is not installed; the message names the extra to install."""


def install_hint(module: str) -> str:
    """The install command for ``module``'s extra: ``pip install "qml-imaging[EXTRA]"``.

    Raises KeyError for a module that belongs to no extra (a programming error).
    """
    return f'pip install "qml-imaging[{EXTRA_OF_MODULE[module.split(".")[0]]}]"'


def missing(*modules: str) -> list[str]:
    """Those of ``modules`` (top-level names) that cannot be imported here; imports none of them. A name
    set to None in ``sys.modules`` (how tests hide a package) counts as missing."""
    return [name for name in modules
            if (sys.modules[name] is None if name in sys.modules else importlib.util.find_spec(name) is None)]


def check(feature: str, *modules: str) -> None:
    """Raise :class:`MissingExtraError` when any of ``modules`` is not installed, without importing them.

    ``feature`` says what needs them (``"backend 'qiskit.aer'"``); the message names the first missing
    module and its extra's install command.
    """
    absent = missing(*modules)
    if absent:
        raise MissingExtraError(f"{feature} needs {absent[0]}, which is not installed: {install_hint(absent[0])}")


def require(module: str, feature: str) -> ModuleType:
    """Import and return ``module`` (dotted names allowed), or raise :class:`MissingExtraError` naming
    ``feature`` and the extra that installs it. Errors inside an installed package propagate unchanged.
    """
    check(feature, module.split(".")[0])
    return importlib.import_module(module)
