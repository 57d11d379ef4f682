"""Shared fixtures: the offline data bundle beside the repository, repository paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = REPO_ROOT / "qml_imaging" / "experiments"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The offline data (``../shared/data``, or ``$QML_IMAGING_TEST_DATA``)."""
    path = Path(os.environ.get("QML_IMAGING_TEST_DATA", REPO_ROOT.parent / "shared" / "data"))
    if not (path / "mnist").is_dir():
        pytest.skip(f"offline data bundle not found at {path}; set QML_IMAGING_TEST_DATA")
    return path


@pytest.fixture(autouse=True)
def _isolated_data_root(tmp_path_factory, monkeypatch):
    """Keep tests away from the user's data cache: data_root() falls back to a fresh folder."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("QML_IMAGING_DATA", raising=False)
