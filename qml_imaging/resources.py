"""Files shipped inside the package: experiment configs and backend specs, found the same way in an
editable checkout and in an installed wheel (``importlib.resources``)."""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable

EXPERIMENTS = "experiments"
BACKEND_SPECS = "hardware_configs"


def shipped_folder(kind: str) -> Traversable:
    """The shipped folder ``kind`` (:data:`EXPERIMENTS` or :data:`BACKEND_SPECS`)."""
    return resources.files("qml_imaging") / kind


def shipped_names(kind: str) -> list[str]:
    """Names (file stems) of the YAML files in the shipped folder ``kind``, sorted."""
    return sorted(entry.name.removesuffix(".yaml") for entry in shipped_folder(kind).iterdir()
                  if entry.name.endswith(".yaml"))


def shipped_file(kind: str, name: str) -> Traversable | None:
    """The shipped YAML file ``name`` (without ``.yaml``) of folder ``kind``, or None when there is none."""
    entry = shipped_folder(kind) / f"{name}.yaml"
    return entry if entry.is_file() else None
