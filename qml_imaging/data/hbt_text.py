"""Text histograms (CSV / TXT / DAT) as lab software exports them: columns read by their header.

The rule, in order:

1. **Lines**: blank lines are skipped; a line starting with ``#`` or ``%`` is a comment, and
   ``# key: value`` (or ``# key = value``) is metadata (``delay_unit``, ``singles_1``, ``singles_2``,
   ``seconds``, ``zero_delay_ns``); keys are read case-insensitively.
2. **Separator**, from the first line that is neither blank nor a comment: a semicolon if the line
   has one, else a tab, else a comma, else runs of spaces. **Decimal commas** are read where the
   separator is not a comma (``-1,25;40`` is -1.25 and 40). A cell with both a comma and a point
   (``1.234,5``: a thousands separator) is refused as ambiguous.
3. **Header**: the first line whose cells are not all numbers names the columns (at most one such line,
   before the numbers). A column is the **delay** if its name starts with ``delay``, ``tau``, ``time``,
   ``lag``, ``dt`` or ``t`` followed by a unit or nothing (``delay_ns``, ``Time (ps)``, ``tau [ns]``, ``time/ns``, ``t``);
   an **error** column (``error``, ``err``, ``uncertainty``, ``sigma``, ``std``, ``stderr``, with any
   prefix or suffix: ``counts_err``) is recognised and not fitted; an **index** column (``bin``,
   ``index``, ``idx``, ``channel``, ``no``) is skipped; every other column whose name contains
   ``count``, ``coinc``, ``hist``, ``events``, ``g2`` or ``n`` is a histogram of **counts**. Columns in any
   order. Refused in one line: no delay column or more than one, no counts column, a column of
   another name (it is not guessed).
4. **No header**: columns ``delay, counts[, counts ...]`` in that order.
5. **Delay unit**: from the delay column's name (``delay_ns``, ``delay (ps)``, ``tau [us]``), else the
   ``# delay_unit`` line, else the ``delay_unit`` argument; a file whose stated unit differs from the
   argument, or that states none when none is given, is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

UNIT_PATTERN = r"(ps|ns|us|µs|s)"
DELAY_NAME = re.compile(rf"^(delay|tau|time|lag|dt|t)(?:[\s_/]*[(\[]?\s*{UNIT_PATTERN}\s*[)\]]?)?$")
ERROR_NAME = re.compile(r"(^|[\s_(\[-])(err|error|errors|uncertainty|unc|sigma|std|stdev|stderr)($|[\s_)\]-])")
INDEX_NAME = re.compile(r"^(bin|bins|index|idx|channel|no)$")
COUNTS_NAME = re.compile(r"(count|coinc|hist|events|g2|g\(2\)|^n$|^n[\s_])")


@dataclass(frozen=True)
class TextTable:
    """A text histogram file read by :func:`read_table`: bin centres ``delay_ns`` ``(K,)``, ``counts``
    ``(B, K)`` (one row per counts column), the ``# key: value`` metadata and the column roles found."""

    delay_ns: np.ndarray
    counts: np.ndarray
    metadata: dict[str, str]
    columns: str


def read_table(path: Path, delay_unit: str | None, units_ns: dict[str, float]) -> TextTable:
    """Read ``path`` by the rule of the module docstring; ``ValueError`` naming the file for anything it refuses."""
    metadata, lines = _split_lines(path)
    if not lines:
        raise ValueError(f"{path}: no data rows (expected columns delay, counts)")
    separator = _separator(lines[0][1])
    header, rows = _header_and_rows(path, lines, separator)
    widths = {len(r) for r in rows}
    if len(widths) != 1 or min(widths) < 2:
        raise ValueError(f"{path}: every row needs the same number (>= 2) of columns delay, counts[, ...]; "
                         f"found rows of {sorted(widths)} columns")
    if header is not None and len(header) != widths.pop():
        raise ValueError(f"{path}: the header names {len(header)} columns but the rows hold {len(rows[0])}")
    delay, counts, header_unit, roles = _roles(path, header, len(rows[0]))
    table = np.array(rows, dtype=np.float64)
    unit = _unit(path, header_unit or metadata.get("delay_unit"), delay_unit, units_ns)
    return TextTable(table[:, delay] * units_ns[unit], table[:, counts].T, metadata, roles)


