"""Safe YAML reading that remembers where every value came from.

Hostile text is bounded before the C parser sees it (file size, flow nesting:
libyaml's time grows with the square of flow depth). We then build plain
Python values straight from the parser's events instead of composing a node
tree or using a constructor, so that:
- only the YAML 1.2 core schema is accepted (no tags at all, no YAML 1.1
  spellings such as `0b100`, `4_` or `yes`),
- duplicate keys are errors, not "last one wins",
- nesting depth and alias expansion are bounded (a billion-laughs file fails
  in milliseconds, a deep one never reaches a recursive composer),
- memory stays at the values themselves: a node tree costs ~10 KB per user.
Positions are needed only for errors; the node tree that maps a path back to
a line and column is composed from the kept text on the first lookup.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _ruamel_yaml import CParser  # type: ignore[import-not-found]  # a C extension, no stubs
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionStartEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.files import InputFileError, InputTooLarge, read_input
from reconciler.manifest.errors import ManifestError, ManifestInvalid
from reconciler.quoting import excerpt

# Bounds on hostile input. Real manifests nest about six levels deep, reuse a
# few anchors and stay well under a megabyte per thousand users.
MAX_DEPTH = 64
MAX_ALIAS_NODES = 100_000
MAX_NUMBER_CHARS = 100

_TAG = "tag:yaml.org,2002:"
MAX_SHARED_CHARS = 200  # longer scalars are not worth looking up

# https://yaml.org/spec/1.2.2/#1032-tag-resolution (the core schema)
_CORE_NULL = re.compile(r"null|Null|NULL|~|")
_CORE_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False}
_CORE_BOOL |= {"FALSE": False}
_CORE_INT = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_CORE_FLOAT = re.compile(
    r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN"
)

PathPart = str | int
DocPath = tuple[PathPart, ...]


def _core_int(text: str) -> int:
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text)


def _core_float(text: str) -> float:
    lowered = text.lower()
    if lowered.endswith(".inf"):
        return -math.inf if lowered.startswith("-") else math.inf
    if lowered == ".nan":
        return math.nan
    return float(text)


def _resolve_plain(text: str) -> Any:
    """The value of a plain (unquoted, untagged) scalar under the core schema."""
    if len(text) <= MAX_NUMBER_CHARS:
        if _CORE_NULL.fullmatch(text):
            return None
        if text in _CORE_BOOL:
            return _CORE_BOOL[text]
        if _CORE_INT.fullmatch(text):
            return _core_int(text)
        if _CORE_FLOAT.fullmatch(text):
            return _core_float(text)
    return text


@dataclass
class SourceFile:
    """One parsed manifest file: its values, and its text for positions."""

    path: str
    data: Any
    text: str
    _root: Node | None = field(default=None, repr=False)
    _index: dict[int, dict[str, tuple[Node, Node]]] = field(default_factory=dict, repr=False)

    def _tree(self) -> Node:
        if self._root is None:
            # The text already loaded once within the bounds, so composing it
            # (recursive in C) is safe.
            self._root = YAML(typ="safe", pure=False).compose(self.text)
        return self._root

    def _children(self, node: MappingNode) -> dict[str, tuple[Node, Node]]:
        index = self._index.get(id(node))
        if index is None:
            index = {str(k.value): (k, v) for k, v in node.value if isinstance(k, ScalarNode)}
            self._index[id(node)] = index
        return index

    def position(self, path: DocPath, at_key: bool = False) -> tuple[int, int]:
        """1-based (line, column) of the value at `path`, or of its key.

        A path that leaves the document (a missing member) resolves to the
        deepest node that exists, which is where the member should be added.
        """
        node, key = self._tree(), None
        for part in path:
            if isinstance(node, MappingNode):
                child = self._children(node).get(str(part))
                if child is None:
                    break
                key, node = child
            elif (
                isinstance(node, SequenceNode) and isinstance(part, int) and part < len(node.value)
            ):
                key, node = None, node.value[part]
            else:
                break
        mark = (key if at_key and key is not None else node).start_mark
        return mark.line + 1, mark.column + 1

    def error(
        self, path: DocPath, message: str, hint: str = "", at_key: bool = False
    ) -> ManifestError:
        line, column = self.position(path, at_key)
        return ManifestError(self.path, line, column, message, hint)


class _Stop(Exception):
    """A bound was crossed: stop reading this file at once."""

    def __init__(self, event: Event, message: str, hint: str) -> None:
        self.event, self.message, self.hint = event, message, hint


_NO_KEY = object()  # also "not cached yet"
_SKIP = object()  # the value of a key that was refused


class _Frame:
    """A collection being built: a list, or a dict with its pending key."""

    __slots__ = ("built_before", "is_list", "key", "key_lines", "start", "value")

    def __init__(self, start: CollectionStartEvent, is_list: bool, built_before: int) -> None:
        self.start = start
        self.is_list = is_list
        self.value: list[Any] | dict[str, Any] = [] if is_list else {}
        self.key: Any = _NO_KEY
        self.key_lines: dict[str, int] = {}
        self.built_before = built_before


class _Builder:
    """Turns parser events into dicts, lists and scalars, collecting errors.

    This loop runs once per event (~40 per user), so it is written for speed:
    dispatch on the exact event type, one shared object per repeated scalar.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.errors: list[ManifestError] = []
        self.anchors: dict[str, tuple[Any, int, str | None]] = {}  # value, size, scalar text
        self.alias_nodes = 0
        # Names and levels repeat thousands of times; keep one object of each.
        self.plain: dict[str, Any] = {}
        self.quoted: dict[str, str] = {}

    def _error(self, event: Event, message: str, hint: str = "") -> None:
        mark = event.start_mark
        self.errors.append(ManifestError(self.path, mark.line + 1, mark.column + 1, message, hint))

    def build(self, parser: Any) -> Any:
        """The document's value, from a parser's `get_event`."""
        get_event = parser.get_event
        plain, quoted = self.plain, self.quoted
        stack: list[_Frame] = []
        frame: _Frame | None = None
        root: Any = None
        built = 0  # values built so far, aliases counted expanded
        documents = 0
        while True:
            event = get_event()
            kind = type(event)
            text: str | None
            if kind is ScalarEvent:
                text = event.value
                if event.tag is None and len(text) <= MAX_SHARED_CHARS:
                    # implicit[0] is the plain style, typed by the core schema.
                    cache = plain if event.implicit[0] else quoted
                    value = cache.get(text, _NO_KEY)
                    if value is _NO_KEY:
                        value = cache[text] = _resolve_plain(text) if cache is plain else text
                else:
                    value = self._scalar(event)
                size = 1
                if event.anchor is not None:
                    self.anchors[event.anchor] = (value, 1, text)
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                if len(stack) >= MAX_DEPTH:
                    raise _Stop(
                        event,
                        f"YAML is nested more than {MAX_DEPTH} levels deep",
                        "manifests need about six levels; flatten this value",
                    )
                is_list = kind is SequenceStartEvent
                self._check_tag(event)
                frame = _Frame(event, is_list, built)
                stack.append(frame)
                continue
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                done = stack.pop()
                value, text, event = done.value, None, done.start
                size = built - done.built_before + 1
                if event.anchor is not None:
                    self.anchors[event.anchor] = (value, size, None)
                frame = stack[-1] if stack else None
            elif kind is AliasEvent:
                value, size, text = self._alias(event)
            elif kind is DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise _Stop(
                        event,
                        "a manifest file holds one YAML document, found a second",
                        "remove the `---` line, or move the document to its own file",
                    )
                continue
            elif kind is StreamEndEvent:
                return root
            else:  # stream start, document end
                continue
            built += size
            if frame is None:
                root = value
            elif frame.is_list:
                frame.value.append(value)  # type: ignore[union-attr]  # is_list: a list
            elif frame.key is _NO_KEY:
                self._key(frame, event, text)
            else:
                if frame.key is not _SKIP:
                    frame.value[frame.key] = value
                frame.key = _NO_KEY

    def _alias(self, event: AliasEvent) -> tuple[Any, int, str | None]:
        if event.anchor not in self.anchors:
            raise _Stop(
                event,
                f"alias *{excerpt(event.anchor)} names no anchor defined before it",
                "define `&name` on a value above this line",
            )
        value, size, text = self.anchors[event.anchor]
        self.alias_nodes += size
        if self.alias_nodes > MAX_ALIAS_NODES:
            raise _Stop(
                event,
                f"aliases expand to more than {MAX_ALIAS_NODES} values",
                "this looks like an alias bomb; write the values out or use proficiency_sets",
            )
        return value, size, text

    def _key(self, frame: _Frame, event: Event, text: str | None) -> None:
        if text is None:
            self._error(event, "a mapping key must be a plain name, not a list or mapping")
            frame.key = _SKIP
            return
        # Keys are names (an attribute value may be written `1: 4`), so their
        # text is the key whatever type YAML would give it.
        key = self.quoted.setdefault(text, text) if len(text) <= MAX_SHARED_CHARS else text
        line = frame.key_lines.get(key)
        if line is not None:
            self._error(
                event,
                f"duplicate key {excerpt(key)} (first defined on line {line})",
                "YAML keeps only one of them; remove or merge the duplicate",
            )
            frame.key = _SKIP
            return
        frame.key_lines[key] = event.start_mark.line + 1
        frame.key = key

    def _check_tag(self, event: CollectionStartEvent | ScalarEvent) -> None:
        # Any tag, even one that only restates the type (`!!int 3`): what a
        # value is comes from how it is written, in every file alike.
        if event.tag is not None:
            tag = excerpt(_short(str(event.tag)))
            self._error(event, f"YAML tag {tag} is not allowed", _TAG_HINT)

    def _scalar(self, event: ScalarEvent) -> Any:
        """A tagged or long scalar (the loop handles the common ones)."""
        if event.tag is not None:
            self._check_tag(event)
            return None
        return _resolve_plain(event.value) if event.implicit[0] else event.value


