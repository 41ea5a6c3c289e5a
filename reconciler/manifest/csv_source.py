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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from reconciler.manifest.errors import ManifestError, ManifestInvalid
from reconciler.manifest.source import DocPath, SourceFile, decode_text
from reconciler.quoting import excerpt
from reconciler.service.limits import RESERVED_PREFIXES

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
    """A CSV file read as a manifest: its `users:` section, and its text to
    find positions in. Positions are needed only for errors, so they are
    found on the first ask, by reading the rows once more, and loading a
    valid file keeps no index of them."""

    ignored_columns: list[str] = field(default_factory=list)
    _cells: Cells | None = field(default=None, repr=False)

    def position(self, path: DocPath, at_key: bool = False) -> tuple[int, int]:
        if self._cells is None:
            self._cells = _read(self.text, self.path, self.ignored_columns, placing=True).cells
        assert self._cells is not None
        for length in range(len(path), 0, -1):
            found = self._cells.get(path[:length])
            if found is not None:
                return found[0] if at_key else found[1]
        return 1, 1


# Per path: where its key and its value are, (line, column) each.
Cells = dict[DocPath, tuple[tuple[int, int], tuple[int, int]]]


def wide_column(name: str) -> tuple[str, str]:
    """A wide layout's `<Attribute>:<Value>` header cell as (attribute,
    value). It splits at the first colon after a reserved prefix, so the
    system attributes' columns read as written (`connect:Language:en-US`)."""
    text = name.strip()
    prefix = next((p for p in RESERVED_PREFIXES if text.casefold().startswith(p)), "")
    attribute, _, value = text[len(prefix) :].partition(":")
    return text[: len(prefix)] + attribute.strip(), value.strip()


def level_of(cell: str) -> Any:
    """A level cell's value: whole numbers become ints; anything else is
    left as written, for the schema to refuse with the YAML loader's words."""
    return int(cell) if _WHOLE.fullmatch(cell) else cell


class _Reader:
    """What the rows declare so far, the errors found and, when `placing`,
    where each thing was declared first."""

    def __init__(self, text: str, display: str, ignored: list[str], placing: bool) -> None:
        self.text = text
        self.display = display
        self.ignored_columns = ignored
        self.ignored = {c.casefold() for c in ignored}
        self.errors: list[ManifestError] = []
        self.users: dict[str, dict[str, Any]] = {}
        self.cells: Cells | None = {} if placing else None
        # one object per repeated attribute or value name, as the YAML reader keeps them
        self.shared: dict[str, str] = {}
        self._replayed: Cells | None = None

    def error(self, line: int, column: int, message: str, hint: str = "") -> None:
        self.errors.append(ManifestError(self.display, line, column, message, hint))

    def place(self, path: DocPath, key: tuple[int, int], value: tuple[int, int]) -> None:
        if self.cells is not None:
            self.cells.setdefault(path, (key, value))

    def first_line(self, path: DocPath) -> int:
        """The line that declared `path` first (for an error about a repeat)."""
        cells = self.cells
        if cells is None:
            if self._replayed is None:
                self._replayed = _read(
                    self.text, self.display, self.ignored_columns, placing=True
                ).cells
            cells = self._replayed
        assert cells is not None
        return cells[path][0][0]

    def level(self, cell: str, line: int, column: int) -> Any:
        if cell.isdigit() and cell.isascii():
            return int(cell)
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
        user = self.users.get(username)
        if user is None:
            user = self.users[username] = {"proficiencies": {}}
            path: DocPath = ("users", username)
            self.place(path, (line, username_at), (line, username_at))
            self.place((*path, "proficiencies"), (line, username_at), (line, username_at))
        elif one_row_each:
            self.error(
                line,
                username_at,
                f"{excerpt(username)} has a row already, on line "
                f"{self.first_line(('users', username))}",
                "give each user one row in this layout",
            )
            return None
        sets_at = columns.get(SETS_COLUMN)
        if sets_at is not None:
            self.sets(user, username, cells[sets_at - 1], line, sets_at)
        return username, user

    def sets(self, user: dict[str, Any], username: str, cell: str, line: int, column: int) -> None:
        names = [n.strip() for n in cell.split(";") if n.strip()]
        if not names:
            return
        if "sets" in user and user["sets"] != names:
            self.error(
                line,
                column,
                f"{excerpt(username)} lists other sets than on line "
                f"{self.first_line(('users', username, 'sets'))}",
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
        line: int,
        columns: tuple[int, int, int],
    ) -> None:
        """Declare one proficiency; `columns` are the attribute's, the
        value's and the level's."""
        attribute = self.shared.setdefault(attribute, attribute)
        value = self.shared.setdefault(value, value)
        held = user["proficiencies"]
        values = held.get(attribute)
        if values is None:
            values = held[attribute] = {}
            if self.cells is not None:
                at = (line, columns[0])
                self.place(("users", username, "proficiencies", attribute), at, at)
        if value in values:
            path: DocPath = ("users", username, "proficiencies", attribute, value)
            self.error(
                line,
                columns[1],
                f"{excerpt(username)} holds {excerpt(f'{attribute}/{value}')} "
                f"already, on line {self.first_line(path)}",
                "keep one row per proficiency",
            )
            return
        values[value] = level
        if self.cells is not None:
            path = ("users", username, "proficiencies", attribute, value)
            self.place(path, (line, columns[1]), (line, columns[2]))


