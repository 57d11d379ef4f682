"""The documentation site: its API reference covers every public module, its nav every page and tutorial.

The site itself is built (tutorials executed, warnings as errors) by ``mkdocs build --strict`` in ``.ci/run``.
"""

import ast
import importlib.util
import pkgutil

import yaml

import qml_imaging
from tests.conftest import REPO_ROOT

DOCS = REPO_ROOT / "docs"


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_reference", DOCS / "gen_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def nav_files(entries):
    for entry in entries:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        if isinstance(value, list):
            yield from nav_files(value)
        else:
            yield value


def test_the_api_reference_has_a_page_for_every_public_module():
    found = ["qml_imaging"] + [info.name for info in pkgutil.walk_packages(qml_imaging.__path__, "qml_imaging.")
                               if not any(part.startswith("_") for part in info.name.split("."))]
    assert load_generator().public_modules() == sorted(found)
    assert len(found) > 60


def test_every_public_module_has_a_docstring():
    generator = load_generator()
    missing = []
    for name in generator.public_modules():
        path = generator.PACKAGE.parent / (name.replace(".", "/") + ".py")
        if not path.is_file():
            path = generator.PACKAGE.parent / name.replace(".", "/") / "__init__.py"
        if not ast.get_docstring(ast.parse(path.read_text())):
            missing.append(name)
    assert missing == []


def test_the_nav_lists_every_page_and_the_five_tutorials():
    config = yaml.safe_load((REPO_ROOT / "mkdocs.yml").read_text().replace("!!python", "#"))
    listed = set(nav_files(config["nav"]))
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    tutorials = {str(p.relative_to(DOCS)) for p in (DOCS / "tutorials").glob("*.py")}
    assert pages | tutorials | {"reference/index.md"} == listed
    assert len(tutorials) == 5
    for tutorial in tutorials:
        assert (DOCS / tutorial).read_text().startswith("# %% [markdown]\n# # "), tutorial
