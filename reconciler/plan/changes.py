"""The plan's changes: small values, ordered by phase, each with a `.data` dict.

Phases follow DESIGN §3: (1) create attributes and add values, (2) per-user
proficiency changes, (3) remove values and delete attributes, so no user ever
references a value that does not exist yet or any more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from reconciler.state import Attribute, Proficiencies

ADD_PHASE, USER_PHASE, REMOVE_PHASE = 1, 2, 3


def attribute_data(attribute: Attribute | None) -> dict[str, Any] | None:
    """An attribute as plan JSON."""
    if attribute is None:
        return None
    return {
        "values": list(attribute.values),
        "purposes": list(attribute.purposes),
        "enable_value_validation_on_association": attribute.enable_value_validation_on_association,
    }


def attribute_from_data(name: str, data: dict[str, Any] | None) -> Attribute | None:
    """The inverse of attribute_data."""
    if data is None:
        return None
    return Attribute(
        name,
        tuple(data["values"]),
        tuple(data["purposes"]),
        data["enable_value_validation_on_association"],
    )


@dataclass(frozen=True)
class AttributeChange:
    """Create, update (the full value list: the API has no add-one-value
    call) or delete one predefined attribute."""

    kind: str  # create_attribute | update_attribute | delete_attribute
    name: str
    before: Attribute | None
    after: Attribute | None
    phase: int

    KINDS: ClassVar[tuple[str, ...]] = ("create_attribute", "update_attribute", "delete_attribute")

    @property
    def sort_key(self) -> tuple[int, int, str]:
        return (self.phase, self.KINDS.index(self.kind), self.name.casefold())

    @property
    def added_values(self) -> list[str]:
        before = set(self.before.values) if self.before else set()
        return [v for v in (self.after.values if self.after else ()) if v not in before]

    @property
    def removed_values(self) -> list[str]:
        after = set(self.after.values) if self.after else set()
        return [v for v in (self.before.values if self.before else ()) if v not in after]

    @property
    def data(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "attribute": self.name,
            "phase": self.phase,
            "before": attribute_data(self.before),
            "after": attribute_data(self.after),
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> AttributeChange:
        name = data["attribute"]
        return cls(
            data["kind"],
            name,
            attribute_from_data(name, data["before"]),
            attribute_from_data(name, data["after"]),
            data["phase"],
        )


@dataclass(frozen=True)
class ProficiencyEntry:
    """One attribute/value of a user; `level` is the new level (or the held
    one for a disassociation), `before` the held level for an update."""

    attribute: str
    value: str
    level: float
    before: float | None = None

    @property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "attribute": self.attribute,
            "value": self.value,
            "level": self.level,
        }
        if self.before is not None:
            data["before"] = self.before
        return data


@dataclass(frozen=True)
class UserProficiencyChange:
    """Everything that changes for one user: one API call per non-empty list,
    associate -> update -> disassociate, or disassociate first when the user
    would otherwise pass the per-user cap."""

    username: str
    user_id: str
    associate: tuple[ProficiencyEntry, ...] = ()
    update: tuple[ProficiencyEntry, ...] = ()
    disassociate: tuple[ProficiencyEntry, ...] = ()
    disassociate_first: bool = False
    before: Proficiencies = field(default_factory=dict, compare=False)
    after: Proficiencies = field(default_factory=dict, compare=False)

    kind: ClassVar[str] = "user_proficiencies"
    phase: ClassVar[int] = USER_PHASE

    @property
    def sort_key(self) -> tuple[int, int, str]:
        return (self.phase, 0, self.username)

    @property
    def steps(self) -> list[tuple[str, tuple[ProficiencyEntry, ...]]]:
        """The non-empty lists in the order their calls must be made."""
        order = [
            ("associate", self.associate),
            ("update", self.update),
            ("disassociate", self.disassociate),
        ]
        if self.disassociate_first:
            order = [order[2], order[0], order[1]]
        return [(name, entries) for name, entries in order if entries]

    @property
    def data(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "username": self.username,
            "user_id": self.user_id,
            "phase": self.phase,
            "order": [name for name, _ in self.steps],
            "associate": [e.data for e in self.associate],
            "update": [e.data for e in self.update],
            "disassociate": [e.data for e in self.disassociate],
            "before": _proficiency_list(self.before),
            "after": _proficiency_list(self.after),
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> UserProficiencyChange:
        def entries(key: str) -> tuple[ProficiencyEntry, ...]:
            return tuple(
                ProficiencyEntry(e["attribute"], e["value"], e["level"], e.get("before"))
                for e in data[key]
            )

        return cls(
            data["username"],
            data["user_id"],
            entries("associate"),
            entries("update"),
            entries("disassociate"),
            disassociate_first=data["order"][:1] == ["disassociate"] and len(data["order"]) > 1,
            before={(p["attribute"], p["value"]): p["level"] for p in data["before"]},
            after={(p["attribute"], p["value"]): p["level"] for p in data["after"]},
        )


def _proficiency_list(proficiencies: Proficiencies) -> list[dict[str, Any]]:
    return [
        {"attribute": a, "value": v, "level": level}
        for (a, v), level in sorted(proficiencies.items())
    ]


Change = AttributeChange | UserProficiencyChange


def change_from_data(data: dict[str, Any]) -> Change:
    """A change read back from plan JSON."""
    if data["kind"] == UserProficiencyChange.kind:
        return UserProficiencyChange.from_data(data)
    return AttributeChange.from_data(data)
