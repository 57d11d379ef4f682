"""The package's import graph: no cycles, and no module imports one from a higher layer.

Every import of a ``qml_imaging`` module counts, at module level or inside a function, so an import
moved into a function to dodge a cycle is still seen.
"""

import ast
from pathlib import Path

import qml_imaging

PACKAGE = Path(qml_imaging.__file__).parent

LAYERS = [
    {"resources", "registry", "limits", "extras", "environment"},
    {"config"},
    {"runs", "data", "physics", "reporting", "quantum"},
    {"training", "models", "grid"},
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


def test_only_the_command_line_sets_environment_variables():
    writers = {str(path.relative_to(PACKAGE)): lines for path in PACKAGE.rglob("*.py")
               if (lines := _environment_writes(ast.parse(path.read_text())))}
    assert {path for path in writers if not path.startswith("cli")} == set(), writers
    assert _environment_writes(ast.parse("import os\nos.environ['X'] = '1'\nos.environ.setdefault('Y', '2')")) == [2, 3]
