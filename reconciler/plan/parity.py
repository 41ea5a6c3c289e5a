"""Parity: how the live state of two instances differs, by name.

User ids differ per instance, so users are matched by username and
attributes by name; a difference is an attribute or user only one side
has, a value list or an attribute's settings that differ, or a proficiency
held at different levels (or by one side only).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from reconciler.quoting import names
from reconciler.state import Attribute, RoutingState


@dataclass(frozen=True)
class Difference:
    """One way the two instances differ; `data` is its JSON form, whose
    `kind` is attribute, attribute_values, attribute_settings, user or
    proficiency."""

    data: dict[str, Any]
    text: str


def _level(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def parity(a: str, live_a: RoutingState, b: str, live_b: RoutingState) -> list[Difference]:
    """What differs between `a`'s and `b`'s live state, sorted by name."""
    found: list[Difference] = []
    for name in sorted(live_a.attributes.keys() | live_b.attributes.keys()):
        found.extend(_attribute(a, live_a.attributes.get(name), b, live_b.attributes.get(name)))
    for username in sorted(live_a.users.keys() | live_b.users.keys()):
        user_a, user_b = live_a.users.get(username), live_b.users.get(username)
        if user_a is None or user_b is None:
            side = a if user_b is None else b
            found.append(
                Difference(
                    {"kind": "user", "username": username, "only_in": side},
                    f"user {username}: only in {side}",
                )
            )
            continue
        held_a, held_b = user_a.proficiencies, user_b.proficiencies
        for key in sorted(held_a.keys() | held_b.keys()):
            if held_a.get(key) == held_b.get(key):
                continue
            attribute, value = key
            levels = {a: held_a.get(key), b: held_b.get(key)}
            found.append(
                Difference(
                    {
                        "kind": "proficiency",
                        "username": username,
                        "attribute": attribute,
                        "value": value,
                        "levels": levels,
                    },
                    f"user {username} {attribute}/{value}: {a} {_level(levels[a])}, "
                    f"{b} {_level(levels[b])}",
                )
            )
    return found


def _attribute(
    a: str, attribute_a: Attribute | None, b: str, attribute_b: Attribute | None
) -> list[Difference]:
    if attribute_a is None or attribute_b is None:
        name = (attribute_a or attribute_b).name  # type: ignore[union-attr]  # one is set
        side = a if attribute_b is None else b
        return [
            Difference(
                {"kind": "attribute", "attribute": name, "only_in": side},
                f"attribute {name}: only in {side}",
            )
        ]
    found = []
    name = attribute_a.name
    only_a = [v for v in attribute_a.values if v not in attribute_b.values]
    only_b = [v for v in attribute_b.values if v not in attribute_a.values]
    if only_a or only_b:
        found.append(
            Difference(
                {"kind": "attribute_values", "attribute": name, "only_in": {a: only_a, b: only_b}},
                f"attribute {name} values: only in {a}: {names(only_a) or '-'}; "
                f"only in {b}: {names(only_b) or '-'}",
            )
        )
    # purposes are a set to the service (and to the plan's diff): order is no difference
    settings_a = (sorted(attribute_a.purposes), attribute_a.enable_value_validation_on_association)
    settings_b = (sorted(attribute_b.purposes), attribute_b.enable_value_validation_on_association)
    if settings_a != settings_b:
        found.append(
            Difference(
                {
                    "kind": "attribute_settings",
                    "attribute": name,
                    "purposes": {a: list(settings_a[0]), b: list(settings_b[0])},
                    "enable_value_validation_on_association": {a: settings_a[1], b: settings_b[1]},
                },
                f"attribute {name} settings: {a} purposes {list(settings_a[0])} validation "
                f"{settings_a[1]}, {b} purposes {list(settings_b[0])} validation {settings_b[1]}",
            )
        )
    return found


def parity_text(a: str, b: str, differences: list[Difference]) -> str:
    """The comparison for a terminal or a job's log."""
    if not differences:
        return f"{a} and {b} are the same: attributes, values and every user's proficiencies"
    lines = [f"{a} and {b} differ in {len(differences)} place(s):"]
    lines += [f"  {d.text}" for d in differences]
    return "\n".join(lines)


def parity_json(instances: dict[str, dict[str, str | None]], differences: list[Difference]) -> str:
    """`{"format_version": "1", "instances", "same", "differences"}`."""
    return json.dumps(
        {
            "format_version": "1",
            "instances": instances,
            "same": not differences,
            "differences": [d.data for d in differences],
        },
        indent=2,
    )
