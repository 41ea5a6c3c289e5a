"""Narrowed plans: what `--user`, `--attribute` and `--changed-since GITREF` cover.

`--changed-since` compares the manifests compiled at GITREF with the current ones: attributes
whose declaration changed; users whose proficiencies changed through their
own entries or a set they use; and, when a group's selector or sets changed,
its live members (under either selector), resolved and compared with every
group applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.connect.reader import LiveStateReader, ReadScope
from reconciler.manifest import Manifest
from reconciler.quoting import names
from reconciler.state import Proficiencies


@dataclass(frozen=True)
class Narrowing:
    """`--user` / `--attribute` / `--changed-since`: plan (and read) only these.

    `users` are read and planned in full; `attributes` narrows both the
    attribute changes and the users' proficiencies to those attributes;
    `declarations` are attributes whose declaration changed (`--changed-since`),
    planned without narrowing anyone's proficiencies. `reasons` say why.
    """

    users: frozenset[str] | None = None
    attributes: frozenset[str] | None = None
    declarations: frozenset[str] = frozenset()
    changed_since: str | None = None
    reasons: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return self.users is not None or self.attributes is not None or bool(self.declarations)

    def keeps(self, attribute: str) -> bool:
        return self.attributes is None or attribute.casefold() in _folded(self.attributes)

    def plans_attribute(self, attribute: str) -> bool:
        """Whether changes to this attribute's declaration are in scope."""
        folded = attribute.casefold()
        return folded in _folded(self.declarations) or (
            self.attributes is not None and folded in _folded(self.attributes)
        )

    def data(self, deferred: list[str]) -> dict[str, Any]:
        """The plan's `narrowing` member (docs/plan-format.md)."""
        return {
            "users": None if self.users is None else sorted(self.users),
            "attributes": None if self.attributes is None else sorted(self.attributes),
            "declarations": sorted(self.declarations),
            "changed_since": self.changed_since,
            "reasons": list(self.reasons),
            "deferred": list(deferred),
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Narrowing:
        """The narrowing a saved plan's `narrowing` member records, so apply
        can recompute exactly what the plan covered."""
        return cls(
            users=None if data["users"] is None else frozenset(data["users"]),
            attributes=None if data["attributes"] is None else frozenset(data["attributes"]),
            declarations=frozenset(data["declarations"]),
            changed_since=data["changed_since"],
            reasons=tuple(data["reasons"]),
        )


def _folded(names: frozenset[str]) -> set[str]:
    return {name.casefold() for name in names}


class NotNarrowable(Exception):
    """A change that touches every managed user: plan in full instead."""


def changed_narrowing(
    before: Manifest | None, now: Manifest, ref: str, reader: LiveStateReader
) -> Narrowing:
    """The narrowing for everything that differs between `before` (the
    manifests at `ref`) and `now`. Raises NotNarrowable, with the reason,
    when the change reaches every managed user."""
    environment = now.environment
    if before is None and environment is not None:
        raise NotNarrowable(
            f"environment {environment.name} did not exist or held no manifests at {ref}"
        )
    if before is None:
        raise NotNarrowable(f"the config directory held no manifests at {ref}")
    if before.instance != now.instance:
        raise NotNarrowable(f"the instance block changed since {ref}")
    if before.settings != now.settings:
        raise NotNarrowable(f"settings changed since {ref}")
    reasons: list[str] = []
    declarations = {
        name
        for name in {*before.desired.attributes, *now.desired.attributes}
        if before.desired.attributes.get(name) != now.desired.attributes.get(name)
    }
    if declarations:
        reasons.append(f"attribute declarations changed: {names(declarations)}")
    declared = {
        username
        for username in {*before.desired.users, *now.desired.users}
        if _declared(before, username) != _declared(now, username)
    }
    users = declared
    if before.groups != now.groups:
        selectors = [g.selector for g in before.groups] + [g.selector for g in now.groups]
        _, members = reader.managed_users(ReadScope(declared_users=set(), groups=selectors))
        before_members, now_members = members[: len(before.groups)], members[len(before.groups) :]
        # Everyone in a group either way, compared with every group applied in
        # order (a later group wins, so a reordering changes people too).
        candidates = set().union(*members)
        users = {
            username
            for username in candidates | declared
            if before.proficiencies_of(username, before_members)
            != now.proficiencies_of(username, now_members)
        }
        reasons.append(
            f"groups changed: {len(candidates)} live member(s) resolved and compared, "
            f"{len(users & candidates)} changed"
        )
    if declared & users:
        reasons.append(
            f"declared users whose own entries or sets changed: {names(declared & users)}"
        )
    requirements = {
        r.name
        for mine, theirs in ((before, now), (now, before))
        for r in mine.requirements
        if r not in theirs.requirements
    }
    if requirements:
        reasons.append(f"routing requirements changed: {names(requirements)} (all are evaluated)")
    if not reasons:
        what = f"environment {environment.name}'s layers" if environment else "the manifests"
        reasons.append(f"nothing in {what} changed since {ref}")
    return Narrowing(
        users=frozenset(users),
        declarations=frozenset(declarations),
        changed_since=ref,
        reasons=tuple(reasons),
    )


def _declared(manifest: Manifest, username: str) -> Proficiencies | None:
    user = manifest.desired.users.get(username)
    return None if user is None else user.proficiencies
