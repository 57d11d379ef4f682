"""The type check: mypy over the package at the strictness pyproject.toml's [tool.mypy] states (mypy's default:
annotated functions are checked; a listed set of older modules is not yet). Runs wherever mypy is installed
(the `test` extra), so `.ci/run` type-checks at the lock on every Python it tests."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT


def test_mypy_finds_nothing_in_the_package():
    pytest.importorskip("mypy", reason="the type checker comes with the [test] extra")
    result = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary"], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr + "\nfix these, or (for a module from before the "
                                    "type checker) list it under [tool.mypy] ignore_errors in pyproject.toml")
