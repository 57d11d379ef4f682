"""Packaging: ranges with a tested lock, the lowest-versions file, extras and their one-line errors,
version, environment record, and the README's commands matching .ci/run's."""

from __future__ import annotations

import ast
import re
import sys
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

import qml_imaging
from qml_imaging import environment as environment_module
from qml_imaging.cli import main
from qml_imaging.config import ConfigError
from qml_imaging.extras import EXTRA_OF_MODULE, QISKIT_MODULES, MissingExtraError, require
from qml_imaging.quantum.backends import backend_spec
from tests.conftest import REPO_ROOT

PROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
EXTRAS = PROJECT["optional-dependencies"]


def pinned(path) -> dict[str, str]:
    """``name == version`` lines of a constraints file, by canonical name."""
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return {canonicalize_name(name): version for name, version in (line.split("==") for line in lines)}


def requirements(*groups: list[str]) -> list[Requirement]:
    """Requirements of the given lists, without the self-references of ``all`` / ``test``."""
    return [Requirement(text) for group in groups for text in group if not text.startswith("qml-imaging")]


def test_every_requirement_is_a_range_with_an_upper_bound_except_calendar_versions():
    for requirement in requirements(PROJECT["dependencies"], *EXTRAS.values()):
        operators = {spec.operator for spec in requirement.specifier}
        assert ">=" in operators and "==" not in operators, requirement
        calendar = any(int(spec.version.split(".")[0]) >= 2000 for spec in requirement.specifier)
        assert "<" in operators or calendar, f"{requirement} has no upper bound"


def test_lowest_versions_file_names_exactly_the_core_lower_bounds():
    lowest = pinned(REPO_ROOT / "constraints-lowest.txt")
    test_runner = Requirement(next(text for text in EXTRAS["test"] if text.startswith("pytest")))
    for requirement in [*requirements(PROJECT["dependencies"]), test_runner]:
        bound = next(spec.version for spec in requirement.specifier if spec.operator == ">=")
        assert Version(lowest.pop(canonicalize_name(requirement.name))) == Version(bound), requirement
    assert not lowest, f"constraints-lowest.txt names packages that are no core requirement: {lowest}"


def test_the_lock_satisfies_every_range():
    lock = pinned(REPO_ROOT / "constraints.txt")
    for requirement in requirements(PROJECT["dependencies"], *EXTRAS.values()):
        if requirement.name.startswith("pyqtorch"):
            continue  # the bench extra is not in the lock (its peers conflict with the Qiskit stack)
        version = lock[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(version, prereleases=True), f"lock {version} outside {requirement}"


def test_every_optional_module_maps_to_a_declared_extra():
    assert set(EXTRA_OF_MODULE.values()) <= set(EXTRAS)
    assert {"qiskit", "medmnist", "audio", "lab", "ray", "docs", "test", "all"} <= set(EXTRAS)
    assert "pydantic" in {canonicalize_name(r.name) for r in requirements(PROJECT["dependencies"])}


def test_optional_packages_are_imported_only_through_the_extras_helper():
    optional = set(EXTRA_OF_MODULE)
    offenders = []
    for path in sorted((REPO_ROOT / "qml_imaging").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.relative_to(REPO_ROOT)}:{node.lineno} {name}" for name in names
                          if name.split(".")[0] in optional]
    assert not offenders, "import these through qml_imaging.extras.require: " + ", ".join(offenders)


@pytest.fixture
def without_qiskit(monkeypatch):
    for name in QISKIT_MODULES:
        monkeypatch.setitem(sys.modules, name, None)


def test_a_qiskit_backend_without_the_extra_is_refused_at_validation(without_qiskit, capsys):
    with pytest.raises(ConfigError, match=r'backend .qiskit.aer. needs Qiskit .*pip install "qml-imaging\[qiskit\]"'):
        backend_spec("aer_shots")
    assert backend_spec("fast").backend == "fast"
    assert main(["validate", "qiren_hardware"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and 'pip install "qml-imaging[qiskit]"' in error


def test_hardware_backends_without_the_extra_is_one_line_naming_it(without_qiskit, capsys):
    assert main(["hardware", "backends"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and 'pip install "qml-imaging[qiskit]"' in captured.err


def test_require_names_the_extra_or_returns_the_module(monkeypatch):
    monkeypatch.setitem(sys.modules, "soundfile", None)
    with pytest.raises(MissingExtraError, match=r'reading audio needs soundfile.*pip install "qml-imaging\[audio\]"'):
        require("soundfile", "reading audio")
    assert require("json", "a standard module") is sys.modules["json"]


def test_version_comes_from_the_package_metadata(capsys):
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", qml_imaging.__version__)
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"qml-imaging {qml_imaging.__version__}"


def test_environment_reports_versions_commit_and_hardware(monkeypatch):
    record = environment_module.environment()
    for key in ("python", "qml_imaging", "qml_imaging_commit", "torch", "pennylane", "pennylane_lightning", "qiskit",
                "qiskit_aer", "qiskit_ibm_runtime", "numpy", "scipy", "cpu", "cpu_cores", "cuda"):
        assert key in record, key
    assert record["torch"] and record["numpy"]
    monkeypatch.setitem(environment_module.REPORTED_DISTRIBUTIONS, "qiskit", "no-such-distribution-qml")
    assert environment_module.environment()["qiskit"] is None


def test_git_commit_only_for_a_checkout(tmp_path):
    assert environment_module.git_commit(tmp_path / "qml_imaging") is None
    commit = environment_module.git_commit(REPO_ROOT / "qml_imaging")
    if (REPO_ROOT / ".git").exists():
        assert commit and re.fullmatch(r"[0-9a-f]{40}(-dirty)?", commit)


def test_readme_test_command_is_the_one_ci_runs():
    readme = (REPO_ROOT / "README.md").read_text()
    commands = re.findall(r"```bash\n(python3 -m venv .*?)\n```", readme)
    assert len(commands) == 2, commands
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert commands[1].split("&& ", 1)[1] in ci
    assert all("-c constraints.txt" in command for command in commands)


def test_license_and_type_marker_ship_with_the_package():
    assert PROJECT["license"] == "MIT" and PROJECT["license-files"] == ["LICENSE"]
    assert (REPO_ROOT / "LICENSE").read_text().startswith("MIT License")
    assert (REPO_ROOT / "qml_imaging" / "py.typed").is_file()
    package_data = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "py.typed" in package_data["qml_imaging"]
