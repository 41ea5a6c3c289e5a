"""What each user declares in the manifests, edited where it is written: a
YAML `users:` section through the ruamel round trip (comments, key order and
layout stay) or a CSV manifest row by row (rows not changed keep their text,
order is kept, new users go at the end). `export --update` and `import
changes` both change users through this, so a CSV stays a CSV."""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ruamel.yaml.comments import CommentedMap

from reconciler.adopt.yaml_style import (
    flow_map,
    proficiency_map,
    quoted,
    remove_entry,
    round_trip_yaml,
    yaml_level,
)
from reconciler.manifest.csv_source import LONG_COLUMNS, SETS_COLUMN, wide_column
from reconciler.manifest.loader import CSV_SUFFIX, find_manifest_files, load_manifest_files

Levels = dict[tuple[str, str], float]


def own_entries_for(
    target: Levels, sets: list[str], own: Levels, set_levels: dict[str, Levels], groups: Levels
) -> tuple[bool, Levels] | None:
    """What a user's own entries must be so that, over what their groups and
    sets give, they hold `target`: (whether their sets stay, the entries), or
    None when the declaration says that already or only a group could."""
    given = dict(groups)
    for name in sets:
        given.update(set_levels.get(name, {}))
    if {**given, **own} == target:
        return None
    keeps_sets = not (sets and any(key not in target for key in given))
    if not keeps_sets:
        given = dict(groups)  # a set gives something the user is not to hold
    wanted = {key: level for key, level in target.items() if given.get(key) != level}
    if keeps_sets and wanted == own:
        return None
    return keeps_sets, wanted


class UserDeclarations(Protocol):
    """One file's users, as `export --update` and `import changes` edit them."""

    path: Path
    changed: bool

    def usernames(self) -> list[str]: ...

    def sets_of(self, username: str) -> list[str]: ...

    def own(self, username: str) -> Levels: ...

    def declare(self, username: str, keeps_sets: bool, own: Levels) -> None: ...

    def remove(self, username: str) -> None: ...

    def add(self, username: str, own: Levels) -> None: ...


def levels_of(body: Any) -> Levels:
    """`{Attribute: {Value: level}}` as written in YAML, flattened."""
    if not isinstance(body, dict):
        return {}
    return {
        (str(attribute), str(value)): float(level)
        for attribute, values in body.items()
        if isinstance(values, dict)
        for value, level in values.items()
    }


@dataclass
class YamlUsers:
    """A YAML file's `users:` section."""

    path: Path
    section: CommentedMap
    changed: bool = False
    # each username's key as the YAML holds it (`12345:` is a number there)
    _keys: dict[str, Any] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._keys = {str(key): key for key in self.section}

    def usernames(self) -> list[str]:
        return list(self._keys)

    def _key(self, username: str) -> Any:
        return self._keys[username]

    def _body(self, username: str) -> Any:
        return self.section[self._key(username)]

    def sets_of(self, username: str) -> list[str]:
        body = self._body(username)
        return [str(s) for s in body.get("sets") or []] if isinstance(body, dict) else []

    def own(self, username: str) -> Levels:
        body = self._body(username)
        return levels_of(body.get("proficiencies")) if isinstance(body, dict) else {}

    def declare(self, username: str, keeps_sets: bool, own: Levels) -> None:
        body = self._body(username)
        body = body if isinstance(body, CommentedMap) else CommentedMap()
        if not keeps_sets:
            body.pop("sets", None)
        _set_proficiencies(body, own)
        self.section[self._key(username)] = body if body else None
        self.changed = True

    def remove(self, username: str) -> None:
        remove_entry(self.section, self._keys.pop(username))
        self.changed = True

    def add(self, username: str, own: Levels) -> None:
        self.section[username] = None
        self._keys[username] = username
        self.declare(username, True, own)


def _set_proficiencies(body: CommentedMap, wanted: Levels) -> None:
    """Edit `proficiencies` in place: keys keep their order and style."""
    current = body.get("proficiencies")
    if not wanted:
        body.pop("proficiencies", None)
        return
    if not isinstance(current, CommentedMap):
        body["proficiencies"] = proficiency_map(wanted)
        return
    by_attribute: dict[str, dict[str, float]] = {}
    for (attribute, value), level in sorted(wanted.items()):
        by_attribute.setdefault(attribute, {})[value] = level
    for attribute in [a for a in current if str(a) not in by_attribute]:
        remove_entry(current, attribute)
    for attribute, values in by_attribute.items():
        existing = next((current[a] for a in current if str(a) == attribute), None)
        if not isinstance(existing, CommentedMap):
            current[quoted(attribute)] = flow_map(
                {v: yaml_level(level) for v, level in values.items()}
            )
            continue
        for value in [v for v in existing if str(v) not in values]:
            remove_entry(existing, value)
        for value, level in values.items():
            key = next((v for v in existing if str(v) == value), quoted(value))
            if existing.get(key) != level:
                existing[key] = yaml_level(level)