def _split_lines(path: Path) -> tuple[dict[str, str], list[tuple[int, str]]]:
    metadata: dict[str, str] = {}
    lines = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        stripped = line.strip().lstrip("\ufeff")
        if not stripped:
            continue
        if stripped.startswith(("#", "%")):
            body = stripped.lstrip("#%")
            key, separator, value = body.partition(":")
            if not separator:
                key, separator, value = body.partition("=")
            if separator:
                metadata[key.strip().lower()] = value.strip()
            continue
        lines.append((number, stripped))
    return metadata, lines


def _separator(line: str) -> str | None:
    for candidate in (";", "\t", ","):
        if candidate in line:
            return candidate
    return None


def _cells(line: str, separator: str | None) -> list[str]:
    parts = line.split(separator) if separator else line.split()
    return [p.strip() for p in parts]


def _number(cell: str, separator: str | None) -> float | None:
    """The number in ``cell`` (decimal comma allowed when the separator is not a comma), or ``None``."""
    text = cell.replace(" ", "")
    if separator != "," and "," in text:
        if "." in text:
            raise ValueError(f"ambiguous number {cell!r} (both a comma and a point: a thousands separator?)")
        text = text.replace(",", ".")
    try:
        return float(text)
    except ValueError:
        return None


def _header_and_rows(path: Path, lines: list[tuple[int, str]], separator: str | None):
    header, rows = None, []
    for number, line in lines:
        cells = _cells(line, separator)
        try:
            values = [_number(c, separator) for c in cells]
        except ValueError as error:
            raise ValueError(f"{path}:{number}: {error}; export without thousands separators") from None
        if all(v is not None for v in values):
            rows.append(values)
            continue
        if rows or header is not None:
            raise ValueError(f"{path}:{number}: non-numeric row {line!r} after the "
                             f"{'data' if rows else 'header'} started")
        header = [c.lower() for c in cells]
    if not rows:
        raise ValueError(f"{path}: no numeric rows (expected columns delay, counts)")
    return header, rows


def _roles(path: Path, header: list[str] | None, width: int) -> tuple[int, list[int], str | None, str]:
    """``(delay column, counts columns, unit in the delay name, description)``."""
    if header is None:
        return 0, list(range(1, width)), None, "no header: delay, then counts"
    delay, counts, skipped = [], [], []
    for index, name in enumerate(header):
        if DELAY_NAME.match(name):
            delay.append(index)
        elif ERROR_NAME.search(name) or INDEX_NAME.match(name):
            skipped.append(index)
        elif COUNTS_NAME.search(name):
            counts.append(index)
        else:
            raise ValueError(f"{path}: column {name!r} is not a delay, counts, error or index column; rename it "
                             f"(delay_ns, counts, counts_err) or remove it")
    if len(delay) != 1 or not counts:
        found = [header[i] for i in delay]
        raise ValueError(f"{path}: the header {header} must name one delay column (delay_ns, time (ps), tau) and at "
                         f"least one counts column; found delay columns {found} and {len(counts)} counts columns")
    match = DELAY_NAME.match(header[delay[0]])
    described = (f"delay {header[delay[0]]!r}, counts {[header[i] for i in counts]}, not fitted "
                 f"{[header[i] for i in skipped]}")
    return delay[0], counts, match.group(2) if match else None, described


def _unit(path: Path, stated: str | None, given: str | None, units_ns: dict[str, float]) -> str:
    if given is not None and stated in units_ns and given != stated:
        raise ValueError(f"{path}: the file states delays in {stated}, but delay_unit {given} was given; "
                         f"leave delay_unit unset for files that state their unit")
    unit = given or stated
    if unit not in units_ns:
        raise ValueError(f"{path}: the delay unit is not stated; name it in the header (delay_ns, delay (ps)), "
                         f"add a '# delay_unit: ns' line, or pass delay_unit (ps, ns, us, s)")
    return unit
