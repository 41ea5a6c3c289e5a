"""The plan: ordered changes plus everything a reviewer or apply needs."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from reconciler.connect.read_choice import ReadChoice
from reconciler.plan.causes import NoLongerManaged, Why
from reconciler.plan.changes import (
    AttributeChange,
    Change,
    ChangeKind,
    OwnerTag,
    Step,
    UserProficiencyChange,
    change_from_data,
)
from reconciler.plan.guards import GuardFinding
from reconciler.plan.narrowing import Narrowing
from reconciler.routing.coverage import CoverageRow

FORMAT_VERSION = "1"


@dataclass
class Plan:
    """A first-class plan value: render it, save it, apply it."""

    instance_id: str
    region: str | None
    manifest_digest: str
    changes: list[Change]
    errors: list[str] = field(default_factory=list)
    guards: list[GuardFinding] = field(default_factory=list)
    unchanged_users: int = 0
    unmanaged_attributes: list[str] = field(default_factory=list)
    coverage: list[CoverageRow] = field(default_factory=list)
    # live fingerprints of every object the plan touches (saved plans)
    fingerprints: dict[str, dict[str, str | None]] = field(default_factory=dict)
    # how live proficiencies were read (None: a plan saved before this was recorded)
    read: ReadChoice | None = None
    # what a narrowed plan (--user/--attribute/--changed-since) covers, and
    # the attribute changes it leaves for a full plan
    narrowing: Narrowing | None = None
    deferred: list[str] = field(default_factory=list)
    owner_tags: list[OwnerTag] = field(default_factory=list)
    # the digest a saved plan's file declared (plan_digest); None for a fresh plan
    saved_digest: str | None = None
    # why each change is there (by Change.key), against `base` (a git ref) if any
    why: dict[str, Why] = field(default_factory=dict)
    base: str | None = None
    no_longer_managed: NoLongerManaged = field(default_factory=NoLongerManaged)
    environment: str | None = None  # of environments.yaml, when the plan is one's

    def why_of(self, change: Change) -> Why:
        return self.why.get(change.key, Why())

    @property
    def all_changes(self) -> list[Step]:
        """Everything apply does, in order: owner tags first, then the changes."""
        return [*self.owner_tags, *self.changes]

    @property
    def has_changes(self) -> bool:
        return bool(self.all_changes)

    @property
    def user_changes(self) -> list[UserProficiencyChange]:
        return [c for c in self.changes if isinstance(c, UserProficiencyChange)]

    @property
    def attribute_changes(self) -> list[AttributeChange]:
        return [c for c in self.changes if isinstance(c, AttributeChange)]

    @property
    def summary(self) -> dict[str, int]:
        """Counts for the summary line, JSON and Markdown."""
        kinds = [c.kind for c in self.attribute_changes]
        users = self.user_changes
        return {
            "creates": kinds.count(ChangeKind.CREATE_ATTRIBUTE),
            "updates": kinds.count(ChangeKind.UPDATE_ATTRIBUTE),
            "deletes": kinds.count(ChangeKind.DELETE_ATTRIBUTE),
            "users_changed": len(users),
            "associations": sum(len(c.associate) for c in users),
            "level_updates": sum(len(c.update) for c in users),
            "disassociations": sum(len(c.disassociate) for c in users),
            "no_op_users": self.unchanged_users,
            "users_no_longer_managed": len(self.no_longer_managed.users),
        }

    def to_data(self, with_fingerprints: bool = False) -> dict[str, Any]:
        """The JSON document of docs/plan-format.md."""
        data: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "instance": {"id": self.instance_id, "region": self.region},
            "manifest_digest": self.manifest_digest,
            "summary": self.summary,
            "changes": [{**c.data, **self.why_of(c).data} for c in self.changes],
            "base": self.base,
            "no_longer_managed": self.no_longer_managed.data,
            "guards": [g.data for g in self.guards],
            "errors": list(self.errors),
            "unmanaged_attributes": list(self.unmanaged_attributes),
            "coverage": [row.data for row in self.coverage],
            "narrowing": None if self.narrowing is None else self.narrowing.data(self.deferred),
            "owner_tags": [tag.data for tag in self.owner_tags],
        }
        if self.read is not None:
            data["read"] = self.read.data
        if self.environment is not None:
            data["environment"] = self.environment
        if with_fingerprints:
            data["fingerprints"] = self.fingerprints
        return data

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Plan:
        """A plan read back from its JSON document; a document this version
        did not write (unknown format_version or member) raises ValueError."""
        if not isinstance(data, dict):
            raise ValueError("a plan is a JSON object")
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"unsupported plan format_version {data.get('format_version')!r}")
        unknown = set(data) - _known_members()
        if unknown:
            raise ValueError(f"unknown member(s) {', '.join(sorted(unknown))}")
        narrowed = data.get("narrowing")
        changes = [change_from_data(c) for c in data["changes"]]
        left = data.get("no_longer_managed") or {}
        return cls(
            instance_id=data["instance"]["id"],
            region=data["instance"]["region"],
            manifest_digest=data["manifest_digest"],
            changes=changes,
            errors=list(data["errors"]),
            guards=[GuardFinding(g["guard"], g["message"]) for g in data["guards"]],
            unchanged_users=data["summary"]["no_op_users"],
            unmanaged_attributes=list(data["unmanaged_attributes"]),
            coverage=[CoverageRow(**row) for row in data.get("coverage", [])],
            fingerprints=data.get("fingerprints", {}),
            read=ReadChoice.from_data(data["read"]) if data.get("read") else None,
            narrowing=Narrowing.from_data(narrowed) if narrowed else None,
            deferred=list(narrowed["deferred"]) if narrowed else [],
            owner_tags=[OwnerTag(**tag) for tag in data.get("owner_tags", [])],
            saved_digest=data.get("plan_digest"),
            why={
                c.key: why
                for c, d in zip(changes, data["changes"], strict=True)
                if (why := Why.from_data(d)) != Why()
            },
            base=data.get("base"),
            no_longer_managed=NoLongerManaged(left.get("users", []), left.get("attributes", [])),
            environment=data.get("environment"),
        )


def _known_members() -> set[str]:
    """Every top-level member to_data writes (saved plans add `saved_at`)."""
    every = Plan("", None, "", [], read=ReadChoice("list"), environment="")
    return set(every.to_data(with_fingerprints=True)) | {"saved_at", "plan_digest"}


def document_digest(document: dict[str, Any]) -> str:
    """sha256 of a plan document, keys sorted: the same plan, the same digest."""
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
