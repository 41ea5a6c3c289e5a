"""Is a plan still what Connect and the manifests give? Checked before it is applied.

`apply FILE` applies exactly what was reviewed or refuses (docs/design.md §3):

- the plan must be one this version wrote, for these manifests, this
  instance and region, with a fingerprint for every object it touches;
- the touched objects are re-read; any that changed makes the plan stale;
- the changes are planned again for exactly those objects, by the same
  pipeline as any plan (planner.plan_read), from the manifests and the
  re-read state; any difference (an edited or corrupted file) is shown path
  by path and refused.

A fresh plan read by search is checked the same way before apply runs it:
the search index may trail writes, so its users are re-read by list.
"""

from __future__ import annotations

import json
from typing import Any

from deepdiff import DeepDiff
from deepdiff.helper import NotPresent

from reconciler.connect.reader import LiveState, LiveStateReader
from reconciler.manifest import Manifest
from reconciler.plan.causes import Base
from reconciler.plan.changes import Change, OwnerTag
from reconciler.plan.fingerprint import attribute_fingerprint, proficiencies_fingerprint
from reconciler.plan.guards import GuardFinding
from reconciler.plan.narrowing import Narrowing
from reconciler.plan.plan import Plan, document_digest
from reconciler.plan.planner import (
    Attributes,
    distrusted_counts,
    instance_managed,
    make_plan,
    others_eligible,
    plan_read,
    read_scope,
)


