"""Manifests + live state -> Plan.

Reads what the manifests manage, resolves groups against live users into the
desired state, diffs, then asks Connect the one question the diff cannot
answer alone: does an unmanaged user still hold a value we would remove?
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from reconciler import limits
from reconciler.connect.reader import (
    OWNER_TAG,
    LiveState,
    LiveStateReader,
    ReadScope,
    search_criteria,
)
from reconciler.coverage import CoverageRow, Requirement, coverage_rows
from reconciler.manifest import Manifest
from reconciler.plan.changes import REMOVE_PHASE, AttributeChange
from reconciler.plan.diff import DiffPolicy, apply_changes, diff
from reconciler.plan.fingerprint import fingerprints
from reconciler.plan.guards import GuardFinding, change_share_guard, coverage_guard
from reconciler.plan.plan import OwnerTag, Plan
from reconciler.state import Proficiencies, RoutingState, UserState

log = logging.getLogger(__name__)

# How many names an error lists before it says "and N more".
LISTED_NAMES = 10


@dataclass(frozen=True)
class Narrowing:
    """`--user` / `--attribute`: plan (and read) only these."""

    users: frozenset[str] | None = None
    attributes: frozenset[str] | None = None

    def keeps(self, attribute: str) -> bool:
        return self.attributes is None or attribute in self.attributes


def names(items: list[str] | set[str]) -> str:
    """A readable, bounded list of names for an error message."""
    ordered = sorted(items)
    text = ", ".join(ordered[:LISTED_NAMES])
    return text + (
        f" and {len(ordered) - LISTED_NAMES} more" if len(ordered) > LISTED_NAMES else ""
    )


def read_scope(manifest: Manifest, narrowing: Narrowing) -> ReadScope:
    """What the reader must fetch for these manifests."""
    only_attributes = None
    if narrowing.attributes is not None:
        only_attributes = set(narrowing.attributes)
    return ReadScope(
        declared_users=set(manifest.desired.users),
        all_users=manifest.settings.users == "all",
        groups=[group.match for group in manifest.groups],
        only_users=set(narrowing.users) if narrowing.users is not None else None,
        only_attributes=only_attributes,
        owners=manifest.settings.owner is not None,
    )


def desired_state(
    manifest: Manifest, live: LiveState, narrowing: Narrowing
) -> tuple[RoutingState, list[str]]:
    """Declared attributes, and every managed user's proficiencies: groups
    in order, then the user's own sets and entries (later wins)."""
    errors: list[str] = []
    cap = manifest.settings.max_proficiencies_per_user
    users = {}
    for username in sorted(live.managed):
        proficiencies: Proficiencies = {}
        for group, members in zip(manifest.groups, live.group_members, strict=True):
            if username in members:
                proficiencies.update(group.proficiencies)
        declared = manifest.desired.users.get(username)
        if declared is not None:
            proficiencies.update(declared.proficiencies)
        if len(proficiencies) > cap:
            errors.append(
                f"user {username} would hold {len(proficiencies)} proficiencies with groups "
                f"applied; the limit is {cap}"
            )
        kept = {key: level for key, level in proficiencies.items() if narrowing.keeps(key[0])}
        users[username] = UserState(username, kept, user_id=live.state.users[username].user_id)
    attributes = {n: a for n, a in manifest.desired.attributes.items() if narrowing.keeps(n)}
    return RoutingState(attributes, users), errors


def _narrowed_live(live: RoutingState, narrowing: Narrowing) -> RoutingState:
    if narrowing.attributes is None:
        return live
    users = {
        name: UserState(
            name, {k: v for k, v in u.proficiencies.items() if narrowing.keeps(k[0])}, u.user_id
        )
        for name, u in live.users.items()
    }
    return RoutingState({n: a for n, a in live.attributes.items() if narrowing.keeps(n)}, users)


def ownership(
    manifest: Manifest, live: LiveState, take_ownership: bool
) -> tuple[list[OwnerTag], list[str]]:
    """With `settings.owner`: the managed users to tag with it, and an error
    per other owner whose users these manifests would manage (unless
    `take_ownership`): two repositories must not flip one agent back and forth."""
    owner = manifest.settings.owner
    if owner is None:
        return [], []
    tags = []
    others: dict[str, set[str]] = {}
    for username in sorted(live.managed):
        held = live.owners.get(username)
        if held == owner:
            continue
        if held is not None and not take_ownership:
            others.setdefault(held, set()).add(username)
            continue
        user_id = live.state.users[username].user_id or ""
        tags.append(OwnerTag(username, user_id, live.arns.get(username, ""), owner, held))
    errors = [
        f"users owned by {other!r} (tag {OWNER_TAG}), not {owner!r}: {names(users)}; "
        "another configuration manages them: leave them out, or pass --take-ownership"
        for other, users in sorted(others.items())
    ]
    unknown = [t.username for t in tags if not t.arn]
    if unknown:
        errors.append(f"cannot tag users whose ARN Connect did not return: {names(unknown)}")
    return tags, errors


def diff_policy(manifest: Manifest, narrowing: Narrowing) -> DiffPolicy:
    """The manifests' settings as diff policy (no pruning when narrowed to attributes)."""
    settings = manifest.settings
    return DiffPolicy(
        prune_attributes=settings.prune_attributes and narrowing.attributes is None,
        keep_attributes=frozenset(settings.external_attributes),
        max_proficiencies_per_user=settings.max_proficiencies_per_user,
    )


