"""The plan's changes: small typed values, ordered by phase, each with a `.data` dict.

Every change kind is named once (`ChangeKind`) and knows its sign, its verb
and its API operation. Phases follow docs/design.md §3: owner tags claim the
users first, then (1) attributes are created and values added, (2) users'
proficiencies change, (3) values are removed and attributes deleted, so no
user ever references a value that does not exist yet or any more.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any, ClassVar

from reconciler.state import Attribute, Proficiencies


class Phase(IntEnum):
    """When a change runs: every change of a phase before any of the next."""

    CLAIM = 0  # owner tags
    ADD = 1
    USERS = 2
    REMOVE = 3


class ChangeKind(StrEnum):
    """What a change does; the value is its name in plan JSON and journals."""

    CREATE_ATTRIBUTE = "create_attribute"
    UPDATE_ATTRIBUTE = "update_attribute"
    DELETE_ATTRIBUTE = "delete_attribute"
    USER_PROFICIENCIES = "user_proficiencies"
    TAG_OWNER = "tag_owner"

    @property
    def sign(self) -> str:
        """Terraform's sign for it: + creates, ~ changes, - deletes."""
        return {"create_attribute": "+", "delete_attribute": "-", "tag_owner": "+"}.get(self, "~")

    @property
    def verb(self) -> str:
        return self.value.split("_", 1)[0]

    @property
    def operations(self) -> tuple[str, ...]:
        """The API operations that carry it out (a user change makes one
        call per non-empty UserStep)."""
        if self is ChangeKind.USER_PROFICIENCIES:
            return tuple(step.operation for step in UserStep)
        if self is ChangeKind.TAG_OWNER:
            return ("TagResource",)
        return (f"{self.verb.title()}PredefinedAttribute",)

    @property
    def operation(self) -> str:
        """The one operation of an attribute change or an owner tag."""
        (operation,) = self.operations
        return operation


class UserStep(StrEnum):
    """One of a user change's lists: one API call each."""

    ASSOCIATE = "associate"
    UPDATE = "update"
    DISASSOCIATE = "disassociate"

    @property
    def sign(self) -> str:
        return {"associate": "+", "update": "~", "disassociate": "-"}[self]

    @property
    def operation(self) -> str:
        return f"{self.value.title()}UserProficiencies"


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

    kind: ChangeKind
    name: str
    before: Attribute | None
    after: Attribute | None
    phase: Phase

    @property
    def sort_key(self) -> tuple[int, int, str]:
        return (self.phase, list(ChangeKind).index(self.kind), self.name.casefold())

    @property
    def identity(self) -> str:
        """`create_attribute Tier`: names the change in journals and saved-plan checks."""
        return f"{self.kind} {self.name}"

    @property
    def key(self) -> str:
        """Unique within a plan: an attribute that gains and loses values
        changes in phases 1 and 3."""
        return f"{self.identity} (phase {self.phase})"

    @property
    def description(self) -> str:
        """The change in words, e.g. `remove value(s) Gold from Tier`."""
        if self.kind is not ChangeKind.UPDATE_ATTRIBUTE:
            return f"{self.kind.verb} attribute {self.name}"
        if self.phase == Phase.REMOVE:
            return f"remove value(s) {', '.join(self.removed_values)} from {self.name}"
        if self.added_values:
            return f"add value(s) {', '.join(self.added_values)} to {self.name}"
        return f"update settings of attribute {self.name}"

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
            "kind": self.kind.value,
            "attribute": self.name,
            "phase": int(self.phase),
            "before": attribute_data(self.before),
            "after": attribute_data(self.after),
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> AttributeChange:
        name = data["attribute"]
        kind = ChangeKind(data["kind"])
        if kind not in ATTRIBUTE_KINDS:
            raise ValueError(f"{kind} is not an attribute change")
        return cls(
            kind,
            name,
            attribute_from_data(name, data["before"]),
            attribute_from_data(name, data["after"]),
            Phase(data["phase"]),
        )


