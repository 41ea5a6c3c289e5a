"""Change files of the AWS bulk attribute updater sample turned into manifest
edits: each row (`identifier,identifier_type,action,attribute,value,level`,
`action` add, remove or update) changes what the manifests declare for one
user, so `plan` shows it for review and `apply` carries it out.

A row is checked against the manifests as the rows before it left them: an
`add` of a value the user holds, an `update` or `remove` of one they do not,
a user the manifests do not declare, or a value they do not declare, is an
error naming the row. Nothing is written unless every row is valid and the
edited manifests load.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from reconciler.adopt.declarations import Levels, ManifestFiles, UserDeclarations, own_entries_for
from reconciler.manifest import Manifest
from reconciler.manifest.csv_source import csv_rows
from reconciler.manifest.errors import ManifestError, ManifestInvalid
from reconciler.manifest.source import decode_text
from reconciler.quoting import excerpt
from reconciler.service import limits

COLUMNS = ("identifier", "identifier_type", "action", "attribute", "value", "level")
ACTIONS = ("add", "remove", "update")
IDENTIFIER_TYPES = ("username", "user_id")


@dataclass(frozen=True)
class ChangeRow:
    """One row of a change file, as read."""

    line: int
    identifier: str
    identifier_type: str
    action: str
    attribute: str
    value: str
    level: int | None  # None: a remove without a level

    def describe(self, username: str) -> str:
        level = f" {self.level}" if self.action != "remove" else ""
        return f"row {self.line}: {self.action} {username} {self.attribute}/{self.value}{level}"


@dataclass
class ChangeFile:
    """A change file's rows, and where each column is (1 for the first)."""

    display: str
    rows: list[ChangeRow]
    columns: dict[str, int]


class _Errors(list[ManifestError]):
    """Errors about a change file's rows, at the row's cell."""

    def __init__(self, changes: ChangeFile) -> None:
        super().__init__()
        self.changes = changes

    def add(self, row: ChangeRow, column: str, message: str, hint: str = "") -> None:
        at = self.changes.columns[column]
        self.append(ManifestError(self.changes.display, row.line, at, message, hint))


def parse_change_file(raw: bytes, display: str) -> ChangeFile:
    """A change file's rows, or ManifestInvalid with every positioned error."""
    errors: list[ManifestError] = []
    rows = [
        (line, cells)
        for line, cells in csv_rows(decode_text(raw, display), display, errors)
        if any(c.strip() for c in cells)
    ]
    if not rows:
        hint = f"start it with {','.join(COLUMNS)}"
        raise ManifestInvalid([*errors, ManifestError(display, 1, 1, "no header row", hint)])
    (header_line, header), body = rows[0], rows[1:]
    names = [c.strip().casefold() for c in header]
    for column, name in enumerate(names, 1):
        if name not in COLUMNS or names.index(name) != column - 1:
            problem = "appears twice" if name in COLUMNS else "is not a change file column"
            errors.append(
                ManifestError(
                    display,
                    header_line,
                    column,
                    f"column {excerpt(header[column - 1])} {problem}",
                    f"the header must be {','.join(COLUMNS)}",
                )
            )
    for name in COLUMNS:
        if name not in names:
            errors.append(
                ManifestError(
                    display,
                    header_line,
                    1,
                    f"missing column {excerpt(name)}",
                    f"the header must be {','.join(COLUMNS)}",
                )
            )
    if errors:
        raise ManifestInvalid(errors)
    at = {name: names.index(name) for name in COLUMNS}
    changes = []
    for line, cells in body:
        if len(cells) != len(header):
            errors.append(
                ManifestError(
                    display,
                    line,
                    1,
                    f"row has {len(cells)} cells, the header has {len(header)}",
                    "quote cells holding commas",
                )
            )
            continue
        change = _change_row(display, line, {n: cells[i].strip() for n, i in at.items()}, at)
        if isinstance(change, ManifestError):
            errors.append(change)
        else:
            changes.append(change)
    if errors:
        raise ManifestInvalid(errors)
    return ChangeFile(display, changes, {name: column + 1 for name, column in at.items()})