# Reads one data row (line, cells) into the reader.
RowReader = Callable[[_Reader, int, list[str]], None]


def parse_csv_source(raw: bytes, display: str, ignored_columns: list[str]) -> CsvSource:
    """Parse one CSV manifest's bytes; ManifestInvalid with every positioned error."""
    text = decode_text(raw, display)
    del raw
    reader = _read(text, display, ignored_columns, placing=False)
    if reader.errors:
        raise ManifestInvalid(reader.errors)
    data = {"users": reader.users} if reader.users else {}
    return CsvSource(display, data, text, ignored_columns=ignored_columns)


def _read(text: str, display: str, ignored_columns: list[str], placing: bool) -> _Reader:
    """Every row of `text` read; the reader holds what they declare and the
    errors found."""
    reader = _Reader(text, display, ignored_columns, placing)
    rows = csv_rows(reader.text, reader.display, reader.errors)
    header_line, header = next(
        ((line, cells) for line, cells in rows if any(cell.strip() for cell in cells)),
        (0, []),
    )
    if not header:
        if not reader.errors:
            reader.error(1, 1, "CSV file has no header row", f"start it with {_LAYOUTS}")
        return reader
    reader.place(("users",), (header_line, 1), (header_line, 1))
    names = [cell.strip().casefold() for cell in header]
    layout = _layout(reader, header_line, names, header)
    if layout is None:
        return reader
    width = len(header)
    for line, cells in rows:
        if len(cells) != width:
            if not any(cell.strip() for cell in cells):
                continue  # spreadsheets leave empty rows behind
            few = "few" if len(cells) < width else "many"
            column = min(len(cells), width) + (1 if few == "many" else 0)
            reader.error(
                line,
                max(column, 1),
                f"row has too {few} cells: {len(cells)}, the header has {width}",
                "every row needs one cell per header column (quote cells holding commas)",
            )
            continue
        if not cells[0].strip() and not any(cell.strip() for cell in cells):
            continue
        layout(reader, line, cells)
    return reader


def csv_rows(
    text: str, display: str, errors: list[ManifestError]
) -> Iterator[tuple[int, list[str]]]:
    """(first line, cells) of each row of a CSV file, until the end or a row
    the csv module cannot read (then an error at that row joins `errors`)."""
    parsed = csv.reader(io.StringIO(text, newline=""), strict=True)
    line = 1
    try:
        for cells in parsed:
            yield line, cells
            line = parsed.line_num + 1
    except csv.Error as exc:
        errors.append(
            ManifestError(
                display,
                line,
                1,
                f"invalid CSV: {exc}",
                "check the quotes in this row: a quoted cell must end with a quote",
            )
        )


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
            attribute, value = wide_column(header[column - 1])
            proficiency_columns.append((column, attribute, value))
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
    attribute_at, value_at, level_at = (columns[name] for name in LONG_COLUMNS[1:])
    placed = (attribute_at, value_at, level_at)

    def read(reader: _Reader, line: int, cells: list[str]) -> None:
        started = reader.row_user(line, cells, columns, one_row_each=False)
        if started is None:
            return
        attribute = cells[attribute_at - 1].strip()
        value = cells[value_at - 1].strip()
        level = cells[level_at - 1].strip()
        if not attribute or not value or not level:
            if attribute or value or level:
                empty = next(
                    n
                    for n, c in zip(LONG_COLUMNS[1:], (attribute, value, level), strict=True)
                    if not c
                )
                reader.error(
                    line,
                    columns[empty],
                    f"empty {empty}",
                    "fill in attribute, value and level, or leave all three empty "
                    "to declare a user with no proficiencies",
                )
            return  # all three empty: the user is declared, holding nothing from this row
        username, user = started
        level_read = reader.level(level, line, level_at)
        reader.proficiency(username, user, attribute, value, level_read, line, placed)

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
                level = reader.level(cell, line, column)
                reader.proficiency(
                    username, user, attribute, value, level, line, (column, column, column)
                )

    return read
