"""The package's shape: its import graph (no cycles, no import from a higher layer, the model-loading floor above
no pipeline), function and module budgets, and no dead code.

Every import of a ``qml_imaging`` module counts, at module level or inside a function, so an import
moved into a function to dodge a cycle is still seen.
"""

import ast
from pathlib import Path

import pytest

import qml_imaging

PACKAGE = Path(qml_imaging.__file__).parent

LAYERS = [
    {"resources", "registry", "limits", "extras", "environment", "random_sources", "precedence"},
    {"config"},
    {"runs", "data", "physics", "reporting", "quantum"},
    {"training", "models", "grid", "grid_workers"},
    {"diffusion"},
    {"pipelines"},
    {"cli", "cli_hardware", "cli_g2", "cli_models"},
]
"""Top-level modules and sub-packages of ``qml_imaging``, lowest first; a module may import from its
own layer (without cycles) and from lower ones."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The ``qml_imaging`` modules ``path`` imports anywhere in its body."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("qml_imaging"):
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("qml_imaging"))
    return found & known


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: imported_modules(path, set(paths)) - {name} for name, path in paths.items()}


def layer_of(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    for index, members in enumerate(LAYERS):
        if top in members:
            return index
    raise AssertionError(f"{module} belongs to no layer; add {top!r} to LAYERS")


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for successor in sorted(graph[node]):
            if state.get(successor) == "open":
                return stack[stack.index(successor):] + [successor]
            if successor not in state and (cycle := visit(successor)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_package_has_no_import_cycle():
    assert find_cycle(import_graph()) is None


def test_no_module_imports_from_a_higher_layer():
    upward = [f"{module} -> {target}" for module, targets in import_graph().items() if module != "qml_imaging"
              for target in targets if layer_of(target) > layer_of(module)]
    assert upward == []


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


LOADING_FLOOR = "qml_imaging.training.artifacts"
"""The shared model-loading code: each pipeline's loader stands on it, so it must import none of them."""


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module ``start`` imports, directly or through others."""
    seen, todo = set(), [start]
    while todo:
        for target in graph[todo.pop()] - seen:
            seen.add(target)
            todo.append(target)
    return seen


def test_the_shared_loading_code_imports_no_pipeline():
    assert sorted(m for m in reachable(import_graph(), LOADING_FLOOR) if m.startswith("qml_imaging.pipelines")) == []


def test_the_checks_see_an_upward_import_and_a_pipeline_under_the_loading_floor():
    graph = {LOADING_FLOOR: {"qml_imaging.runs"}, "qml_imaging.runs": {"qml_imaging.pipelines.inr.loading"},
             "qml_imaging.pipelines.inr.loading": set()}
    assert reachable(graph, LOADING_FLOOR) == {"qml_imaging.runs", "qml_imaging.pipelines.inr.loading"}
    assert layer_of("qml_imaging.pipelines.inr.loading") > layer_of("qml_imaging.runs")


def _environment_writes(tree: ast.AST) -> list[int]:
    """Lines that assign ``os.environ[...]`` or call ``putenv`` / ``environ.setdefault`` / ``environ.update``."""
    lines = []
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else []
        if any(isinstance(t, ast.Subscript) and ast.unparse(t.value).endswith("environ") for t in targets):
            lines.append(node.lineno)
        if isinstance(node, ast.Call) and ast.unparse(node.func).endswith(
                ("putenv", "environ.setdefault", "environ.update")):
            lines.append(node.lineno)
    return lines


def _serve_line() -> int:
    """The line of ``grid_workers._serve`` (a worker's loop, run only in a worker process) that sets TQDM_DISABLE."""
    import inspect

    from qml_imaging import grid_workers

    source, start = inspect.getsourcelines(grid_workers._serve)
    return start + next(i for i, line in enumerate(source) if "TQDM_DISABLE" in line)


def test_only_the_command_line_sets_environment_variables():
    writers = {str(path.relative_to(PACKAGE)): lines for path in PACKAGE.rglob("*.py")
               if (lines := _environment_writes(ast.parse(path.read_text())))}
    # grid_workers.py turns progress bars off inside the worker processes it starts, never in the user's process
    assert {path for path in writers if not path.startswith("cli")} == {"grid_workers.py"}, writers
    assert writers["grid_workers.py"] == [_serve_line()]
    assert _environment_writes(ast.parse("import os\nos.environ['X'] = '1'\nos.environ.setdefault('Y', '2')")) == [2, 3]


MAX_FUNCTION_LINES = 50
"""The longest a function (or method) of the package may be, from its ``def`` to its last line, docstring included."""
MAX_MODULE_LINES = 500
"""The longest a module of the package may be."""


def function_lengths(path: Path) -> list[tuple[str, int]]:
    """``(qualified name, lines)`` of every function and method in ``path``."""
    found = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    found.append((name, child.end_lineno - child.lineno + 1))
                visit(child, f"{name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(path.read_text()), "")
    return found


def test_no_function_is_longer_than_the_budget():
    long = [f"{path.relative_to(PACKAGE.parent)}:{name} ({lines} lines)" for path in sorted(PACKAGE.rglob("*.py"))
            for name, lines in function_lengths(path) if lines > MAX_FUNCTION_LINES]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines (split them): " + "; ".join(long)


def test_no_module_is_longer_than_the_budget():
    large = [f"{path.relative_to(PACKAGE.parent)} ({lines} lines)" for path in sorted(PACKAGE.rglob("*.py"))
             if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES]
    assert not large, f"modules over {MAX_MODULE_LINES} lines (split them by job): " + "; ".join(large)


def test_the_length_checks_measure_what_they_say(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(60))
    (tmp_path / "m.py").write_text(f"class A:\n    def long(self):\n{body.replace('    ', '        ')}\n\n"
                                   f"def short():\n    return 1\n")
    assert function_lengths(tmp_path / "m.py") == [("A.long", 61), ("short", 2)]


FRAMEWORK_NAMES = [
    "forward", "extra_repr",  # torch.nn.Module hooks
    "__getattr__", "__dir__",  # the package's lazy attributes
    "model_config",  # pydantic
    "showwarning", "category", "lineno",  # the warnings hook the CLI installs (its signature is warnings')
    "num_features",  # read by torchmetrics' FID/KID
    "default_shots", "job_tags", "seed_simulator",  # Qiskit Runtime options set on the primitives
    "supports_derivatives", "setup_execution_config", "preprocess_transforms",  # PennyLane's Device API
    "cached_bytes",  # read by tests/quantum/test_fast_caches.py in a subprocess's code string
]
"""Names used by libraries, not by our code, that a dead-code finder cannot see being used."""


def test_no_dead_code():
    """Nothing in the package is unused by the package, its tests and benchmarks (vulture, 60 % confidence and up);
    the loaders and runs the registry names as strings count as used."""
    Vulture = pytest.importorskip("vulture", reason="the dead-code finder comes with the [test] extra").Vulture

    from qml_imaging.registry import PIPELINES

    named = {reference.rpartition(":")[2] for entry in PIPELINES.values()
             for reference in (entry.config, entry.run, entry.load) if reference}
    finder = Vulture(ignore_names=FRAMEWORK_NAMES + sorted(named),
                     ignore_decorators=["@model_validator", "@field_validator", "@pytest.fixture"])
    root = PACKAGE.parent
    finder.scavenge([str(PACKAGE), str(root / "tests"), str(root / "benchmarks")])
    dead = [f"{Path(item.filename).relative_to(root)}:{item.first_lineno} {item.message}"
            for item in finder.get_unused_code(min_confidence=60) if Path(item.filename).is_relative_to(PACKAGE)]
    assert not dead, "unused code (remove it, or name its library user in FRAMEWORK_NAMES): " + "; ".join(dead)
