"""Why each change is in a plan: the manifests changed it, or Connect drifted.

Against a base (the manifests at a git ref, `--changed-since` or `--base`)
every changed key has three values: what the base wanted, what the
manifests want now, what Connect holds. Base and now agree: Connect moved
(`drift`). Base and Connect agree: the manifests moved (`manifest`).
Neither: both moved. Something the base did not manage is new (`manifest`).
Without a base the cause is `unknown`, never a guess.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from reconciler.connect.reader import LiveStateReader, ReadScope
from reconciler.manifest import Manifest
from reconciler.plan.changes import AttributeChange, Change, UserProficiencyChange
from reconciler.service import limits
from reconciler.state import Attribute, Proficiencies, RoutingState


class Cause(StrEnum):
    MANIFEST = "manifest"
    DRIFT = "drift"
    BOTH = "both"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Base:
    """The manifests at `ref`, their groups resolved against live users."""

    ref: str
    manifest: Manifest
    managed: set[str]
    group_members: list[set[str]]

    @classmethod
    def read(cls, ref: str, manifest: Manifest, reader: LiveStateReader) -> Base:
        """Who the base manages now: the user listing and its groups' members
        (no proficiencies are read)."""
        scope = ReadScope(
            declared_users=set(manifest.desired.users),
            all_users=manifest.settings.users == "all",
            groups=[group.selector for group in manifest.groups],
        )
        managed, members = reader.managed_users(scope)
        return cls(ref, manifest, managed, members)

    def wanted_attribute(self, name: str) -> Attribute | _Unmanaged | None:
        """The attribute as the base declared it; None when it wanted it gone
        (pruned); UNMANAGED when the base left it alone."""
        by_folded = {n.casefold(): a for n, a in self.manifest.desired.attributes.items()}
        if name.casefold() in by_folded:
            return by_folded[name.casefold()]
        settings = self.manifest.settings
        kept = {n.casefold() for n in settings.external_attributes}
        if settings.prune_attributes and name.casefold() not in kept:
            return None
        return UNMANAGED

    def wanted_proficiencies(self, username: str) -> Proficiencies | _Unmanaged:
        if username not in self.managed:
            return UNMANAGED
        return self.manifest.proficiencies_of(username, self.group_members)


class _Unmanaged:
    """What the base wants of something it did not manage."""


UNMANAGED = _Unmanaged()


@dataclass(frozen=True)
class Why:
    """A change's cause and, for a user, what gives each proficiency it sets."""

    cause: Cause = Cause.UNKNOWN
    sources: dict[str, str] = field(default_factory=dict)  # "Attribute/Value" -> "set S"

    @property
    def data(self) -> dict[str, Any]:
        return {"cause": self.cause.value, "sources": dict(sorted(self.sources.items()))}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Why:
        return cls(Cause(data.get("cause", Cause.UNKNOWN)), dict(data.get("sources", {})))


@dataclass(frozen=True)
class NoLongerManaged:
    """What the base managed and the manifests no longer mention: left as is."""

    users: list[str] = field(default_factory=list)
    attributes: list[str] = field(default_factory=list)

    @property
    def data(self) -> dict[str, list[str]]:
        return {"users": list(self.users), "attributes": list(self.attributes)}

    def __bool__(self) -> bool:
        return bool(self.users or self.attributes)


def cause_of(base: object, now: object, live: object) -> Cause:
    if base is UNMANAGED:
        return Cause.MANIFEST
    if base == now:
        return Cause.DRIFT
    return Cause.MANIFEST if base == live else Cause.BOTH


def combined(causes: Iterable[Cause]) -> Cause:
    """One cause for several keys: all the same, that one; else both."""
    distinct = set(causes)
    return distinct.pop() if len(distinct) == 1 else Cause.BOTH


def _comparable(attribute: Attribute | _Unmanaged | None) -> object:
    """An attribute as the diff compares it (value order does not matter)."""
    if not isinstance(attribute, Attribute):
        return attribute
    return (
        frozenset(attribute.values),
        frozenset(attribute.purposes),
        attribute.enable_value_validation_on_association,
    )


def _named(state: RoutingState, name: str) -> Attribute | None:
    """An attribute by name, matched as the service matches (case-insensitively)."""
    folded = name.casefold()
    return next((a for n, a in state.attributes.items() if n.casefold() == folded), None)


def reasons(
    changes: list[Change],
    manifest: Manifest,
    base: Base | None,
    desired: RoutingState,
    current: RoutingState,
    group_members: list[set[str]],
) -> dict[str, Why]:
    """Why each change is there, by Change.key: its cause against `base`
    (from the whole desired and current state, not a phase's part of it),
    and what gives each proficiency a user change sets. Changes with
    nothing to say (no base, no sources) have no entry."""
    why: dict[str, Why] = {}
    for change in changes:
        if isinstance(change, AttributeChange):
            cause = Cause.UNKNOWN
            if base is not None:
                cause = cause_of(
                    _comparable(base.wanted_attribute(change.name)),
                    _comparable(_named(desired, change.name)),
                    _comparable(_named(current, change.name)),
                )
            said = Why(cause)
        else:
            said = Why(_user_cause(change, base), _user_sources(change, manifest, group_members))
        if said != Why():
            why[change.key] = said
    return why


def _user_cause(change: UserProficiencyChange, base: Base | None) -> Cause:
    if base is None:
        return Cause.UNKNOWN
    wanted = base.wanted_proficiencies(change.username)
    if isinstance(wanted, _Unmanaged):
        return Cause.MANIFEST
    before, after = change.before, change.after
    changed = {key for key in {*before, *after} if before.get(key) != after.get(key)}
    return combined(cause_of(wanted.get(key), after.get(key), before.get(key)) for key in changed)


def _user_sources(
    change: UserProficiencyChange, manifest: Manifest, group_members: list[set[str]]
) -> dict[str, str]:
    given = manifest.provenance_of(change.username, group_members)
    return {
        f"{e.attribute}/{e.value}": given[(e.attribute, e.value)][1]
        for e in (*change.associate, *change.update)
        if (e.attribute, e.value) in given
    }


def no_longer_managed(
    base: Base | None, manifest: Manifest, managed: set[str], live: RoutingState
) -> NoLongerManaged:
    """Users and attributes the base managed that these manifests leave alone
    (an attribute they delete is a change, not left)."""
    if base is None:
        return NoLongerManaged()
    declared = {name.casefold() for name in manifest.desired.attributes}
    deleted = manifest.settings.prune_attributes
    kept = {name.casefold() for name in manifest.settings.external_attributes}
    live_names = {name.casefold(): name for name in live.attributes}
    attributes = sorted(
        live_names[name.casefold()]
        for name in base.manifest.desired.attributes
        if name.casefold() in live_names
        and name.casefold() not in declared
        and (not deleted or name.casefold() in kept or limits.is_reserved(name))
    )
    return NoLongerManaged(sorted(base.managed - managed), attributes)
