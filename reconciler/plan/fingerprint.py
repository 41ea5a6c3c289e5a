"""Fingerprints of live objects, so a saved plan can tell if they changed."""

from __future__ import annotations

import hashlib
import json

from reconciler.plan.changes import AttributeChange, Change, UserProficiencyChange
from reconciler.state import Attribute, Proficiencies, RoutingState


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def attribute_fingerprint(attribute: Attribute | None) -> str | None:
    """None for an attribute that does not exist."""
    if attribute is None:
        return None
    return _digest(
        [
            sorted(attribute.values),
            sorted(attribute.purposes),
            attribute.enable_value_validation_on_association,
        ]
    )


def proficiencies_fingerprint(proficiencies: Proficiencies | None) -> str | None:
    """None for a user that does not exist."""
    if proficiencies is None:
        return None
    return _digest(sorted([a, v, float(level)] for (a, v), level in proficiencies.items()))


def touched_objects(changes: list[Change]) -> tuple[set[str], set[str]]:
    """(attribute names, usernames) a plan's changes write or rely on."""
    attributes: set[str] = set()
    users: set[str] = set()
    for change in changes:
        if isinstance(change, AttributeChange):
            attributes.add(change.name)
        elif isinstance(change, UserProficiencyChange):
            users.add(change.username)
            attributes.update(e.attribute for e in (*change.associate, *change.update))
    return attributes, users


def fingerprints(
    changes: list[Change], live: RoutingState, tagged: set[str] | None = None
) -> dict[str, dict[str, str | None]]:
    """Fingerprints of every live object the changes touch, and of the users
    the plan tags with its owner."""
    attributes, users = touched_objects(changes)
    users |= tagged or set()
    by_folded = {name.casefold(): attribute for name, attribute in live.attributes.items()}
    return {
        "attributes": {
            name: attribute_fingerprint(by_folded.get(name.casefold()))
            for name in sorted(attributes)
        },
        "users": {
            name: proficiencies_fingerprint(
                live.users[name].proficiencies if name in live.users else None
            )
            for name in sorted(users)
        },
    }
