"""Users' proficiencies from CSV, as spreadsheets and HR exports keep them.

A CSV file becomes the same `users:` section a YAML file would hold, so the
merge, the schema and every reference check are the YAML loader's own; only
positions differ: line = the row's first line, column = the cell's column
(1 for the first cell), as a spreadsheet numbers them.

Two layouts, told apart by the header (names case-insensitive, any order):
- long: `username,attribute,value,level`, one row per proficiency; a row with
  empty `attribute`, `value` and `level` declares a user with none;
- wide: `username,<Attribute>:<Value>,...`, one row per user, the level in
  the cell (empty: not held).
Both may carry a `sets` column (set names separated by `;`). Any other
column is an error unless `settings.csv_ignore_columns` lists it.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reconciler.manifest.errors import ManifestError, ManifestInvalid
from reconciler.manifest.source import DocPath, SourceFile, decode_text
from reconciler.quoting import excerpt

LONG_COLUMNS = ("username", "attribute", "value", "level")
SETS_COLUMN = "sets"
_WHOLE = re.compile(r"[0-9]+")
_DECIMAL_WHOLE = re.compile(r"([0-9]+)\.0+")
_LAYOUTS = (
    "username,attribute,value,level (one row per proficiency) or "
    "username,<Attribute>:<Value>,... (levels in the cells)"
)


@dataclass
class CsvSource(SourceFile):
    """A CSV file read as a manifest: its `users:` section and, per path,
    where its key and its value are ((line, column) each)."""

    cells: dict[DocPath, tuple[tuple[int, int], tuple[int, int]]] = field(
        default_factory=dict, repr=False
    )

    def position(self, path: DocPath, at_key: bool = False) -> tuple[int, int]:
        for length in range(len(path), 0, -1):
            found = self.cells.get(path[:length])
            if found is not None:
                return found[0] if at_key else found[1]
        return 1, 1


def level_of(cell: str) -> Any:
    """A level cell's value: whole numbers become ints; anything else is
    left as written, for the schema to refuse with the YAML loader's words."""
    return int(cell) if _WHOLE.fullmatch(cell) else cell