@dataclass
class _Row:
    cells: list[str]
    text: str | None  # as read; None once changed (written anew)
    removed: bool = False
    followers: list[_Row] = field(default_factory=list)  # rows added after this one
    follows: _Row | None = None  # the row as read this added row is written after


class CsvUsers:
    """A CSV manifest (it loaded, so its header is one of the two layouts)."""

    def __init__(self, path: Path, raw: bytes, ignored_columns: list[str]) -> None:
        self.path = path
        self.bom = raw.startswith(codecs.BOM_UTF8)
        lines = io.StringIO(raw.decode("utf-8-sig"), newline="").readlines()
        self.newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
        self.rows: list[_Row] = []
        parsed, start = csv.reader(iter(lines), strict=True), 0
        for cells in parsed:
            self.rows.append(_Row(cells, "".join(lines[start : parsed.line_num])))
            start = parsed.line_num
        self.header = next(r for r in self.rows if any(c.strip() for c in r.cells))
        names = [c.strip().casefold() for c in self.header.cells]
        self.at = {name: names.index(name) for name in reversed(names)}
        self.long = "attribute" in self.at
        ignored = {c.casefold() for c in ignored_columns}
        self.columns: dict[tuple[str, str], int] = {}
        if not self.long:
            for index, name in enumerate(names):
                if ":" in name and name not in ignored:
                    self.columns[wide_column(self.header.cells[index])] = index
        body = self.rows[self.rows.index(self.header) + 1 :]
        self.by_user: dict[str, list[_Row]] = {}
        for row in body:
            if len(row.cells) == len(self.header.cells) and row.cells[self.at["username"]].strip():
                self.by_user.setdefault(row.cells[self.at["username"]].strip(), []).append(row)
        self.changed = False

    def usernames(self) -> list[str]:
        return list(self.by_user)

    def sets_of(self, username: str) -> list[str]:
        column = self.at.get(SETS_COLUMN)
        if column is None:
            return []
        for row in self.by_user[username]:
            names = [n.strip() for n in row.cells[column].split(";") if n.strip()]
            if names:
                return names
        return []

    def own(self, username: str) -> Levels:
        held: Levels = {}
        for row in self.by_user[username]:
            for key, column in self._levels(row):
                held[key] = float(row.cells[column].strip())
        return held

    def _levels(self, row: _Row) -> list[tuple[tuple[str, str], int]]:
        """(attribute, value) and the level's column of what `row` declares."""
        if self.long:
            attribute, value = (row.cells[self.at[n]].strip() for n in LONG_COLUMNS[1:3])
            return [((attribute, value), self.at["level"])] if attribute else []
        return [(key, column) for key, column in self.columns.items() if row.cells[column].strip()]

    def _set(self, row: _Row, column: int, cell: str) -> None:
        if row.cells[column] != cell:
            row.cells[column] = cell
            row.text = None
            self.changed = True

    def _set_level(self, row: _Row, column: int, level: float | None) -> None:
        """A level cell, rewritten only when the level differs (` 4` stays)."""
        held = row.cells[column].strip()
        if (float(held) if held else None) != level:
            self._set(row, column, "" if level is None else str(yaml_level(level)))

    def declare(self, username: str, keeps_sets: bool, own: Levels) -> None:
        rows = self.by_user[username]
        sets = ";".join(self.sets_of(username)) if keeps_sets else ""
        if SETS_COLUMN in self.at and not keeps_sets:
            for row in rows:
                self._set(row, self.at[SETS_COLUMN], "")
        if not self.long:
            for key in sorted(own.keys() - self.columns.keys()):
                self._add_column(key)
            for key, column in self.columns.items():
                self._set_level(rows[0], column, own.get(key))
            return
        missing = dict(own)
        for row in rows:
            declared = self._levels(row)
            if declared and declared[0][0] in missing:
                key, column = declared[0]
                self._set_level(row, column, missing.pop(key))
            elif declared or own:  # an entry not wanted, or an empty row no longer needed
                row.removed, self.changed = True, True
        kept = [row for row in rows if not row.removed]
        added = self._long_rows(username, missing, sets, placeholder=not kept)
        last = kept[-1] if kept else rows[-1]
        anchor = last.follows or last  # rows added after an added row follow its row
        anchor.followers.extend(added)
        for row in added:
            row.follows = anchor
        remaining = kept + added
        sets_at = self.at.get(SETS_COLUMN)
        if sets and sets_at is not None and not any(r.cells[sets_at].strip() for r in remaining):
            self._set(remaining[0], sets_at, sets)  # the row that named them went
        self.by_user[username] = remaining

    def _long_rows(self, username: str, own: Levels, sets: str, placeholder: bool) -> list[_Row]:
        entries = [(a, v, str(yaml_level(level))) for (a, v), level in sorted(own.items())]
        if not entries and placeholder:
            entries = [("", "", "")]  # a user holding nothing has one row of empty cells
        rows = []
        for attribute, value, level in entries:
            cells = [""] * len(self.header.cells)
            named = dict(zip(LONG_COLUMNS, (username, attribute, value, level), strict=True))
            for name, cell in named.items():
                cells[self.at[name]] = cell
            if SETS_COLUMN in self.at:
                cells[self.at[SETS_COLUMN]] = sets
            rows.append(_Row(cells, None))
        if rows:
            self.changed = True
        return rows

    def _add_column(self, key: tuple[str, str]) -> None:
        self.columns[key] = len(self.header.cells)
        for row in [self.header, *(r for rows in self.by_user.values() for r in rows)]:
            row.cells.append(f"{key[0]}:{key[1]}" if row is self.header else "")
            row.text = None
        self.changed = True

    def remove(self, username: str) -> None:
        for row in self.by_user.pop(username):
            row.removed = True
        self.changed = True

    def add(self, username: str, own: Levels) -> None:
        if self.long:
            rows = self._long_rows(username, own, "", placeholder=True)
        else:
            cells = [""] * len(self.header.cells)
            cells[self.at["username"]] = username
            rows = [_Row(cells, None)]
        self.rows.extend(rows)
        self.by_user[username] = rows
        if not self.long:
            self.declare(username, True, own)
        self.changed = True

    def text(self) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator=self.newline)
        for row in self.rows:
            for written in [row, *row.followers]:
                if written.removed:
                    continue
                if written.text is None:
                    writer.writerow(written.cells)
                else:
                    out.write(written.text)
                    if not written.text.endswith(("\n", "\r")):
                        out.write(self.newline)  # a last row without its line end
        return (codecs.BOM_UTF8 if self.bom else b"") + out.getvalue().encode("utf-8")


