"""Safe YAML reading that remembers where every value came from.

We compose the YAML into nodes ourselves and build plain Python values from
them instead of using a constructor, so that:
- only the core schema's tags are accepted (no arbitrary objects),
- duplicate keys are errors, not "last one wins",
- alias expansion is bounded (a billion-laughs file fails in milliseconds),
- any path into the document can be turned back into a file position.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.resolver import VersionedResolver

from reconciler.manifest.errors import ManifestError, ManifestInvalid

# Values produced by alias expansion beyond this are refused: real manifests
# reuse a few anchors, an alias bomb asks for billions.
MAX_ALIAS_NODES = 100_000

_TAG = "tag:yaml.org,2002:"
_STR = f"{_TAG}str"
_TIMESTAMP = f"{_TAG}timestamp"
_SCALAR_TAGS = {f"{_TAG}{t}" for t in ("str", "int", "float", "bool", "null")}
_COLLECTION_TAGS = {f"{_TAG}map", f"{_TAG}seq"}

PathPart = str | int
DocPath = tuple[PathPart, ...]


class _Yaml12Resolver(VersionedResolver):
    """YAML 1.2 core schema, with the version fixed and results cached.

    ruamel's resolver re-derives the document's YAML version for every scalar
    through caught AttributeErrors, which is most of the load time of a large
    manifest; manifests are always YAML 1.2.
    """

    processing_version = (1, 2)
    _cache: dict[str, Any] = {}  # noqa: RUF012 - a process-wide cache is the point

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is ScalarNode and implicit[0]:
            tag = self._cache.get(value)
            if tag is None:
                tag = super().resolve(kind, value, implicit)
                if str(tag) == _TIMESTAMP:
                    # Not in the 1.2 core schema; a date-like value is a name.
                    tag = super().resolve(kind, value, (False, False))
                self._cache[value] = tag
            return tag
        return super().resolve(kind, value, implicit)


def _new_yaml() -> YAML:
    yaml = YAML(typ="safe", pure=False)
    yaml.Resolver = _Yaml12Resolver
    return yaml


@dataclass
class SourceFile:
    """One parsed manifest file: its values and the nodes they came from."""

    path: str
    data: Any
    root: Node
    _index: dict[int, dict[str, tuple[Node, Node]]] = field(default_factory=dict, repr=False)

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
        node, key = self.root, None
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


class _Builder:
    """Turns composed nodes into dicts, lists and scalars, collecting errors."""

    def __init__(self, path: str, yaml: YAML) -> None:
        self.path = path
        self.yaml = yaml
        self.errors: list[ManifestError] = []
        self.seen: set[int] = set()
        self.alias_nodes = 0
        self.scalars: dict[tuple[str, str], Any] = {}

    def _error(self, node: Node, message: str, hint: str = "") -> None:
        mark = node.start_mark
        self.errors.append(ManifestError(self.path, mark.line + 1, mark.column + 1, message, hint))

    def build(self, node: Node) -> Any:
        if id(node) in self.seen:
            # Only an alias makes us meet a node twice.
            self.alias_nodes += 1
            if self.alias_nodes > MAX_ALIAS_NODES:
                raise _AliasBomb(node)
        else:
            self.seen.add(id(node))
        tag = str(node.tag)
        if isinstance(node, ScalarNode):
            if tag not in _SCALAR_TAGS:
                self._error(node, f"YAML tag {_short(tag)!r} is not allowed", _TAG_HINT)
                return None
            if tag == _STR:
                return node.value
            # Levels repeat thousands of times; construct each spelling once.
            key = (tag, node.value)
            if key not in self.scalars:
                self.scalars[key] = self.yaml.constructor.construct_object(node)
            return self.scalars[key]
        if tag not in _COLLECTION_TAGS:
            self._error(node, f"YAML tag {_short(tag)!r} is not allowed", _TAG_HINT)
            return None
        if isinstance(node, SequenceNode):
            return [self.build(item) for item in node.value]
        return self._mapping(node)

    def _mapping(self, node: MappingNode) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first: dict[str, Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self._error(key_node, "a mapping key must be a plain name, not a list or mapping")
                continue
            # Keys are names (an attribute value may be written `1: 4`), so
            # their text is the key whatever type YAML would give it.
            key = str(key_node.value)
            if key in first:
                line = first[key].start_mark.line + 1
                self._error(
                    key_node,
                    f"duplicate key {key!r} (first defined on line {line})",
                    "YAML keeps only one of them; remove or merge the duplicate",
                )
                continue
            first[key] = key_node
            result[key] = self.build(value_node)
        return result


_TAG_HINT = "manifests use plain YAML: remove the tag"


def _short(tag: str) -> str:
    return "!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag


class _AliasBomb(Exception):
    def __init__(self, node: Node) -> None:
        self.node = node


def _line(text: str, index: int) -> str:
    lines = text.splitlines()
    return lines[index] if index < len(lines) else ""


def read_source(path: Path, display: str) -> SourceFile:
    """Parse one manifest file; raise ManifestInvalid with positioned errors."""
    return parse_source(path.read_bytes(), display)


def parse_source(raw: bytes, display: str) -> SourceFile:
    """Parse one manifest file's bytes (from disk or from git objects)."""
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
        offset = text.index("\x00")
        line = text.count("\n", 0, offset) + 1
        column = offset - (text.rfind("\n", 0, offset) + 1) + 1
        raise ManifestInvalid(
            [ManifestError(display, line, column, "file contains a NUL byte: not a text file")]
        )
    yaml = _new_yaml()
    try:
        root = yaml.compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = f"invalid YAML: {exc.problem or exc.context}"
        if exc.problem and exc.context:
            message += f" ({exc.context})"
        hint = ""
        if mark and "\t" in _line(text, mark.line)[: mark.column + 1]:
            hint = "YAML is indented with spaces; this line has a tab"
        raise ManifestInvalid([ManifestError(display, line, column, message, hint)]) from None
    except (YAMLError, RecursionError) as exc:
        raise ManifestInvalid([ManifestError(display, 1, 1, f"invalid YAML: {exc}")]) from None
    if root is None:
        raise ManifestInvalid(
            [ManifestError(display, 1, 1, "file has no YAML document", "add content or delete it")]
        )
    builder = _Builder(display, yaml)
    try:
        data = builder.build(root)
    except _AliasBomb as bomb:
        mark = bomb.node.start_mark
        raise ManifestInvalid(
            [
                ManifestError(
                    display,
                    mark.line + 1,
                    mark.column + 1,
                    f"aliases expand to more than {MAX_ALIAS_NODES} values",
                    "this looks like an alias bomb; write the values out or use proficiency_sets",
                )
            ]
        ) from None
    except RecursionError:
        raise ManifestInvalid([ManifestError(display, 1, 1, "YAML is nested too deeply")]) from None
    if builder.errors:
        raise ManifestInvalid(builder.errors)
    if not isinstance(data, dict):
        raise ManifestInvalid(
            [
                ManifestError(
                    display,
                    root.start_mark.line + 1,
                    root.start_mark.column + 1,
                    "the top level must be a mapping of sections (instance, users, ...)",
                )
            ]
        )
    return SourceFile(display, data, root)