ATTRIBUTE_KINDS = (
    ChangeKind.CREATE_ATTRIBUTE,
    ChangeKind.UPDATE_ATTRIBUTE,
    ChangeKind.DELETE_ATTRIBUTE,
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
    before: Proficiencies = field(default_factory=dict)
    after: Proficiencies = field(default_factory=dict)

    kind: ClassVar[ChangeKind] = ChangeKind.USER_PROFICIENCIES
    phase: ClassVar[Phase] = Phase.USERS

    @property
    def sort_key(self) -> tuple[int, int, str]:
        return (self.phase, 0, self.username)

    @property
    def identity(self) -> str:
        return f"{self.kind} {self.username}"

    @property
    def description(self) -> str:
        return f"change proficiencies of {self.username}"

    @property
    def key(self) -> str:
        """Unique within a plan (one change per user), in the attribute
        changes' form so the two kinds share one namespace."""
        return f"{self.identity} (phase {self.phase})"

    @property
    def steps(self) -> list[tuple[UserStep, tuple[ProficiencyEntry, ...]]]:
        """The non-empty lists in the order their calls must be made."""
        order = [
            (UserStep.ASSOCIATE, self.associate),
            (UserStep.UPDATE, self.update),
            (UserStep.DISASSOCIATE, self.disassociate),
        ]
        if self.disassociate_first:
            order = [order[2], order[0], order[1]]
        return [(step, entries) for step, entries in order if entries]

    @property
    def data(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "username": self.username,
            "user_id": self.user_id,
            "phase": int(self.phase),
            "order": [step.value for step, _ in self.steps],
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
                ProficiencyEntry(
                    e["attribute"],
                    e["value"],
                    level_from_data(e["level"]),
                    None if e.get("before") is None else level_from_data(e["before"]),
                )
                for e in data[key]
            )

        return cls(
            data["username"],
            data["user_id"],
            entries("associate"),
            entries("update"),
            entries("disassociate"),
            disassociate_first=data["order"][:1] == ["disassociate"] and len(data["order"]) > 1,
            before={
                (p["attribute"], p["value"]): level_from_data(p["level"]) for p in data["before"]
            },
            after={
                (p["attribute"], p["value"]): level_from_data(p["level"]) for p in data["after"]
            },
        )


def level_from_data(value: Any) -> float:
    """A level read from plan JSON: a number, never a boolean (JSON `true`
    is not level 1)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"a level must be a number, not {json.dumps(value)}")
    return float(value)


def _proficiency_list(proficiencies: Proficiencies) -> list[dict[str, Any]]:
    return [
        {"attribute": a, "value": v, "level": level}
        for (a, v), level in sorted(proficiencies.items())
    ]


@dataclass(frozen=True)
class OwnerTag:
    """A managed user apply tags with `settings.owner` (TagResource on its ARN):
    one not tagged yet, or one another owner had (--take-ownership)."""

    username: str
    user_id: str
    arn: str
    owner: str
    previous_owner: str | None = None

    kind: ClassVar[ChangeKind] = ChangeKind.TAG_OWNER
    phase: ClassVar[Phase] = Phase.CLAIM

    @property
    def identity(self) -> str:
        return f"{self.kind} {self.username}"

    @property
    def description(self) -> str:
        return f"tag user {self.username} owner={self.owner}"

    @property
    def data(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "user_id": self.user_id,
            "arn": self.arn,
            "owner": self.owner,
            "previous_owner": self.previous_owner,
        }


Change = AttributeChange | UserProficiencyChange
Step = Change | OwnerTag  # anything apply runs


def change_from_data(data: dict[str, Any]) -> Change:
    """A change read back from plan JSON."""
    if data["kind"] == ChangeKind.USER_PROFICIENCIES:
        return UserProficiencyChange.from_data(data)
    return AttributeChange.from_data(data)
