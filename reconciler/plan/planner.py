"""Manifests + live state -> Plan: the one planning pipeline.

`make_plan` reads what the manifests manage and plans it. `plan_read` plans
from what was read; a saved plan's check calls it too, on the objects it
re-read (plan.verify), so a plan and its recompute can never disagree on
how changes, deferrals, errors and guards are made.

Planning resolves groups against live users into the desired state, diffs,
then asks Connect what the diff cannot answer alone: does an unmanaged user
still hold a value we would remove, how many agents of the whole instance
meet each routing requirement, and who owns each user (`settings.owner`).
Narrowing (--user/--attribute/--changed-since) reads and plans a subset but
keeps every guard on the whole instance.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from reconciler.connect.eligibility import InstanceEligibility, count_check
from reconciler.connect.read_choice import Verification
from reconciler.connect.reader import OWNER_TAG, LiveState, LiveStateReader, ReadScope
from reconciler.manifest import Manifest
from reconciler.plan.causes import Base, no_longer_managed, reasons
from reconciler.plan.changes import AttributeChange, Change, ChangeKind, OwnerTag, Phase
from reconciler.plan.diff import DiffPolicy, apply_changes, diff
from reconciler.plan.fingerprint import fingerprints
from reconciler.plan.guards import distrusted_count_guards, plan_guards
from reconciler.plan.narrowing import Narrowing
from reconciler.plan.plan import Plan
from reconciler.quoting import LISTED_NAMES, names
from reconciler.routing.coverage import Requirement, coverage_rows
from reconciler.routing.expression import references
from reconciler.service import limits
from reconciler.service.limits import MIN_SEARCHABLE_LENGTH, searchable
from reconciler.state import RoutingState, UserState

log = logging.getLogger(__name__)

# requirement name -> users of the whole instance the service finds eligible (None: uncountable)
Eligible = dict[str, set[str] | None]


@dataclass(frozen=True)
class Attributes:
    """A set of attribute names, matched as the service matches them (case-insensitively)."""

    folded: frozenset[str]

    @classmethod
    def named(cls, names: Iterable[str]) -> Attributes:
        return cls(frozenset(name.casefold() for name in names))

    def holds(self, name: str) -> bool:
        return name.casefold() in self.folded

    def of(self, state: RoutingState) -> RoutingState:
        """`state` with only these attributes (its users whole)."""
        kept = {n: a for n, a in state.attributes.items() if self.holds(n)}
        return RoutingState(kept, state.users)


def make_plan(
    manifest: Manifest,
    reader: LiveStateReader,
    narrowing: Narrowing | None = None,
    extra_requirements: list[Requirement] | None = None,
    take_ownership: bool = False,
    base: Base | None = None,
) -> Plan:
    """Read live state and plan the changes the manifests ask for; also count
    agents for `extra_requirements` (routing steps seen on contacts).

    A narrowed plan reads and changes a subset, but every guard still looks
    at the whole instance (docs/design.md §3, "Narrowing"). With
    `settings.owner`, users another owner tagged are errors unless
    `take_ownership`. Against a `base`, each change says why it is there."""
    narrowing = narrowing or Narrowing()
    requirements = manifest.requirements + (extra_requirements or [])
    scope = read_scope(manifest, narrowing)
    # The service counts each requirement's eligible agents while the read runs.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="requirements") as pool:
        others = pool.submit(others_eligible, reader, requirements, every_user_read(scope))
        live = reader.read(scope)
        managed = instance_managed(manifest, reader, live)
        plan = plan_read(
            manifest,
            reader,
            live,
            narrowing,
            requirements,
            others.result,
            managed,
            take_ownership=take_ownership,
            count_problems=distrusted_counts(reader, requirements, live, every_user_read(scope)),
            base=base,
        )
    return plan


def plan_read(
    manifest: Manifest,
    reader: LiveStateReader,
    live: LiveState,
    narrowing: Narrowing,
    requirements: list[Requirement],
    others: Callable[[], Eligible],
    managed: set[str],
    *,
    take_ownership: bool,
    within: Attributes | None = None,
    count_problems: list[str] | None = None,
    base: Base | None = None,
) -> Plan:
    """The plan from what was read: `managed` is every user the manifests
    manage in the instance, `others()` the requirement counts of the users
    not read, untrusted when `count_problems` says they are wrong (see
    distrusted_counts). `within`: the read holds only these attributes (a
    saved plan's re-read), so only changes to them are planned."""
    errors = list(live.errors)  # declared users Connect lacks among them (reader.unknown_user)
    desired, desired_errors = desired_state(manifest, live, narrowing)
    current = narrowed_live(live.state, narrowing)
    if within is not None:
        desired, current = within.of(desired), within.of(current)
    errors += desired_errors + reference_errors(desired, current, within)
    policy = diff_policy(manifest)
    changes = diff(desired, current, policy)
    deletes = sum(
        1
        for c in changes
        if isinstance(c, AttributeChange) and c.kind is ChangeKind.DELETE_ATTRIBUTE
    )
    live_names = set(current.attributes) if within is None else set(reader.attributes())
    existing_attributes = sum(1 for n in manifest.desired.attributes if n in live_names) + deletes
    owner_tags, owner_errors = ownership(manifest, live, take_ownership)
    errors += owner_errors
    deferred: list[str] = []
    if narrowing.active:
        changes, deferred, holder_errors = narrowed_changes(
            changes, narrowing, desired, reader, set(live.state.users), managed
        )
    else:
        everyone_read = manifest.settings.users == "all" and live.whole
        holder_errors = unmanaged_holder_errors(changes, reader, managed, everyone_read)
    errors += holder_errors
    after = apply_changes(live.state, changes)
    counted: Eligible = {r.name: None for r in requirements} if count_problems else others()
    coverage = coverage_rows(requirements, live.state, after, counted)
    guards = plan_guards(
        manifest.settings,
        changes,
        len(managed) + existing_attributes,
        coverage,
        narrowing.active,
    ) + distrusted_count_guards(count_problems or [])
    ignored = {*desired.attributes, *manifest.settings.external_attributes}
    unmanaged = (
        []
        if policy.prune_attributes
        else sorted(n for n in current.attributes if n not in ignored and not limits.is_reserved(n))
    )
    users_changed = sum(1 for c in changes if not isinstance(c, AttributeChange))
    fingerprinted = live.state
    searched = proficiency_attributes(manifest, narrowing)
    if live.read.strategy == "search" and searched is not None:
        # Read by search for some attributes only: touched users are listed
        # whole, so a saved plan's fingerprints match apply's re-read.
        touched = {c.username for c in changes if not isinstance(c, AttributeChange)}
        fingerprinted, misread = reader.relisted(live.state, touched, searched)
        errors += misread
    return Plan(
        instance_id=manifest.instance.instance_id,
        region=manifest.instance.region_name,
        manifest_digest=manifest.digest,
        changes=changes,
        errors=errors,
        guards=guards,
        unchanged_users=len(desired.users) - users_changed,
        unmanaged_attributes=unmanaged,
        fingerprints=fingerprints(changes, fingerprinted, {t.username for t in owner_tags}),
        coverage=coverage,
        read=live.read,
        narrowing=narrowing if narrowing.active else None,
        deferred=deferred,
        owner_tags=owner_tags,
        why=reasons(changes, manifest, base, desired, current, live.group_members),
        base=None if base is None else base.ref,
        no_longer_managed=no_longer_managed(base, manifest, managed, live.state),
        environment=manifest.environment.name if manifest.environment else None,
    )


def distrusted_counts(
    reader: LiveStateReader,
    requirements: list[Requirement],
    live: LiveState,
    every_user_read: bool,
) -> list[str]:
    """Why the service's requirement counts cannot be trusted (empty when
    they can, or are not needed): they are checked against users whose
    state was read (connect.eligibility.count_check), and the check goes
    into the read's verification."""
    if every_user_read or not requirements:
        return []
    checked, wrong = count_check(reader, requirements, live.state)
    base = live.read.verification or Verification()
    live.read = replace(
        live.read, verification=replace(base, counts_checked=checked, counts_disagreed=len(wrong))
    )
    for line in wrong:
        log.warning("requirement count not trusted: %s", line)
    return wrong


def every_user_read(scope: ReadScope) -> bool:
    """Whether a read of `scope` holds every user of the instance (`users:
    all`, not narrowed to some users): then nobody is left to count by search."""
    return scope.all_users and scope.only_users is None


def read_scope(manifest: Manifest, narrowing: Narrowing) -> ReadScope:
    """What the reader must fetch for these manifests (every attribute: a
    page or two, and guards and errors need them all)."""
    return ReadScope(
        declared_users=set(manifest.desired.users),
        all_users=manifest.settings.users == "all",
        groups=[group.selector for group in manifest.groups],
        only_users=set(narrowing.users) if narrowing.users is not None else None,
        proficiency_attributes=proficiency_attributes(manifest, narrowing),
        owners=manifest.settings.owner is not None,
    )


def proficiency_attributes(manifest: Manifest, narrowing: Narrowing) -> set[str] | None:
    """Whose proficiencies an `--attribute` plan reads: those attributes, and
    the ones routing requirements name (the coverage guard counts the read
    users by them); None, every attribute, when not narrowed by attribute."""
    if narrowing.attributes is None:
        return None
    named = {name for r in manifest.requirements for name, _ in references(r.expression)}
    return set(narrowing.attributes) | named


def desired_state(
    manifest: Manifest, live: LiveState, narrowing: Narrowing
) -> tuple[RoutingState, list[str]]:
    """Declared attributes, and every managed user's proficiencies: groups
    in order, then the user's own sets and entries (later wins)."""
    errors: list[str] = []
    cap = manifest.settings.max_proficiencies_per_user
    users = {}
    for username in sorted(live.managed):
        proficiencies = manifest.proficiencies_of(username, live.group_members)
        if len(proficiencies) > cap:
            errors.append(
                f"user {username} would hold {len(proficiencies)} proficiencies with groups "
                f"applied; the limit is {cap}"
            )
        kept = {key: level for key, level in proficiencies.items() if narrowing.keeps(key[0])}
        users[username] = UserState(username, kept, user_id=live.state.users[username].user_id)
    return RoutingState(dict(manifest.desired.attributes), users), errors


def narrowed_live(live: RoutingState, narrowing: Narrowing) -> RoutingState:
    """`live` with users' proficiencies kept to the narrowed attributes."""
    if narrowing.attributes is None:
        return live
    users = {
        name: UserState(
            name, {k: v for k, v in u.proficiencies.items() if narrowing.keeps(k[0])}, u.user_id
        )
        for name, u in live.users.items()
    }
    return RoutingState(dict(live.attributes), users)


def instance_managed(manifest: Manifest, reader: LiveStateReader, live: LiveState) -> set[str]:
    """Every username the manifests manage in the whole instance, also when
    the read was narrowed to a few (the guards count against all of them)."""
    if live.whole:
        return set(live.managed)
    if manifest.settings.users != "all" and not manifest.groups:
        return set(manifest.desired.users) - set(live.missing_users)
    return reader.managed_users(read_scope(manifest, Narrowing()))[0]


def unknown_name_errors(
    manifest: Manifest, reader: LiveStateReader, narrowing: Narrowing
) -> list[str]:
    """`--attribute` names neither declared, external nor live, and `--user`
    names these manifests do not manage, with the closest names; asked before
    any user's proficiencies are read. (`--changed-since` also names users
    the change stopped managing: left alone, as a full plan leaves them.)"""
    errors = []
    if narrowing.attributes is not None:
        known = [*manifest.desired.attributes, *manifest.settings.external_attributes]
        folded = {name.casefold() for name in known}
        if any(name.casefold() not in folded for name in narrowing.attributes):
            known += reader.attributes()  # only then: one page or two
            folded = {name.casefold() for name in known}
        errors += [
            f"--attribute {name!r}: no such attribute{closest(name, known)}"
            for name in sorted(narrowing.attributes)
            if name.casefold() not in folded
        ]
    if narrowing.users is not None and narrowing.changed_since is None:
        managed = set(manifest.desired.users)
        if manifest.settings.users == "all" or manifest.groups:
            managed |= reader.managed_users(read_scope(manifest, Narrowing()))[0]
        errors += [
            f"--user {name!r}: these manifests manage no such user{closest(name, managed)}"
            for name in sorted(narrowing.users - managed)
        ]
    return errors


def closest(name: str, candidates: Iterable[str]) -> str:
    """ "; did you mean …?" with the closest candidates, or nothing."""
    by_folded = {c.casefold(): c for c in candidates}
    matches = difflib.get_close_matches(name.casefold(), list(by_folded), n=3, cutoff=0.0)
    return f"; closest: {', '.join(by_folded[m] for m in matches)}" if matches else ""


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


def diff_policy(manifest: Manifest) -> DiffPolicy:
    """The manifests' settings as diff policy (a narrowed plan defers what it
    prunes, see narrowed_changes)."""
    settings = manifest.settings
    return DiffPolicy(
        prune_attributes=settings.prune_attributes,
        keep_attributes=frozenset(settings.external_attributes),
        max_proficiencies_per_user=settings.max_proficiencies_per_user,
    )


def reference_errors(
    desired: RoutingState, live: RoutingState, within: Attributes | None = None
) -> list[str]:
    """Problems only live state reveals: spelling of existing attributes,
    and external attributes/values that do not exist (of the attributes
    `within`, when the live read holds only those)."""
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
        if existing is None and limits.is_reserved(name):
            errors.append(f"system attribute {name} does not exist in Connect (never created)")
    missing: dict[str, set[str]] = {}
    for user in desired.users.values():
        for attribute, value in user.proficiencies:
            if within is not None and not within.holds(attribute):
                continue
            declared = desired.attributes.get(attribute)
            if declared is not None and not limits.is_reserved(attribute):
                continue
            existing = live_by_folded.get(attribute.casefold())
            # A system attribute's values: its live ones and declared custom ones.
            known = {*(existing.values if existing else ()), *(declared.values if declared else ())}
            if existing is None or value not in known:
                missing.setdefault(f"{attribute}/{value}", set()).add(user.username)
    for key, holders in sorted(missing.items()):
        errors.append(f"{key} does not exist in Connect but is given to: {names(holders)}")
    return errors


def narrowed_changes(
    changes: list[Change],
    narrowing: Narrowing,
    desired: RoutingState,
    reader: LiveStateReader,
    read_users: set[str],
    managed: set[str],
) -> tuple[list[Change], list[str], list[str]]:
    """(kept changes, deferred, errors). User changes are all kept (they are
    the narrowed users'). Attribute additions are kept when in scope or
    needed by a narrowed user; a removal is kept when in scope and every
    holder is a user this plan reads (it disassociates them first); other
    attribute changes wait for a full plan. A holder no manifest manages is
    an error, as in a full plan."""
    needed = {(a.casefold(), v) for u in desired.users.values() for a, v in u.proficiencies}
    kept: list[Change] = []
    deferred: list[str] = []
    errors: list[str] = []
    for change in changes:
        if not isinstance(change, AttributeChange):
            kept.append(change)
            continue
        in_scope = narrowing.plans_attribute(change.name)
        if change.phase != Phase.REMOVE:
            adds = change.added_values
            if in_scope or any((change.name.casefold(), v) in needed for v in adds):
                kept.append(change)
            else:
                deferred.append(change.description)
            continue
        if not in_scope:
            deferred.append(change.description)
            continue
        held, error = removal_holders(change, reader, managed)
        if error is not None:
            errors.append(error)
        elif held - read_users:
            deferred.append(
                f"{change.description} (still held by managed users outside the narrowing: "
                f"{names(held - read_users)})"
            )
        else:
            kept.append(change)
    return kept, deferred, errors


def removal_holders(
    change: AttributeChange, reader: LiveStateReader, managed: set[str]
) -> tuple[set[str], str | None]:
    """(the managed users the service finds holding what `change` removes,
    the plan error when users these manifests do not manage hold it, or when
    that cannot be known). A holder outside `managed` is reported only once
    ListUserProficiencies confirms it: a search may find more than it should
    (docs/emulator-fidelity.md, "Searching users")."""
    values = None if change.kind is ChangeKind.DELETE_ATTRIBUTE else change.removed_values
    what = change.name if values is None else ", ".join(f"{change.name}/{v}" for v in values)
    if not all(searchable(text) for text in (change.name, *(values or ()))):
        return set(), (
            f"cannot check who else holds {what}: names and values shorter than "
            f"{MIN_SEARCHABLE_LENGTH} characters cannot be searched reliably (API Reference, "
            "UserSearchCriteria); manage every user (`users: all`) to remove it"
        )
    found = reader.holders(change.name, values)
    others = {u: i for u, i in found.items() if u not in managed}
    confirmed = reader.confirmed_holders(change.name, values, others, LISTED_NAMES)
    if confirmed:
        return set(), (
            f"cannot remove {what}: still held by users these manifests do not manage: "
            f"{names(confirmed)}"
        )
    return set(found) & managed, None


def unmanaged_holder_errors(
    changes: list[Change], reader: LiveStateReader, managed: set[str], everyone_read: bool
) -> list[str]:
    """Removing a value (or attribute) an unmanaged user holds would break
    that user's routing behind the manifests' back: refuse, naming them
    (nobody to ask about when every user of the instance is managed and read)."""
    errors = []
    for change in changes:
        if everyone_read or not isinstance(change, AttributeChange):
            continue
        if change.phase == Phase.REMOVE:
            _, error = removal_holders(change, reader, managed)
            errors += [error] if error else []
    return errors


def others_eligible(
    reader: LiveStateReader, requirements: list[Requirement], every_user_read: bool
) -> Eligible:
    """Per requirement, the instance's users the service finds eligible
    (InstanceEligibility); nobody else when the plan reads every user."""
    if every_user_read:
        return {requirement.name: set() for requirement in requirements}
    instance = InstanceEligibility(reader)
    return {
        requirement.name: instance.eligible(requirement.expression) for requirement in requirements
    }
