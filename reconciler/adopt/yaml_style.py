"""YAML as this tool writes it: ruamel's round trip (comments and layout
kept), values quoted where YAML would misread them, short maps in flow style."""

from __future__ import annotations

import io
import re
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

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