class RefusedPlan(Exception):
    """A saved plan that must not be applied: `reason` and one line per problem."""

    def __init__(self, reason: str, problems: list[str]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.problems = problems


def fresh_plan(
    manifest: Manifest,
    reader: LiveStateReader,
    narrowing: Narrowing,
    take_ownership: bool,
    base: Base | None = None,
) -> Plan:
    """A plan to apply now. One read by search may rest on a search index
    that trails writes, so every user it touches is re-read with
    ListUserProficiencies first, as for a saved plan: RefusedPlan if any
    differs (fail closed)."""
    plan = make_plan(manifest, reader, narrowing, take_ownership=take_ownership, base=base)
    if plan.read is not None and plan.read.strategy == "search" and not plan.errors:
        stale = stale_objects(plan, reread(plan, manifest, reader))
        if stale:
            hint = "the search index may trail writes by seconds: retry, or use --read list"
            raise RefusedPlan("it is stale", [*stale, hint])
    return plan


def check_reviewed_plan(
    reviewed: Plan,
    manifest: Manifest,
    region: str | None,
    reader: LiveStateReader,
    merged: Narrowing | None = None,
) -> Plan:
    """The plan to apply for a plan reviewed on another commit (a pull
    request's, before the merge): planned again now, and returned only if
    its changes and owner tags equal the reviewed ones; else RefusedPlan
    with the differences, for a new review. It is narrowed as the reviewed
    plan was, or to what the merge changed (`merged`): then a change the
    merge makes to users the review never showed (main moved: another pull
    request started managing a user the reviewed set now also gives) is a
    difference too."""
    _check_target(reviewed, manifest, region)
    _check_digest(reviewed)
    fresh = fresh_plan(
        manifest,
        reader,
        merged or reviewed.narrowing or Narrowing(),
        take_ownership=any(tag.previous_owner for tag in reviewed.owner_tags),
    )
    if fresh.errors:
        raise RefusedPlan("planning it again fails", fresh.errors)
    differences = steps_differences(reviewed, fresh)
    if differences:
        raise RefusedPlan(
            "the changes planned now are not the reviewed ones; review them again", differences
        )
    return fresh


def _check_target(plan: Plan, manifest: Manifest, region: str | None) -> None:
    environment = manifest.environment.name if manifest.environment else None
    if plan.environment != environment:
        raise RefusedPlan(
            "it is for another environment",
            [f"the plan is for environment {plan.environment}, this apply is for {environment}"],
        )
    if plan.instance_id != manifest.instance.instance_id:
        raise RefusedPlan(
            "it is for another instance",
            [
                f"the plan is for instance {plan.instance_id}, "
                f"the manifests manage {manifest.instance.instance_id}"
            ],
        )
    if plan.region != region:
        raise RefusedPlan(
            "it is for another region",
            [f"the plan is for region {plan.region}, this apply targets {region}"],
        )


def _check_digest(plan: Plan) -> None:
    """What no recompute can see (a change dropped with its fingerprint,
    guards or coverage rewritten): the file must be the one plan --out wrote.
    A digest, not a signature: it catches edits and corruption, not forgery."""
    if plan.saved_digest != document_digest(plan.to_data(with_fingerprints=True)):
        raise RefusedPlan(
            "the file is not the one plan --out wrote (was it edited?)",
            ["its content does not match its plan_digest"],
        )


def check_saved_plan(
    plan: Plan, manifest: Manifest, region: str | None, reader: LiveStateReader
) -> list[GuardFinding]:
    """Raise RefusedPlan unless `plan` is for these manifests, this instance
    and region, still matches Connect, and is exactly what the manifests and
    the re-read state give for the objects it touches. Return the guards as
    they stand now: apply decides --force on these, never on the file's."""
    _check_target(plan, manifest, region)
    if plan.manifest_digest != manifest.digest:
        raise RefusedPlan("it is stale", ["the manifests changed since the plan was saved"])
    live = reread(plan, manifest, reader)
    stale = stale_objects(plan, live)
    if stale:
        raise RefusedPlan("it is stale", stale)
    recomputed = replanned(plan, manifest, reader, live)
    if recomputed.errors:
        raise RefusedPlan("planning its objects again fails", recomputed.errors)
    differences = steps_differences(plan, recomputed)
    if differences:
        raise RefusedPlan(
            "its changes are not what the manifests and Connect give now (was the file edited?)",
            differences,
        )
    _check_digest(plan)
    return recomputed.guards


def replanned(plan: Plan, manifest: Manifest, reader: LiveStateReader, live: LiveState) -> Plan:
    """The plan the manifests give now for the objects `plan` touches, from
    their re-read state `live`, narrowed as `plan` was (what it deferred
    stays deferred); its guards count the whole instance as it is now."""
    narrowing = plan.narrowing or Narrowing()
    requirements = manifest.requirements
    return plan_read(
        manifest,
        reader,
        live,
        narrowing,
        requirements,
        lambda: others_eligible(reader, requirements, every_user_read=False),
        instance_managed(manifest, reader, live),
        # who owns each user now is compared with the plan's tags, so taking
        # ownership is no error here
        take_ownership=True,
        within=Attributes.named(plan.fingerprints["attributes"]),
        count_problems=distrusted_counts(reader, requirements, live, every_user_read=False),
    )


def reread(plan: Plan, manifest: Manifest, reader: LiveStateReader) -> LiveState:
    """Read again exactly the objects the plan fingerprinted (and which
    groups those users are in, which decides what they should hold)."""
    scope = read_scope(manifest, Narrowing())
    scope.only_users = set(plan.fingerprints["users"])
    if not scope.only_users:  # no user to read: no group to resolve either
        scope.groups = []
    scope.only_attributes = set(plan.fingerprints["attributes"])
    scope.strategy = "list"  # never the search index, which may trail writes
    return reader.read(scope)


def stale_objects(plan: Plan, live: LiveState) -> list[str]:
    """Every fingerprinted object that changed in Connect since the plan was
    saved; empty when the plan still holds."""
    problems = []
    by_folded = {a.name.casefold(): a for a in live.state.attributes.values()}
    for name, expected in sorted(plan.fingerprints["attributes"].items()):
        actual = attribute_fingerprint(by_folded.get(name.casefold()))
        if actual != expected:
            problems.append(f"attribute {name}: {_how(expected, actual)} since the plan was made")
    for username, expected in sorted(plan.fingerprints["users"].items()):
        if username not in live.state.users and username not in live.missing_users:
            problems.append(f"user {username}: no longer managed by the manifests")
            continue
        user = live.state.users.get(username)
        actual = proficiencies_fingerprint(user.proficiencies if user else None)
        if actual != expected:
            problems.append(
                f"user {username}: proficiencies {_how(expected, actual)} since the plan was made"
            )
    return problems


def steps_differences(saved: Plan, recomputed: Plan) -> list[str]:
    """Where two plans' changes and owner tags differ, one line per path."""
    return changes_differences(saved.changes, recomputed.changes) + tags_differences(
        saved.owner_tags, recomputed.owner_tags
    )


def changes_differences(saved: list[Change], recomputed: list[Change]) -> list[str]:
    """One line per path where `saved` and `recomputed` differ; empty when equal."""

    def keyed(changes: list[Change]) -> dict[str, Any]:
        return {c.key: c.data for c in changes}

    saved_keyed, recomputed_keyed = keyed(saved), keyed(recomputed)
    lines = differences(saved_keyed, recomputed_keyed)
    if not lines and list(saved_keyed) != list(recomputed_keyed):
        lines.append("the plan's changes are out of order")
    return lines


def tags_differences(saved: list[OwnerTag], recomputed: list[OwnerTag]) -> list[str]:
    """One line per owner tag the plan and Connect now disagree on (another
    owner tagged a user since, or the file was edited)."""
    return differences(
        {f"owner tag {t.username}": t.data for t in saved},
        {f"owner tag {t.username}": t.data for t in recomputed},
    )


def differences(saved: dict[str, Any], recomputed: dict[str, Any]) -> list[str]:
    """`root['key']...: plan has X, recomputed Y`, path by path (deepdiff)."""
    found = DeepDiff(saved, recomputed, ignore_numeric_type_changes=True)
    return sorted(
        f"{level.path()}: plan has {_shown(level.t1)}, recomputed {_shown(level.t2)}"
        for levels in found.tree.values()
        for level in levels
    )


def _shown(value: Any) -> str:
    return "nothing" if isinstance(value, NotPresent) else json.dumps(value, default=str)


def _how(expected: str | None, actual: str | None) -> str:
    if expected is None:
        return "created"
    return "deleted" if actual is None else "changed"
