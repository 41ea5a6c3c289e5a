"""YAML as this tool writes it: ruamel's round trip (comments and layout
kept), values quoted where YAML would misread them, short maps in flow style."""

from __future__ import annotations

import io
import re
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from ruamel.yaml.tokens import CommentToken

from reconciler.state import Attribute, Proficiencies


def round_trip_yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long value list
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def dump_yaml(data: Any) -> str:
    stream = io.StringIO()
    round_trip_yaml().dump(data, stream)
    return stream.getvalue()


_SPECIAL = re.compile(r"""[:#,\[\]{}&*!|>'"%@`]|^\s|\s$|^$""")


def quoted(value: Any) -> Any:
    # ruamel writes `connect:Chat` bare inside [...] and then cannot read it
    # back: quote anything with a YAML indicator in it.
    return (
        DoubleQuotedScalarString(value)
        if isinstance(value, str) and _SPECIAL.search(value)
        else value
    )


def flow_map(mapping: dict[str, Any]) -> CommentedMap:
    result = CommentedMap({quoted(k): v for k, v in mapping.items()})
    result.fa.set_flow_style()
    return result


def flow_list(items: list[str]) -> CommentedSeq:
    result = CommentedSeq([quoted(item) for item in items])
    result.fa.set_flow_style()
    return result


def yaml_level(level: float) -> int | float:
    return int(level) if float(level).is_integer() else level


def proficiency_map(proficiencies: Proficiencies | dict[tuple[str, str], float]) -> CommentedMap:
    """attribute -> {value: level}, sorted, inner maps in flow style."""
    by_attribute: dict[str, dict[str, int | float]] = {}
    for (attribute, value), level in sorted(proficiencies.items()):
        by_attribute.setdefault(attribute, {})[value] = yaml_level(level)
    return CommentedMap({quoted(a): flow_map(values) for a, values in by_attribute.items()})


def attribute_body(attribute: Attribute) -> CommentedMap:
    body = CommentedMap({"values": flow_list(list(attribute.values))})
    if attribute.purposes:
        body["purposes"] = flow_list(list(attribute.purposes))
    if attribute.enable_value_validation_on_association:
        body["enable_value_validation_on_association"] = True
    return body


def remove_entry(mapping: dict[Any, Any], key: Any) -> None:
    """Delete `key` and the comment lines above it, keeping every other
    comment where it was. ruamel keeps the full-line comments above an
    entry at the end of the entry before it (deep in its value when that is
    a block): a plain `del` would drop the next entry's comment with this
    one and leave this one's behind."""
    if not isinstance(mapping, CommentedMap):
        del mapping[key]
        return
    keys = list(mapping)
    position = keys.index(key)
    entry, index = _tail(mapping, key)
    _, following = _split(entry[index])  # the next entry's (or section's) comment lines
    del mapping[key]
    if position > 0:
        previous, at = _tail(mapping, keys[position - 1])
        own_line, _ = _split(previous[at])  # the removed entry's comment lines go
        text = (own_line or "\n") + following if following else own_line
        column = previous[at].column if previous[at] is not None else 0
        previous[at] = CommentToken(text, CommentMark(column), None) if text else None
    elif following and position < len(keys) - 1:
        ahead = mapping.ca.items.setdefault(keys[position + 1], [None, None, None, None])
        ahead[1] = [CommentToken(following, CommentMark(0), None), *(ahead[1] or [])]


def _tail(mapping: CommentedMap, key: Any) -> tuple[list[Any], int]:
    """(comment slot list, index) of the comment that follows entry `key`."""
    value = mapping[key]
    if isinstance(value, CommentedMap) and len(value) and not value.fa.flow_style():
        return _tail(value, list(value)[-1])
    if isinstance(value, CommentedSeq) and len(value) and not value.fa.flow_style():
        last = value[len(value) - 1]
        if isinstance(last, CommentedMap) and len(last) and not last.fa.flow_style():
            return _tail(last, list(last)[-1])
        return value.ca.items.setdefault(len(value) - 1, [None, None]), 0
    return mapping.ca.items.setdefault(key, [None, None, None, None]), 2


def _split(token: CommentToken | None) -> tuple[str, str]:
    """(the end-of-line comment, the full-line comments after it)."""
    if token is None:
        return "", ""
    first, newline, rest = str(token.value).partition("\n")
    return first + newline, rest
