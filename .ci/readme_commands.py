"""Run every command and code block of README.md as CI runs it, so that a README example cannot drift.

The README's fenced blocks are split into items: one per command line of a ``bash`` block (the trailing
``  # comment`` dropped), one per ``python`` or ``yaml`` block. ``.ci/readme_blocks.yaml`` says, for each item
(``readme``: the command, or the block's first line), how CI runs it (``run``), and why when not as written:

- ``as-is``: the command, or the Python block, exactly as printed;
- ``smoke``: the command with ``overrides`` (smaller sizes) put before its first ``--`` option;
- ``validate``: ``qml-imaging run`` as ``qml-imaging validate``, without its ``--out`` / ``--ray-address``;
- ``file``: the YAML block written to ``path``, then ``check`` (a shell command) run;
- ``ci``: run by ``.ci/run`` itself, which holds the command (or ``ci_line``); ``suite``: run by the test file
  ``test`` of the suite (which ``.ci/run`` runs).

``replace`` (pairs ``[old, new]``, each of which must occur) rewrites an item before its mode applies; ``setup``
(a shell command; ``$QML_IMAGING_REPO`` is the checkout) runs first. Every item runs in one temporary folder, in README order, with
``hardware_configs/`` and the README's own shipped paths reachable as from a checkout. A failing item stops
the run with its output and exit status 1.

Usage: ``python .ci/readme_commands.py [--list] [--only TEXT]`` from anywhere (the repository is this
file's parent's parent); ``qml-imaging`` and ``python`` are taken from ``PATH``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

import yaml

REPO = Path(__file__).resolve().parents[1]
TABLE = REPO / ".ci" / "readme_blocks.yaml"
MODES = {"as-is", "smoke", "validate", "file", "ci", "suite"}
NOT_RUN = {"ci", "suite"}
LINKED = ("experiments", "hardware_configs")
"""Checkout folders the README's commands name by relative path, linked into the work folder."""
FENCE = re.compile(r"^( *)```(\w+)\n(.*?)^\1```", re.S | re.M)


class Item(NamedTuple):
    """One runnable piece of the README: a command line of a bash block, or a whole python / yaml block."""

    language: str
    key: str
    text: str
    line: int


def readme_items(readme: str) -> list[Item]:
    """The README's items in order; ``key`` is the command (comment dropped) or the block's first line."""
    items = []
    for match in FENCE.finditer(readme):
        indent, language, body = match.groups()
        body = "\n".join(line.removeprefix(indent) for line in body.splitlines())
        line = readme.count("\n", 0, match.start()) + 1
        if language == "bash":
            items += [Item("bash", command, command, line + offset + 1)
                      for offset, text in enumerate(body.splitlines())
                      if (command := text.split("  #")[0].strip())]
        else:
            items.append(Item(language, body.splitlines()[0].strip(), body, line))
    return items


def load_table(path: Path = TABLE) -> list[dict[str, Any]]:
    """The entries of the table, each checked: a known mode, a reason where the item does not run as printed."""
    entries = yaml.safe_load(path.read_text())
    for entry in entries:
        mode = entry.get("run")
        if mode not in MODES:
            raise ValueError(f"{path.name}: {entry.get('readme')!r}: run must be one of {sorted(MODES)}, got {mode!r}")
        if (mode != "as-is" or "replace" in entry) and not entry.get("why"):
            raise ValueError(f"{path.name}: {entry['readme']!r} does not run as printed: give its reason (why)")
    return entries


def matched(items: list[Item], entries: list[dict[str, Any]]) -> list[tuple[Item, dict[str, Any]]]:
    """Each README item with its table entry; ValueError naming every item without one and every entry
    that names no item (a changed or removed README line)."""
    by_key = {entry["readme"]: entry for entry in entries}
    keys = [item.key for item in items]
    missing = [key for key in keys if key not in by_key]
    stale = [key for key in by_key if key not in keys]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if missing or stale or repeated or len(by_key) != len(entries):
        raise ValueError(f"{TABLE.name} does not match README.md: items without an entry {missing}; entries for "
                         f"no item {stale}; items printed twice {repeated}; entries listed twice: "
                         f"{len(entries) - len(by_key)}")
    return [(item, by_key[item.key]) for item in items]


def rewritten(item: Item, entry: dict[str, Any]) -> str:
    """The text CI runs for ``item``: ``replace`` applied, then the ``smoke`` or ``validate`` rewrite."""
    text = item.text
    for old, new in entry.get("replace", []):
        if old not in text:
            raise ValueError(f"{TABLE.name}: {item.key!r}: replace {old!r}, which the item does not hold")
        text = text.replace(old, new)
    if entry["run"] == "smoke":
        head, option, tail = text.partition(" --")
        text = f"{head} {entry['overrides']}{option}{tail}"
    elif entry["run"] == "validate":
        text = re.sub(r" --(out|ray-address) \S+", "", text.replace("qml-imaging run ", "qml-imaging validate ", 1))
    return text


def command_of(item: Item, entry: dict[str, Any], folder: Path) -> str:
    """The shell command that runs ``item`` in ``folder`` (a YAML block is written to its file first)."""
    text = rewritten(item, entry)
    if item.language == "python":
        script = folder / f"readme_block_{item.line}.py"
        script.write_text(text)
        return f"python {script.name}"
    if item.language == "yaml":
        (folder / entry["path"]).write_text(text)
        return entry["check"]
    return text


def run_shell(command: str, folder: Path) -> tuple[int, str, float]:
    """``(exit status, output, seconds)`` of ``command`` run by bash in ``folder``."""
    start = time.perf_counter()
    done = subprocess.run(["bash", "-c", command], cwd=folder, capture_output=True, text=True,
                          env={**os.environ, "HOME": str(folder / "home"), "QML_IMAGING_REPO": str(REPO)})
    return done.returncode, done.stdout + done.stderr, time.perf_counter() - start


def prepare(folder: Path) -> None:
    """Make ``folder`` look like the checkout to the README's relative paths, and give it a HOME of its own."""
    for name in LINKED:
        (folder / name).symlink_to(REPO / name)
    (folder / "home").mkdir()


def run_items(pairs: list[tuple[Item, dict[str, Any]]], folder: Path, only: str | None = None) -> int:
    """Run every item that CI runs (``only``: those whose key holds that text), in order; 1 at the first failure."""
    for item, entry in pairs:
        if entry["run"] in NOT_RUN or (only and only not in item.key):
            continue
        for step in ([entry["setup"]] if "setup" in entry else []) + [command_of(item, entry, folder)]:
            status, output, seconds = run_shell(step, folder)
            print(f"README.md:{item.line} [{entry['run']}] {seconds:6.1f} s  {step}", flush=True)
            if status != 0:
                print(output[-6000:], f"\nREADME.md:{item.line}: exit status {status}", file=sys.stderr)
                return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", action="store_true", help="print each README item and how CI runs it")
    parser.add_argument("--only", help="run only the items whose command or first line holds this text")
    arguments = parser.parse_args(argv)
    pairs = matched(readme_items((REPO / "README.md").read_text()), load_table())
    if arguments.list:
        for item, entry in pairs:
            print(f"README.md:{item.line} [{entry['run']}] {item.key}")
        return 0
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="readme-") as name:
        prepare(Path(name))
        status = run_items(pairs, Path(name), arguments.only)
    print(f"README items: {'failed' if status else 'passed'} in {time.perf_counter() - start:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
