"""The README's commands and code blocks are all run by CI: `.ci/readme_blocks.yaml` has exactly one entry per README
item, every entry that does not run as printed says why, and `.ci/run` calls the runner (.ci/readme_commands.py)."""

import importlib.util
import tomllib

import pytest

from tests.conftest import REPO_ROOT


def load_runner():
    spec = importlib.util.spec_from_file_location("readme_commands", REPO_ROOT / ".ci" / "readme_commands.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


runner = load_runner()
README = (REPO_ROOT / "README.md").read_text()


def pairs():
    return runner.matched(runner.readme_items(README), runner.load_table())


def test_every_readme_item_has_exactly_one_entry_and_every_entry_an_item():
    matched = pairs()
    assert len(matched) == len(runner.readme_items(README)) >= 35
    assert {item.language for item, _ in matched} == {"bash", "python", "yaml"}


def test_a_new_readme_block_without_an_entry_fails_naming_it():
    extended = README + "\n```bash\nqml-imaging run new.yaml  # a new example\n```\n\n```python\nimport new\n```\n"
    with pytest.raises(ValueError, match=r"items without an entry \['qml-imaging run new.yaml', 'import new'\]"):
        runner.matched(runner.readme_items(extended), runner.load_table())
    changed = README.replace("qml-imaging list", "qml-imaging list --all")
    with pytest.raises(ValueError, match=r"entries for no item \['qml-imaging list'\]"):
        runner.matched(runner.readme_items(changed), runner.load_table())


def test_ci_runs_the_runner_and_the_lines_that_ci_entries_name():
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert "readme_commands.py" in ci
    for item, entry in pairs():
        if entry["run"] == "ci":
            assert entry.get("ci_line", item.text) in ci, item.key
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    test_extras = extras["test"][0].partition("[")[2].rstrip("]").split(",")
    assert "ray" in test_extras, "the README's `pip install -e \".[ray]\"` entry relies on it"


def test_suite_entries_name_a_test_that_reads_the_readme():
    for item, entry in pairs():
        if entry["run"] == "suite":
            assert "README" in (REPO_ROOT / entry["test"]).read_text(), item.key


def test_rewrites_apply_and_each_replaced_text_occurs():
    rewritten = {item.key: runner.rewritten(item, entry) for item, entry in pairs()}
    assert rewritten["qml-imaging run experiments/qiren_image.yaml seeds=1 train.epochs=100 --out runs/quick"] == (
        "qml-imaging run experiments/qiren_image.yaml seeds=1 train.epochs=100 train.epochs=2 images=[camera] size=8 "
        "superres_size=16 --out runs/quick")
    assert rewritten["qml-imaging run experiments/qiren_image.yaml grid.executor=ray --ray-address 10.0.0.5:6379"] == (
        "qml-imaging validate experiments/qiren_image.yaml grid.executor=ray")
    item = runner.Item("bash", "qml-imaging list", "qml-imaging list", 1)
    with pytest.raises(ValueError, match="replace 'absent', which the item does not hold"):
        runner.rewritten(item, {"run": "as-is", "replace": [["absent", "x"]]})


def test_an_entry_that_does_not_run_as_printed_needs_a_reason(tmp_path):
    table = tmp_path / "table.yaml"
    table.write_text("- {readme: qml-imaging list, run: validate}\n")
    with pytest.raises(ValueError, match="'qml-imaging list' does not run as printed: give its reason"):
        runner.load_table(table)
    table.write_text("- {readme: qml-imaging list, run: sometimes}\n")
    with pytest.raises(ValueError, match="run must be one of"):
        runner.load_table(table)
