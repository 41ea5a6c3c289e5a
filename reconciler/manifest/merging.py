"""Merging manifest files into one document that remembers where each part
came from: the files of one directory (a key defined twice is an error), or
an environment's layers (a later layer overrides an earlier one)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.manifest.errors import ManifestError
from reconciler.manifest.source import DocPath, SourceFile
from reconciler.quoting import clip, excerpt

# Sections whose keys merge across files, and sections whose items concatenate.
MAPPING_SECTIONS = ("instance", "settings", "predefined_attributes", "proficiency_sets", "users")
LIST_SECTIONS = ("groups", "routing_requirements")


@dataclass
class _Origin:
    source: SourceFile
    path: DocPath


# In an environment's later layers a key replaces the earlier one whole and
# `null` removes it; routing requirements are keyed by `name`, and one with
# `expression: null` is removed. `instance` is one identity: replaced whole.
_BY_NAME = "routing_requirements"


class MergedDocument:
    """All files merged into one mapping that remembers where each part came from.

    `layers` are merged in order. Inside a layer a key defined twice is an
    error; with `overrides` (an environment's layers) a later layer replaces
    an earlier one's key and `null` removes it, and errors in a replaced key
    name the place it overrides too.
    """

    def __init__(self, layers: list[list[SourceFile]], overrides: bool = False) -> None:
        self.sources = [source for layer in layers for source in layer]
        self.data: dict[str, Any] = {}
        self.origins: dict[DocPath, _Origin] = {}
        self.overridden: dict[DocPath, _Origin] = {}  # (section, key) -> the place replaced
        self.removed: dict[DocPath, _Origin] = {}  # (section, key) -> the null that removed it
        self.errors: list[ManifestError] = []
        if not overrides:
            for source in self.sources:
                self._merge(source)
            return
        for layer in layers:
            merged = MergedDocument([layer])
            self.errors.extend(merged.errors)
            self._override(merged)

    def _merge(self, source: SourceFile) -> None:
        for section, value in source.data.items():
            if section in LIST_SECTIONS and isinstance(value, list):
                merged = self.data.setdefault(section, [])
                if isinstance(merged, list):
                    for index, item in enumerate(value):
                        self.origins[(section, len(merged))] = _Origin(source, (section, index))
                        merged.append(item)
                    self.origins.setdefault((section,), _Origin(source, (section,)))
                    continue
            if section in MAPPING_SECTIONS and isinstance(value, dict):
                merged = self.data.setdefault(section, {})
                if isinstance(merged, dict):
                    self.origins.setdefault((section,), _Origin(source, (section,)))
                    for key, item in value.items():
                        if key in merged:
                            self._duplicate(source, (section, key))
                            continue
                        self.origins[(section, key)] = _Origin(source, (section, key))
                        merged[key] = item
                    continue
            if section in self.data:
                self._duplicate(source, (section,))
                continue
            self.origins[(section,)] = _Origin(source, (section,))
            self.data[section] = value

    def _override(self, layer: MergedDocument) -> None:
        """Lay one layer (merged on its own) over what the earlier ones gave."""
        for section, value in layer.data.items():
            if value is None:  # an empty section (`users:`) says nothing
                continue
            keyed = section in MAPPING_SECTIONS and section != "instance"
            if keyed and isinstance(value, dict) and isinstance(self.data.get(section, {}), dict):
                merged = self.data.setdefault(section, {})
                self.origins.setdefault((section,), layer.origins[(section,)])
                for key, item in value.items():
                    self._replace(layer, merged, (section, key), item)
            elif (
                section == _BY_NAME
                and isinstance(value, list)
                and isinstance(self.data.get(section, []), list)
            ):
                self._override_requirements(layer, value)
            elif section == "groups" and isinstance(value, list):
                merged = self.data.setdefault(section, [])
                for index, item in enumerate(value):
                    self.origins[(section, len(merged))] = layer.origins[(section, index)]
                    merged.append(item)
                self.origins.setdefault((section,), layer.origins[(section,)])
            else:
                if section in self.data:
                    self.overridden[(section,)] = self.origins[(section,)]
                self.origins[(section,)] = layer.origins[(section,)]
                self.data[section] = value

    def _override_requirements(self, layer: MergedDocument, items: list[Any]) -> None:
        # [requirement, where it is written, the place it replaced, from an earlier layer]:
        # only an earlier layer's is overridden; a name twice in this layer stays
        # twice, for the duplicate check to name both places
        entries = [
            [item, self.origins[(_BY_NAME, i)], self.overridden.get((_BY_NAME, i)), True]
            for i, item in enumerate(self.data.get(_BY_NAME, []))
        ]
        for index, item in enumerate(items):
            origin = layer.origins[(_BY_NAME, index)]
            name = item.get("name") if isinstance(item, dict) else None
            at = next(
                (i for i, (e, _, _, earlier) in enumerate(entries)
                 if earlier and isinstance(name, str) and isinstance(e, dict)
                 and e.get("name") == name),
                None,
            )  # fmt: skip
            if isinstance(name, str) and "expression" in item and item["expression"] is None:
                if at is None:
                    self._nothing_to_remove(origin, f"routing requirement {excerpt(name)}")
                else:
                    del entries[at]
            elif at is not None:
                entries[at] = [item, origin, entries[at][1], False]
            else:
                entries.append([item, origin, None, False])
        for i in range(len(self.data.get(_BY_NAME, []))):
            self.origins.pop((_BY_NAME, i), None)
            self.overridden.pop((_BY_NAME, i), None)
        self.data[_BY_NAME] = [item for item, _, _, _ in entries]
        self.origins.setdefault((_BY_NAME,), layer.origins[(_BY_NAME,)])
        for i, (_, origin, replaced, _) in enumerate(entries):
            self.origins[(_BY_NAME, i)] = origin
            if replaced is not None:
                self.overridden[(_BY_NAME, i)] = replaced

    def _replace(
        self, layer: MergedDocument, merged: dict[str, Any], path: DocPath, item: Any
    ) -> None:
        origin, key = layer.origins[path], str(path[1])
        if item is None and key not in merged:
            self._nothing_to_remove(origin, clip(".".join(map(str, path))))
        elif item is None:
            del merged[key]
            del self.origins[path]
            self.overridden.pop(path, None)
            self.removed[path] = origin
        else:
            self.removed.pop(path, None)
            if key in merged:
                self.overridden[path] = self.origins[path]
            self.origins[path] = origin
            merged[key] = item

    def _nothing_to_remove(self, origin: _Origin, what: str) -> None:
        self.errors.append(
            origin.source.error(
                origin.path,
                f"null removes {what}, but no earlier layer declares it",
                "in layers an empty value is null too: write `{}` for an empty entry, "
                "or remove the line",
                at_key=True,
            )
        )

    def _duplicate(self, source: SourceFile, path: DocPath) -> None:
        self.errors.append(
            source.error(
                path,
                f"{clip('.'.join(map(str, path)))} is already defined at "
                f"{_location(self.origins[path], ())}",
                "define each key in one file only",
                at_key=True,
            )
        )

    def _place(self, path: DocPath) -> tuple[_Origin, int] | None:
        """The origin of `path`'s key or section, and how much of `path` it covers."""
        for length in (2, 1):
            origin = self.origins.get(path[:length])
            if origin is not None and len(path) >= length:
                return origin, length
        return None

    def error(
        self, path: DocPath, message: str, hint: str = "", at_key: bool = False
    ) -> ManifestError:
        """An error positioned at `path` of the merged document, in its own
        file; when a later layer's key replaced an earlier one's, the message
        names the place it overrides too."""
        place = self._place(path)
        if place is None:
            return self.sources[0].error((), message, hint)
        origin, length = place
        replaced = self.overridden.get(path[:length])
        if replaced is not None:
            message += f" (overriding {_location(replaced, ())})"
        return origin.source.error(origin.path + path[length:], message, hint, at_key)

    def removal_note(self, path: DocPath) -> str:
        """` (removed at FILE:LINE:COLUMN)` when a later layer's null removed
        the (section, key) at `path`, for an error about what used it."""
        origin = self.removed.get(path)
        return "" if origin is None else f" (removed at {_location(origin, ())})"

    def key_location(self, path: DocPath) -> str:
        """`file:line:column` of the key at `path`, for messages naming two places."""
        place = self._place(path)
        if place is None:
            return f"{self.sources[0].path}:1:1"
        origin, length = place
        return _location(origin, path[length:])


def _location(origin: _Origin, rest: DocPath) -> str:
    line, column = origin.source.position(origin.path + rest, at_key=True)
    return f"{origin.source.path}:{line}:{column}"