class _Reader:
    """What the rows declare so far, where, and the errors found."""

    def __init__(self, display: str, ignored: set[str]) -> None:
        self.display = display
        self.ignored = ignored
        self.errors: list[ManifestError] = []
        self.users: dict[str, dict[str, Any]] = {}
        self.cells: dict[DocPath, tuple[tuple[int, int], tuple[int, int]]] = {}

    def error(self, line: int, column: int, message: str, hint: str = "") -> None:
        self.errors.append(ManifestError(self.display, line, column, message, hint))

    def place(self, path: DocPath, key: tuple[int, int], value: tuple[int, int]) -> None:
        self.cells.setdefault(path, (key, value))

    def level(self, cell: str, line: int, column: int) -> Any:
        whole = _DECIMAL_WHOLE.fullmatch(cell)
        if whole:
            self.error(
                line,
                column,
                f"level {excerpt(cell)} is not written as a whole number",
                f"write {whole.group(1)}: a spreadsheet showing decimals wrote it so; "
                "format the column as a number with no decimals",
            )
        return level_of(cell)

    def user(self, username: str, line: int, column: int) -> dict[str, Any]:
        path: DocPath = ("users", username)
        self.place(path, (line, column), (line, column))
        self.place((*path, "proficiencies"), (line, column), (line, column))
        return self.users.setdefault(username, {"proficiencies": {}})

    def row_user(
        self, line: int, cells: list[str], columns: dict[str, int], one_row_each: bool
    ) -> tuple[str, dict[str, Any]] | None:
        """The row's username and user (with the row's sets), or None when the
        row names nobody, or (`one_row_each`) a user of an earlier row."""
        username_at = columns["username"]
        username = cells[username_at - 1].strip()
        if not username:
            self.error(line, username_at, "empty username", "fill in the agent's username")
            return None
        if one_row_each and username in self.users:
            first = self.cells[("users", username)][0][0]
            self.error(
                line,
                username_at,
                f"{excerpt(username)} has a row already, on line {first}",
                "give each user one row in this layout",
            )
            return None
        user = self.user(username, line, username_at)
        sets_at = columns.get(SETS_COLUMN)
        if sets_at is not None:
            self.sets(user, username, cells[sets_at - 1], line, sets_at)
        return username, user

    def sets(self, user: dict[str, Any], username: str, cell: str, line: int, column: int) -> None:
        names = [n.strip() for n in cell.split(";") if n.strip()]
        if not names:
            return
        if "sets" in user and user["sets"] != names:
            first = self.cells[("users", username, "sets")][1]
            self.error(
                line,
                column,
                f"{excerpt(username)} lists other sets than on line {first[0]}",
                "give a user's sets once, or the same on each row",
            )
            return
        user["sets"] = names
        self.place(("users", username, "sets"), (line, column), (line, column))

    def proficiency(
        self,
        username: str,
        user: dict[str, Any],
        attribute: str,
        value: str,
        level: Any,
        where: tuple[tuple[int, int], tuple[int, int], tuple[int, int]],
    ) -> None:
        attribute_cell, value_cell, level_cell = where
        values = user["proficiencies"].setdefault(attribute, {})
        path: DocPath = ("users", username, "proficiencies", attribute, value)
        if value in values:
            first = self.cells[path][0][0]
            self.error(
                *value_cell,
                f"{excerpt(username)} holds {excerpt(f'{attribute}/{value}')} "
                f"already, on line {first}",
                "keep one row per proficiency",
            )
            return
        values[value] = level
        self.place(path[:-1], attribute_cell, attribute_cell)
        self.place(path, value_cell, level_cell)


# Reads one data row (line, cells) into the reader.
RowReader = Callable[[_Reader, int, list[str]], None]


def parse_csv_source(raw: bytes, display: str, ignored_columns: list[str]) -> CsvSource:
    """Parse one CSV manifest's bytes; ManifestInvalid with every positioned error."""
    text = decode_text(raw, display)
    del raw
    reader = _Reader(display, {c.casefold() for c in ignored_columns})
    rows = _rows(text, display)
    while rows and not any(cell.strip() for cell in rows[0][1]):
        rows.pop(0)
    if not rows:
        raise ManifestInvalid(
            [
                ManifestError(
                    display, 1, 1, "CSV file has no header row", f"start it with {_LAYOUTS}"
                )
            ]
        )
    (header_line, header), body = rows[0], rows[1:]
    names = [cell.strip().casefold() for cell in header]
    layout = _layout(reader, header_line, names, header)
    if layout is None:
        raise ManifestInvalid(reader.errors)
    for line, cells in body:
        if not any(cell.strip() for cell in cells):
            continue  # spreadsheets leave empty rows behind
        if len(cells) != len(header):
            few = "few" if len(cells) < len(header) else "many"
            column = min(len(cells), len(header)) + (1 if few == "many" else 0)
            reader.error(
                line,
                max(column, 1),
                f"row has too {few} cells: {len(cells)}, the header has {len(header)}",
                "every row needs one cell per header column (quote cells holding commas)",
            )
            continue
        layout(reader, line, cells)
    if reader.errors:
        raise ManifestInvalid(reader.errors)
    data = {"users": reader.users} if reader.users else {}
    source = CsvSource(display, data, "", cells=reader.cells)
    source.cells.setdefault(("users",), ((header_line, 1), (header_line, 1)))
    return source


