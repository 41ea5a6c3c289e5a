"""Desired vs live state -> ordered changes. Pure: no API, no I/O.

Attributes are matched case-insensitively, as the service names them; value
lists are compared as sets (their order is not meaningful for routing).
Every user in `desired.users` is managed: the plan makes its proficiencies
exactly the desired ones. Policy is explicit flags, not scattered ifs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from reconciler.plan.changes import (
    AttributeChange,
    Change,
    ChangeKind,
    Phase,
    ProficiencyEntry,
    UserProficiencyChange,
)
from reconciler.service import limits
from reconciler.state import Attribute, Proficiencies, RoutingState, UserState


@dataclass(frozen=True)
class DiffPolicy:
    """How to treat what the manifests do not mention."""

    prune_attributes: bool = False  # delete live attributes nobody declares
    keep_attributes: frozenset[str] = field(default_factory=frozenset)  # never pruned (external)
    max_proficiencies_per_user: int = limits.DEFAULT_MAX_PROFICIENCIES_PER_USER


def diff(desired: RoutingState, live: RoutingState, policy: DiffPolicy) -> list[Change]:
    """The changes that turn `live` into `desired`, in execution order."""
    changes: list[Change] = []
    live_by_name = {name.casefold(): attribute for name, attribute in live.attributes.items()}
    for name, want in desired.attributes.items():
        have = live_by_name.get(name.casefold())
        if limits.is_reserved(name):
            # Never created or deleted; the plan reports one missing live.
            if have is not None:
                changes.extend(custom_value_changes(have, want))
        elif have is None:
            changes.append(
                AttributeChange(ChangeKind.CREATE_ATTRIBUTE, name, None, want, Phase.ADD)
            )
        else:
            changes.extend(attribute_changes(have, want))
    if policy.prune_attributes:
        declared = {name.casefold() for name in desired.attributes}
        kept = {name.casefold() for name in policy.keep_attributes}
        for name, have in live.attributes.items():
            folded = name.casefold()
            if folded not in declared and folded not in kept and not limits.is_reserved(name):
                changes.append(
                    AttributeChange(ChangeKind.DELETE_ATTRIBUTE, name, have, None, Phase.REMOVE)
                )
    for username, wanted in desired.users.items():
        held = live.users[username]
        change = user_change(
            username,
            held.user_id or "",
            held.proficiencies,
            wanted.proficiencies,
            policy.max_proficiencies_per_user,
        )
        if change is not None:
            changes.append(change)
    return sorted(changes, key=lambda c: c.sort_key)


def attribute_changes(have: Attribute, want: Attribute) -> list[AttributeChange]:
    """Values are added before users change and removed after, so an
    attribute that gains and loses values changes in two steps."""
    name = have.name  # the service's spelling is the one its API accepts
    final = Attribute(name, want.values, want.purposes, want.enable_value_validation_on_association)
    held = set(have.values)
    added = [v for v in want.values if v not in held]
    removed = held - set(want.values)
    settings_differ = (set(have.purposes), have.enable_value_validation_on_association) != (
        set(want.purposes),
        want.enable_value_validation_on_association,
    )
    if added:
        widened = Attribute(
            name,
            have.values + tuple(added),
            want.purposes,
            want.enable_value_validation_on_association,
        )
        steps = [AttributeChange(ChangeKind.UPDATE_ATTRIBUTE, name, have, widened, Phase.ADD)]
        if removed:
            steps.append(
                AttributeChange(ChangeKind.UPDATE_ATTRIBUTE, name, widened, final, Phase.REMOVE)
            )
        return steps
    if removed:
        return [AttributeChange(ChangeKind.UPDATE_ATTRIBUTE, name, have, final, Phase.REMOVE)]
    if settings_differ:
        return [AttributeChange(ChangeKind.UPDATE_ATTRIBUTE, name, have, final, Phase.ADD)]
    return []


def custom_value_changes(have: Attribute, want: Attribute) -> list[AttributeChange]:
    """connect:Language's declared custom values added to its live ones. The
    service's values and settings are never touched, so nothing is removed:
    a system value and an undeclared custom one look alike in the API."""
    added = tuple(v for v in want.values if v not in have.values)
    if not added:
        return []
    widened = replace(have, values=have.values + added)
    return [AttributeChange(ChangeKind.UPDATE_ATTRIBUTE, have.name, have, widened, Phase.ADD)]


def user_change(
    username: str, user_id: str, have: Proficiencies, want: Proficiencies, cap: int
) -> UserProficiencyChange | None:
    """One user's associate/update/disassociate lists, or None if in sync."""
    associate = tuple(
        ProficiencyEntry(a, v, float(want[(a, v)])) for a, v in sorted(want.keys() - have.keys())
    )
    update = tuple(
        ProficiencyEntry(a, v, float(want[(a, v)]), have[(a, v)])
        for a, v in sorted(want.keys() & have.keys())
        if float(want[(a, v)]) != have[(a, v)]
    )
    disassociate = tuple(
        ProficiencyEntry(a, v, have[(a, v)]) for a, v in sorted(have.keys() - want.keys())
    )
    if not (associate or update or disassociate):
        return None
    # Associating first keeps the user routable throughout, unless the
    # associations would pass the cap before the disassociations make room.
    disassociate_first = bool(associate and disassociate and len(have) + len(associate) > cap)
    return UserProficiencyChange(
        username,
        user_id,
        associate,
        update,
        disassociate,
        disassociate_first,
        before=dict(have),
        after={key: float(level) for key, level in want.items()},
    )


def apply_changes(live: RoutingState, changes: list[Change]) -> RoutingState:
    """The state `changes` lead to from `live`, computed in memory (what an
    apply would leave behind; used to check plans and evaluate guards)."""
    attributes = dict(live.attributes)
    users = {name: _copy_user(user) for name, user in live.users.items()}
    by_folded = {name.casefold(): name for name in attributes}
    for change in changes:
        if isinstance(change, AttributeChange):
            existing = by_folded.get(change.name.casefold())
            if existing is not None:
                del attributes[existing]
            if change.after is not None:
                attributes[change.after.name] = change.after
                by_folded[change.name.casefold()] = change.after.name
        else:
            held = users[change.username].proficiencies
            for entry in (*change.associate, *change.update):
                held[(entry.attribute, entry.value)] = entry.level
            for entry in change.disassociate:
                del held[(entry.attribute, entry.value)]
    return RoutingState(attributes, users)


def _copy_user(user: UserState) -> UserState:
    return replace(user, proficiencies=dict(user.proficiencies))