def _change_row(
    display: str, line: int, cell: dict[str, str], at: dict[str, int]
) -> ChangeRow | ManifestError:
    def error(name: str, message: str, hint: str = "") -> ManifestError:
        return ManifestError(display, line, at[name] + 1, message, hint)

    for name in ("identifier", "attribute", "value"):
        if not cell[name]:
            return error(name, f"empty {name}")
    identifier_type, action = cell["identifier_type"].casefold(), cell["action"].casefold()
    if identifier_type not in IDENTIFIER_TYPES:
        return error(
            "identifier_type",
            f"identifier_type {excerpt(cell['identifier_type'])} is not username or user_id",
        )
    if action not in ACTIONS:
        return error("action", f"action {excerpt(cell['action'])} is not add, remove or update")
    level_cell = cell["level"]
    whole = level_cell.isascii() and level_cell.isdigit()
    level = int(level_cell) if whole else None
    if action == "remove":
        if level_cell and (level is None or level > limits.MAX_LEVEL):
            return error("level", f"level {excerpt(level_cell)} is not a level", "leave it empty")
        return ChangeRow(line, cell["identifier"], identifier_type, action,
                         cell["attribute"], cell["value"], None)  # fmt: skip
    if level is None or not limits.MIN_LEVEL <= level <= limits.MAX_LEVEL:
        zero = " (0 is only for remove)" if level == 0 else ""
        return error(
            "level",
            f"level {excerpt(level_cell or '(empty)')} is not a whole number from "
            f"{limits.MIN_LEVEL} to {limits.MAX_LEVEL}{zero}",
        )
    return ChangeRow(line, cell["identifier"], identifier_type, action,
                     cell["attribute"], cell["value"], level)  # fmt: skip


@dataclass
class ImportedChanges:
    """What the rows did to each manifest file, and the files' new bytes."""

    done: dict[Path, list[str]]
    texts: dict[Path, bytes]


def import_changes(
    changes: ChangeFile,
    manifest: Manifest,
    files: ManifestFiles,
    usernames_by_id: dict[str, str] | None,
) -> ImportedChanges:
    """Apply the rows of `changes` to the declarations in `files`, in order;
    ManifestInvalid naming every invalid row, in which case nothing is
    edited. `usernames_by_id` resolves user_id identifiers."""
    declarations = files.declarations()
    set_levels = files.set_levels()
    held: dict[str, Levels] = {}
    done: dict[Path, list[str]] = {}
    errors = _Errors(changes)
    for row in changes.rows:
        username = _username(row, usernames_by_id, declarations, errors)
        if username is None:
            continue
        declared_in = declarations[username]
        if username not in held:
            held[username] = {}
            for name in declared_in.sets_of(username):
                held[username].update(set_levels.get(name, {}))
            held[username].update(declared_in.own(username))
        levels, key = held[username], (row.attribute, row.value)
        if not _declared(manifest, row, errors):
            continue
        if row.action == "add" and key in levels:
            errors.add(row, "action", f"{username} holds {row.attribute}/{row.value} already "
                       f"(level {levels[key]:g})", "use update to change its level")  # fmt: skip
            continue
        if row.action != "add" and key not in levels:
            grouped = any(key in group.proficiencies for group in manifest.groups)
            hint = "use add to give it" if row.action == "update" else ""
            if grouped:  # what groups give is the group's: rows edit users' own entries
                hint = f"a group gives {row.attribute}/{row.value}: change that group instead"
            errors.add(row, "action", f"{username} does not hold {row.attribute}/{row.value} "
                       "by their own entries or sets", hint)  # fmt: skip
            continue
        if row.action == "remove":
            del levels[key]
        else:
            assert row.level is not None
            levels[key] = float(row.level)
        done.setdefault(declared_in.path, []).append(row.describe(username))
    if errors:
        raise ManifestInvalid(errors)
    for username, levels in held.items():
        declared_in = declarations[username]
        wanted = own_entries_for(
            levels, declared_in.sets_of(username), declared_in.own(username), set_levels, {}
        )
        if wanted is not None:
            declared_in.declare(username, *wanted)
    return ImportedChanges(done, files.checked_texts())


def _username(
    row: ChangeRow,
    usernames_by_id: dict[str, str] | None,
    declarations: dict[str, UserDeclarations],
    errors: _Errors,
) -> str | None:
    """The declared user a row names, or None (an error said)."""
    username = row.identifier
    if row.identifier_type == "user_id":
        assert usernames_by_id is not None
        found = usernames_by_id.get(row.identifier)
        if found is None:
            errors.add(
                row, "identifier", f"no user with id {excerpt(row.identifier)} in the instance"
            )
            return None
        username = found
    if username not in declarations:
        close = difflib.get_close_matches(username, list(declarations), n=3)
        errors.add(
            row,
            "identifier",
            f"{username} is not declared in the manifests",
            f"did you mean {', '.join(close)}?"
            if close
            else f"declare them first: connect-reconciler export --update DIR --users {username}",
        )
        return None
    return username


def _declared(manifest: Manifest, row: ChangeRow, errors: _Errors) -> bool:
    """Whether the manifests may give the row's attribute value (an error said if not)."""
    if row.attribute in manifest.settings.external_attributes:
        return True
    attribute = manifest.desired.attributes.get(row.attribute)
    if attribute is None:
        errors.add(
            row, "attribute", f"attribute {excerpt(row.attribute)} is not declared in the manifests"
        )
        return False
    if row.value not in attribute.values:
        errors.add(row, "value", f"value {excerpt(row.value)} is not declared for attribute "
                   f"{excerpt(row.attribute)}")  # fmt: skip
        return False
    return True