class ManifestFiles:
    """The manifests under a config directory, open for editing: YAML
    documents (round trip) and CSV manifests."""

    def __init__(self, config_dir: Path, csv_ignore_columns: list[str]) -> None:
        self.config_dir = config_dir
        self.yaml = round_trip_yaml()
        self.documents: dict[Path, Any] = {}
        self.tables: dict[Path, CsvUsers] = {}
        for path in find_manifest_files(config_dir):
            if path.suffix == CSV_SUFFIX:
                self.tables[path] = CsvUsers(path, path.read_bytes(), csv_ignore_columns)
            else:
                self.documents[path] = self.yaml.load(path.read_text(encoding="utf-8"))
        self.changed: set[Path] = set()  # YAML files changed outside their users
        files: list[UserDeclarations] = [
            YamlUsers(path, document["users"])
            for path, document in self.documents.items()
            if isinstance(document, dict) and isinstance(document.get("users"), CommentedMap)
        ]
        files.extend(self.tables.values())
        self._user_files = sorted(files, key=lambda f: str(f.path))

    def user_files(self) -> list[UserDeclarations]:
        """Every file declaring users, in path order."""
        return list(self._user_files)

    def declarations(self) -> dict[str, UserDeclarations]:
        """Which file declares each user."""
        return {name: f for f in self.user_files() for name in f.usernames()}

    def set_levels(self) -> dict[str, Levels]:
        """What each proficiency set gives."""
        return {
            str(name): levels_of(body)
            for document in self.documents.values()
            if isinstance(document, dict) and isinstance(document.get("proficiency_sets"), dict)
            for name, body in document["proficiency_sets"].items()
        }

    def for_new_users(self) -> UserDeclarations:
        """The file holding the most users (new ones join them), or a new users.yaml."""
        files = self.user_files()
        if files:
            return max(files, key=lambda f: (len(f.usernames()), str(f.path)))
        path = self.config_dir / "users.yaml"
        document = self.documents.setdefault(path, CommentedMap())
        if not isinstance(document.get("users"), CommentedMap):
            document["users"] = CommentedMap()
        created = YamlUsers(path, document["users"])
        self._user_files.append(created)
        return created

    def with_texts(self, texts: dict[Path, bytes]) -> list[tuple[str, str, bytes]]:
        """Every manifest file as (path relative to the config directory, path
        to show, bytes), `texts` replacing what is on disk: what the loader
        reads to check edits before they are written."""
        paths = sorted({*self.documents, *self.tables, *texts}, key=str)
        return [
            (
                str(p.relative_to(self.config_dir)),
                str(p),
                texts[p] if p in texts else p.read_bytes(),
            )
            for p in paths
        ]

    def checked_texts(self) -> dict[Path, bytes]:
        """texts(), once the manifests they make load (ManifestInvalid if not:
        then nothing should be written)."""
        texts = self.texts()
        load_manifest_files(self.with_texts(texts))
        return texts

    def texts(self) -> dict[Path, bytes]:
        """The new bytes of every changed file."""
        changed = self.changed | {f.path for f in self._user_files if f.changed}
        out: dict[Path, bytes] = {}
        for path in sorted(changed):
            if path in self.tables:
                out[path] = self.tables[path].text()
            else:
                stream = io.StringIO()
                self.yaml.dump(self.documents[path], stream)
                out[path] = stream.getvalue().encode("utf-8")
        return out
