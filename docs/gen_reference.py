"""Build-time script (mkdocs-gen-files): one API reference page per public module of ``qml_imaging``.

Every module whose dotted name has no part starting with ``_`` gets a page ``reference/<dotted name>.md``
rendered by mkdocstrings from its docstrings; ``reference/index.md`` lists them all. Run by
``mkdocs build`` (``plugins: gen-files`` in ``mkdocs.yml``); :func:`public_modules` is also what the
test of the reference's coverage compares with the package.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "qml_imaging"


def public_modules(package: Path = PACKAGE) -> list[str]:
    """Dotted names of the package's public modules (packages by their ``__init__``), sorted."""
    names = []
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if not any(part.startswith("_") for part in parts):
            names.append(".".join(parts))
    return sorted(names)


def write_pages() -> None:
    """Write the reference pages into the site being built (only under mkdocs)."""
    import mkdocs_gen_files

    modules = public_modules()
    lines = ["# API reference", "", "Generated from the docstrings: one page per public module.", ""]
    for name in modules:
        with mkdocs_gen_files.open(f"reference/{name}.md", "w") as page:
            page.write(f"# `{name}`\n\n::: {name}\n")
        depth = name.count(".")
        lines.append(f"{'    ' * (depth - 1) if depth else ''}- [`{name}`]({name}.md)")
    with mkdocs_gen_files.open("reference/index.md", "w") as index:
        index.write("\n".join(lines) + "\n")


if __name__ in ("__main__", "<run_path>"):
    write_pages()