_TAG_HINT = "manifests use plain YAML: remove the tag"


def _short(tag: str) -> str:
    return "!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag


def _line(text: str, index: int) -> str:
    lines = text.splitlines()
    return lines[index] if index < len(lines) else ""


def _where(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


# Flow brackets outside comments and quoted scalars. An apostrophe inside a
# plain scalar can hide brackets from this scan; the exact depth bound on the
# events still holds, this one only keeps libyaml's quadratic flow handling
# from seeing absurd depths.
_FLOW_MARKS = re.compile(r"""[\[\]{}"'#]""")
_QUOTED_REST = {'"': re.compile(r'(?:[^"\\]|\\.)*"', re.S), "'": re.compile(r"(?:[^']|'')*'")}
_TOKEN_START = " \t\r\n[{,:?-"


def _flow_too_deep(text: str) -> int | None:
    """Offset where flow collections nest deeper than MAX_DEPTH, if they do."""
    depth = 0
    position = 0
    search = _FLOW_MARKS.search
    while (mark := search(text, position)) is not None:
        at = mark.start()
        char = text[at]
        position = at + 1
        if char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return at
        elif char in "]}":
            depth = max(depth - 1, 0)
        elif at == 0 or text[at - 1] in _TOKEN_START:
            if char == "#":
                newline = text.find("\n", position)
                position = len(text) if newline < 0 else newline
            else:
                rest = _QUOTED_REST[char].match(text, position)
                if rest is not None:
                    position = rest.end()
    return None


def read_bounded(path: Path, display: str) -> bytes:
    """The bytes of one manifest file (files.read_input); ManifestInvalid
    naming the path if it cannot be read so."""
    try:
        return read_input(path)
    except OSError as exc:
        message = f"cannot read the file: {exc.strerror or exc}"
        hint = "check its permissions and that it is a regular file"
        raise ManifestInvalid([ManifestError(display, 1, 1, message, hint)]) from None
    except InputFileError as exc:
        hint = (
            "split the manifests into several files"
            if isinstance(exc, InputTooLarge)
            else "check its permissions and that it is a regular file"
        )
        raise ManifestInvalid([ManifestError(display, 1, 1, str(exc), hint)]) from None


def decode_text(raw: bytes, display: str) -> str:
    """A manifest file's text: UTF-8 with or without a BOM and no NUL byte,
    else ManifestInvalid at the first offending position."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ManifestInvalid(
            [
                ManifestError(
                    display, line, column, "file is not valid UTF-8 text", "save it as UTF-8"
                )
            ]
        ) from None
    if "\x00" in text:
        line, column = _where(text, text.index("\x00"))
        raise ManifestInvalid(
            [ManifestError(display, line, column, "file contains a NUL byte: not a text file")]
        )
    return text


def parse_source(raw: bytes, display: str) -> SourceFile:
    """Parse one manifest file's bytes; raise ManifestInvalid with positioned errors."""
    text = decode_text(raw, display)
    del raw
    deep = _flow_too_deep(text)
    if deep is not None:
        line, column = _where(text, deep)
        raise ManifestInvalid(
            [
                ManifestError(
                    display,
                    line,
                    column,
                    f"YAML is nested more than {MAX_DEPTH} levels deep",
                    "manifests need about six levels; flatten this value",
                )
            ]
        )
    builder = _Builder(display)
    try:
        parser = CParser(text)
        try:
            data = builder.build(parser)
        finally:
            parser.dispose()
    except _Stop as stop:
        mark = stop.event.start_mark
        raise ManifestInvalid(
            [ManifestError(display, mark.line + 1, mark.column + 1, stop.message, stop.hint)]
        ) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = f"invalid YAML: {exc.problem or exc.context}"
        if exc.problem and exc.context:
            message += f" ({exc.context})"
        hint = "check the indentation and quoting around this position"
        if mark and "\t" in _line(text, mark.line)[: mark.column + 1]:
            hint = "YAML is indented with spaces; this line has a tab"
        raise ManifestInvalid([ManifestError(display, line, column, message, hint)]) from None
    except YAMLError as exc:
        raise ManifestInvalid(
            [ManifestError(display, 1, 1, f"invalid YAML: {excerpt(str(exc))}")]
        ) from None
    if builder.errors:
        raise ManifestInvalid(builder.errors)
    if data is None:
        raise ManifestInvalid(
            [ManifestError(display, 1, 1, "file has no YAML document", "add content or delete it")]
        )
    if not isinstance(data, dict):
        source = SourceFile(display, data, text)
        raise ManifestInvalid(
            [
                source.error(
                    (),
                    "the top level must be a mapping of sections (instance, users, ...)",
                    "start the file with a section name such as `users:`",
                )
            ]
        )
    return SourceFile(display, data, text)


def read_source(path: Path, display: str) -> SourceFile:
    """Read and parse one manifest file; raise ManifestInvalid naming the problem."""
    return parse_source(read_bounded(path, display), display)