def _rows(text: str, display: str) -> list[tuple[int, list[str]]]:
    """(first line, cells) of each row."""
    rows: list[tuple[int, list[str]]] = []
    parsed = csv.reader(io.StringIO(text, newline=""), strict=True)
    line = 1
    try:
        for cells in parsed:
            rows.append((line, cells))
            line = parsed.line_num + 1
    except csv.Error as exc:
        raise ManifestInvalid(
            [
                ManifestError(
                    display,
                    line,
                    1,
                    f"invalid CSV: {exc}",
                    "check the quotes in this row: a quoted cell must end with a quote",
                )
            ]
        ) from None
    return rows


def _layout(reader: _Reader, line: int, names: list[str], header: list[str]) -> RowReader | None:
    """The row reader the header asks for, or None (errors said)."""
    seen: dict[str, int] = {}
    for column, name in enumerate(names, 1):
        if name in seen:
            reader.error(
                line,
                column,
                f"column {excerpt(header[column - 1])} appears twice "
                f"(columns {seen[name]} and {column})",
                "keep one",
            )
        seen.setdefault(name, column)
    if "username" not in seen:
        reader.error(line, 1, "missing column 'username'", f"the header must be {_LAYOUTS}")
        return None
    long = "attribute" in seen or "level" in seen or "value" in seen
    for column, name in enumerate(names, 1):
        known = name in LONG_COLUMNS or name == SETS_COLUMN or (not long and ":" in name)
        if not known and name not in reader.ignored:
            reader.error(
                line,
                column,
                f"unknown column {excerpt(header[column - 1])}",
                f"the header must be {_LAYOUTS}; list columns to skip in "
                "settings.csv_ignore_columns",
            )
    if long:
        missing = [c for c in LONG_COLUMNS if c not in seen]
        for name in missing:
            reader.error(
                line, 1, f"missing column {excerpt(name)}", f"the header must be {_LAYOUTS}"
            )
    if reader.errors:
        return None
    if long:
        return _long_row(seen)
    proficiency_columns: list[tuple[int, str, str]] = []
    for column, name in enumerate(names, 1):
        if ":" in name and name not in reader.ignored:
            attribute, _, value = header[column - 1].strip().partition(":")
            proficiency_columns.append((column, attribute.strip(), value.strip()))
    for column, attribute, value in proficiency_columns:
        if not attribute or not value:
            reader.error(
                line,
                column,
                f"column {excerpt(header[column - 1])} is not <Attribute>:<Value>",
                "name proficiency columns like Language:Spanish",
            )
    return None if reader.errors else _wide_row(seen, proficiency_columns)


def _long_row(columns: dict[str, int]) -> RowReader:
    at = {name: columns[name] for name in LONG_COLUMNS}

    def read(reader: _Reader, line: int, cells: list[str]) -> None:
        started = reader.row_user(line, cells, columns, one_row_each=False)
        if started is None:
            return
        username, user = started
        cell = {name: cells[column - 1].strip() for name, column in at.items()}
        if not cell["attribute"] and not cell["value"] and not cell["level"]:
            return  # the user is declared, holding nothing from this row
        for name in ("attribute", "value", "level"):
            if not cell[name]:
                reader.error(
                    line,
                    at[name],
                    f"empty {name}",
                    "fill in attribute, value and level, or leave all three empty "
                    "to declare a user with no proficiencies",
                )
                return
        level = reader.level(cell["level"], line, at["level"])
        where = ((line, at["attribute"]), (line, at["value"]), (line, at["level"]))
        reader.proficiency(username, user, cell["attribute"], cell["value"], level, where)

    return read


def _wide_row(
    columns: dict[str, int], proficiency_columns: list[tuple[int, str, str]]
) -> RowReader:

    def read(reader: _Reader, line: int, cells: list[str]) -> None:
        started = reader.row_user(line, cells, columns, one_row_each=True)
        if started is None:
            return
        username, user = started
        for column, attribute, value in proficiency_columns:
            cell = cells[column - 1].strip()
            if cell:
                where = ((line, column), (line, column), (line, column))
                level = reader.level(cell, line, column)
                reader.proficiency(username, user, attribute, value, level, where)

    return read
