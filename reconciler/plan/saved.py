"""Saved plans (`plan --out FILE`): the plan, the manifest digest and the
fingerprints of every live object it touches, so `apply FILE` applies
exactly what was reviewed or refuses (DESIGN §3):

- the plan must be one this version wrote, for these manifests, this
  instance and region, with a fingerprint for every object it touches;
- the touched objects are re-read; any that changed makes the plan stale;
- the changes are recomputed for exactly those objects from the manifests
  and the re-read state; any difference (an edited or corrupted file) is
  shown path by path and refused.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from deepdiff import DeepDiff
from deepdiff.helper import NotPresent

from reconciler.apply import describe
from reconciler.atomic import write_json_atomically
from reconciler.connect.reader import LiveState, LiveStateReader
from reconciler.coverage import coverage_rows
from reconciler.manifest import Manifest
from reconciler.plan.changes import Change
from reconciler.plan.diff import apply_changes, diff
from reconciler.plan.fingerprint import (
    attribute_fingerprint,
    proficiencies_fingerprint,
    touched_objects,
)
from reconciler.plan.guards import GuardFinding
from reconciler.plan.plan import OwnerTag, Plan, document_digest
from reconciler.plan.planner import (
    Narrowing,
    desired_state,
    diff_policy,
    instance_managed,
    narrowed_changes,
    narrowed_live,
    others_eligible,
    ownership,
    plan_guards,
    read_scope,
    unmanaged_holder_errors,
)
from reconciler.state import RoutingState


class SavedPlanError(Exception):
    """A plan file that is not a plan this version saved (exit 4)."""


class RefusedPlan(Exception):
    """A saved plan that must not be applied: `reason` and one line per problem."""

    def __init__(self, reason: str, problems: list[str]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.problems = problems


def save_plan(plan: Plan, path: Path) -> None:
    """Write `plan` to `path` atomically, with its fingerprints."""
    data = plan.to_data(with_fingerprints=True)
    data["plan_digest"] = document_digest(data)
    data["saved_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    write_json_atomically(path, data)


def load_plan(path: Path) -> Plan:
    """Read a plan saved by save_plan. OSError when the file cannot be read;
    SavedPlanError when it is not a complete saved plan of this version."""
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
        plan = Plan.from_data(data)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SavedPlanError(f"{path}: not a saved plan of this version ({exc})") from None
    fingerprinted = data.get("fingerprints")
    if not isinstance(fingerprinted, dict) or set(fingerprinted) != {"attributes", "users"}:
        raise SavedPlanError(f"{path}: the plan has no fingerprints; save it with `plan --out`")
    if not all(
        isinstance(kind, dict)
        and all(isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in kind.items())
        for kind in fingerprinted.values()
    ):
        raise SavedPlanError(f"{path}: its fingerprints are not name -> hash maps (was it edited?)")
    attributes, users = touched_objects(plan.changes)
    users |= {tag.username for tag in plan.owner_tags}
    missing = sorted(attributes - set(fingerprinted["attributes"])) + sorted(
        users - set(fingerprinted["users"])
    )
    if missing:
        raise SavedPlanError(f"{path}: no fingerprint for {', '.join(missing)}")
    return plan


def check_saved_plan(
    plan: Plan, manifest: Manifest, region: str | None, reader: LiveStateReader
) -> list[GuardFinding]:
    """Raise RefusedPlan unless `plan` is for these manifests, this instance
    and region, still matches Connect, and is exactly what the manifests and
    the re-read state give for the objects it touches. Return the guards as
    they stand now: apply decides --force on these, never on the file's."""
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
    if plan.manifest_digest != manifest.digest:
        raise RefusedPlan("it is stale", ["the manifests changed since the plan was saved"])
    live = reread(plan, manifest, reader)
    stale = stale_objects(plan, live)
    if stale:
        raise RefusedPlan("it is stale", stale)
    recomputed, errors = recomputed_changes(plan, manifest, live, reader)
    # who owns each user now is compared below, so taking ownership is no error here
    tags, owner_errors = ownership(manifest, live, take_ownership=True)
    if errors or owner_errors:
        raise RefusedPlan("planning its objects again fails", errors + owner_errors)
    differences = changes_differences(plan.changes, recomputed) + tags_differences(
        plan.owner_tags, tags
    )
    if differences:
        raise RefusedPlan(
            "its changes are not what the manifests and Connect give now (was the file edited?)",
            differences,
        )
    # What the recompute cannot see (a change dropped with its fingerprint,
    # guards or coverage rewritten): the file must be the one plan --out wrote.
    # A digest, not a signature: it catches edits and corruption, not forgery.
    if plan.saved_digest != document_digest(plan.to_data(with_fingerprints=True)):
        raise RefusedPlan(
            "the file is not the one plan --out wrote (was it edited?)",
            ["its content does not match its plan_digest"],
        )
    return current_guards(plan, manifest, live, reader)


def current_guards(
    plan: Plan, manifest: Manifest, live: LiveState, reader: LiveStateReader
) -> list[GuardFinding]:
    """The plan's guards over the whole instance as it is now: the service
    counts each requirement's eligible agents, the re-read users are counted
    before and after the plan's changes (as for a narrowed plan)."""
    live_names = set(reader.attributes())
    deletes = sum(1 for c in plan.attribute_changes if c.kind == "delete_attribute")
    existing = (
        len(instance_managed(manifest, reader, live))
        + sum(1 for name in manifest.desired.attributes if name in live_names)
        + deletes
    )
    after = apply_changes(live.state, plan.changes)
    others = others_eligible(reader, manifest.requirements, every_user_read=False)
    coverage = coverage_rows(manifest.requirements, live.state, after, others)
    return plan_guards(manifest, plan.changes, existing, coverage, plan.narrowing is not None)


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


def recomputed_changes(
    plan: Plan, manifest: Manifest, live: LiveState, reader: LiveStateReader
) -> tuple[list[Change], list[str]]:
    """The changes the manifests ask for the plan's objects given `live`,
    narrowed as the plan was (so what it deferred stays deferred), and any
    plan errors doing so."""
    try:
        narrowing = Narrowing.from_data(plan.narrowing) if plan.narrowing else Narrowing()
    except (KeyError, TypeError) as exc:
        return [], [f"its narrowing member is malformed (missing or wrong {exc})"]
    desired, errors = desired_state(manifest, live, narrowing)
    touched = {name.casefold() for name in plan.fingerprints["attributes"]}

    def only_touched(state: RoutingState) -> RoutingState:
        attributes = {n: a for n, a in state.attributes.items() if n.casefold() in touched}
        return RoutingState(attributes, state.users)

    current = narrowed_live(live.state, narrowing)
    changes = diff(only_touched(desired), only_touched(current), diff_policy(manifest))
    managed = instance_managed(manifest, reader, live)
    if narrowing.active:
        changes, _, holder_errors = narrowed_changes(
            changes, narrowing, desired, reader, set(live.state.users), managed
        )
        errors += holder_errors
    else:
        errors += unmanaged_holder_errors(changes, reader, managed)
    return changes, live.errors + errors


def changes_differences(saved: list[Change], recomputed: list[Change]) -> list[str]:
    """One line per path where `saved` and `recomputed` differ; empty when equal."""

    def keyed(changes: list[Change]) -> dict[str, Any]:
        # an attribute that gains and loses values changes in phases 1 and 3
        return {f"{describe(c)} (phase {c.phase})": c.data for c in changes}

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