def reference_errors(desired: RoutingState, live: RoutingState) -> list[str]:
    """Problems only live state reveals: spelling of existing attributes,
    and external attributes/values that do not exist."""
    errors = []
    live_by_folded = {name.casefold(): a for name, a in live.attributes.items()}
    for name in desired.attributes:
        existing = live_by_folded.get(name.casefold())
        if existing is not None and existing.name != name:
            errors.append(
                f"attribute {name!r} exists in Connect as {existing.name!r}; names are "
                "case-insensitive "
                "and cannot be renamed: use the existing spelling"
            )
    missing: dict[str, set[str]] = {}
    for user in desired.users.values():
        for attribute, value in user.proficiencies:
            if attribute in desired.attributes:
                continue
            existing = live_by_folded.get(attribute.casefold())
            if existing is None or value not in existing.values:
                missing.setdefault(f"{attribute}/{value}", set()).add(user.username)
    for key, holders in sorted(missing.items()):
        errors.append(f"{key} does not exist in Connect but is given to: {names(holders)}")
    return errors


def make_plan(
    manifest: Manifest,
    reader: LiveStateReader,
    narrowing: Narrowing | None = None,
    extra_requirements: list[Requirement] | None = None,
    take_ownership: bool = False,
) -> Plan:
    """Read live state and plan the changes the manifests ask for; also count
    agents for `extra_requirements` (routing steps seen on contacts). With
    `settings.owner`, users another owner tagged are errors unless
    `take_ownership`."""
    narrowing = narrowing or Narrowing()
    live = reader.read(read_scope(manifest, narrowing))
    errors = list(live.errors)
    if live.missing_users:
        errors.append(
            "users declared in the manifests do not exist in Connect "
            f"(this tool does not create users): "
            f"{names(live.missing_users)}"
        )
    if narrowing.users is not None:
        unmanaged = set(narrowing.users) - live.managed - set(live.missing_users)
        if unmanaged:
            errors.append(f"--user names users these manifests do not manage: {names(unmanaged)}")
    desired, desired_errors = desired_state(manifest, live, narrowing)
    current = _narrowed_live(live.state, narrowing)
    errors += desired_errors + reference_errors(desired, current)
    settings = manifest.settings
    policy = diff_policy(manifest, narrowing)
    changes = diff(desired, current, policy)
    errors += unmanaged_holder_errors(changes, reader, live.managed)
    owner_tags, owner_errors = ownership(manifest, live, take_ownership)
    errors += owner_errors
    existing = len(live.managed) + sum(1 for n in desired.attributes if n in current.attributes)
    if policy.prune_attributes:
        existing += sum(
            1 for c in changes if isinstance(c, AttributeChange) and c.kind == "delete_attribute"
        )
    coverage: list[CoverageRow] = []
    if narrowing == Narrowing():  # counts of a narrowed read would mislead
        requirements = manifest.requirements + (extra_requirements or [])
        after = apply_changes(current, changes)
        coverage = requirement_coverage(manifest, reader, current, after, requirements)
    share = change_share_guard(changes, existing, settings)
    guards: list[GuardFinding] = ([share] if share else []) + coverage_guard(coverage)
    ignored = {*desired.attributes, *settings.external_attributes}
    unmanaged = (
        []
        if policy.prune_attributes
        else sorted(n for n in current.attributes if n not in ignored and not limits.is_reserved(n))
    )
    users_changed = sum(1 for c in changes if not isinstance(c, AttributeChange))
    return Plan(
        instance_id=manifest.instance.instance_id,
        region=manifest.instance.region_name,
        manifest_digest=manifest.digest,
        changes=changes,
        errors=errors,
        guards=guards,
        unchanged_users=len(desired.users) - users_changed,
        unmanaged_attributes=unmanaged,
        fingerprints=fingerprints(changes, live.state, {t.username for t in owner_tags}),
        coverage=coverage,
        owner_tags=owner_tags,
    )


def requirement_coverage(
    manifest: Manifest,
    reader: LiveStateReader,
    before: RoutingState,
    after: RoutingState,
    requirements: list[Requirement],
) -> list[CoverageRow]:
    """Eligible agents per requirement, now and after: managed users from
    state, the others counted by the service with one SearchUsers each."""
    others: dict[str, set[str] | None] = {}
    for requirement in requirements:
        if manifest.settings.users == "all":
            others[requirement.name] = set()  # every user is managed and read
            continue
        criteria = search_criteria(requirement.expression)
        others[requirement.name] = reader.search_users(criteria) if criteria is not None else None
    return coverage_rows(requirements, before, after, others)


def unmanaged_holder_errors(changes: list, reader: LiveStateReader, managed: set[str]) -> list[str]:
    """Removing a value (or attribute) an unmanaged user holds would break
    that user's routing behind the manifests' back: refuse, naming them."""
    errors = []
    for change in changes:
        if not isinstance(change, AttributeChange) or change.phase != REMOVE_PHASE:
            continue
        values = None if change.kind == "delete_attribute" else change.removed_values
        holders = reader.holders(change.name, values) - managed
        if holders:
            what = (
                change.name if values is None else ", ".join(f"{change.name}/{v}" for v in values)
            )
            errors.append(
                f"cannot remove {what}: still held by users these manifests do not manage: "
                f"{names(holders)}"
            )
    return errors
