"""`explain`: a contact's routing steps agent by agent, now and after the plan.

Reads are few and paced: one DescribeContact; for each attribute value the
steps name, the three SearchUsers that give every holder and level (as the
search read, and checked as it is, against a sample of holders and users
read by list); the user list (for that check, NOT conditions, preferred
agents and near misses holding nothing a step names); and, for the
after-state, the plan of the manifests narrowed to the managed users the
steps concern (their proficiencies listed).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from botocore.exceptions import ClientError

from reconciler.connect.reader import LiveStateReader
from reconciler.manifest import Manifest
from reconciler.plan.narrowing import Narrowing
from reconciler.plan.planner import make_plan, read_scope
from reconciler.routing.explain import (
    Agents,
    ContactExplanation,
    Key,
    conditions,
    explain_step,
    referenced,
    unexplained,
)
from reconciler.routing.expression import Expression, ExpressionError, parse_structured, to_text
from reconciler.service.limits import searchable
from reconciler.state import Proficiencies

_INSTANCE_IN_ARN = re.compile(r":instance/([^/]+)/")


class ContactRefused(Exception):
    """A contact this instance cannot explain (another instance's)."""


def explain(
    reader: LiveStateReader,
    manifest: Manifest | None,
    *,
    contact_id: str | None = None,
    expression: Expression | None = None,
    near_misses: int = 10,
) -> ContactExplanation:
    """Explain `contact_id`'s routing steps, or one `expression`; the
    after-state is the manifests' plan (none without manifests)."""
    calls_before = Counter(reader.pacer.calls)
    steps: list[tuple[int, Expression | None, str | None, str | None, str]] = []
    note = ""
    if contact_id is not None:
        try:
            contact = reader.call("DescribeContact", ContactId=contact_id)["Contact"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            raise ContactRefused(
                f"no contact {contact_id} in instance {reader.instance_id}: check the id, "
                "and that --config or --instance-id names the instance it was routed in"
            ) from None
        owner = _INSTANCE_IN_ARN.search(contact.get("Arn") or "")
        if owner and owner.group(1) != reader.instance_id:
            raise ContactRefused(
                f"contact {contact_id} belongs to instance {owner.group(1)}, "
                f"not {reader.instance_id}"
            )
        recorded = (contact.get("RoutingCriteria") or {}).get("Steps") or []
        if not recorded:
            note = (
                "no routing criteria recorded: the contact predates routing criteria, or "
                "was not routed by proficiencies; nothing to explain"
            )
        for index, step in enumerate(recorded, start=1):
            steps.append(_parsed(index, step))
    elif expression is not None:
        steps.append((1, expression, None, None, ""))
    expressions = [e for _, e, _, _, _ in steps if e is not None]
    keys = {k for k in referenced(expressions) if searchable(k[0]) and searchable(k[1])}
    now, misread = _agents(reader, keys)
    after, scope = _after(reader, manifest, now, keys) if expressions else (None, "")
    explained = []
    for index, parsed, status, expiry, why in steps:
        if parsed is None:
            explained.append(unexplained(index, "(unreadable)", why, status, expiry))
            continue
        text = to_text(parsed, agent_names=now.usernames)
        inexact = _inexact(parsed, keys)
        if inexact:
            explained.append(unexplained(index, text, inexact, status, expiry))
            continue
        explained.append(
            explain_step(index, parsed, now, after, near_misses, status, expiry, now.usernames)
        )
    reads = dict(Counter(reader.pacer.calls) - calls_before)
    note = " ".join(n for n in (note, misread) if n)
    return ContactExplanation(contact_id, explained, note, reads, scope)


def _parsed(index: int, step: Any) -> tuple[int, Expression | None, str | None, str | None, str]:
    """(index, expression or None, status, expiry, why it cannot be read)."""
    status = step.get("Status") if isinstance(step, dict) else None
    expiry = _expiry(step.get("Expiry") if isinstance(step, dict) else None)
    try:
        expression = parse_structured(step, f"step {index}")
    except ExpressionError as exc:
        return index, None, status, expiry, f"cannot read this step's expression: {exc}"
    return index, expression, status, expiry, ""


def _expiry(expiry: Any) -> str | None:
    if not isinstance(expiry, dict):
        return None
    if expiry.get("ExpiryTimestamp"):
        return str(expiry["ExpiryTimestamp"])
    seconds = expiry.get("DurationInSeconds")
    return None if seconds is None else f"after {seconds} s"


def _inexact(expression: Expression, searched: set[Key]) -> str:
    """Why the step cannot be evaluated exactly ("" when it can): a
    fractional level, or a value too short to have been searched for."""
    fractional = sorted(
        {
            level
            for c in conditions(expression)
            for level in (c.min_level, c.max_level)
            if level is not None and not float(level).is_integer()
        }
    )
    if fractional:
        return (
            f"level {', '.join(f'{level:g}' for level in fractional)} is not a whole number: "
            "agents hold whole levels here, and how routing compares them to a fraction is "
            "not documented"
        )
    short = sorted(f"{a}/{v}" for a, v in referenced([expression]) if (a, v) not in searched)
    if short:
        return (
            f"names {', '.join(short)}, too short to search for (API Reference, UserSearchCriteria)"
        )
    return ""


def _agents(reader: LiveStateReader, keys: set[Key]) -> tuple[Agents, str]:
    """Every user of the instance (listed for the search's check anyway) and
    each key's holders and levels (three SearchUsers a key, checked against a
    sample read by list); with a note when the search did not hold."""
    found, note = reader.checked_holder_levels(sorted(keys))
    usernames: dict[str, str] = dict(reader.usernames_by_id())
    levels: dict[Key, dict[str, float]] = {}
    for key, holders in found.items():
        levels[key] = {user_id: level for user_id, (_, level) in holders.items()}
        usernames.update({user_id: username for user_id, (username, _) in holders.items()})
    return Agents(usernames, levels, everyone=True), note


def _after(
    reader: LiveStateReader, manifest: Manifest | None, now: Agents, keys: set[Key]
) -> tuple[Agents | None, str]:
    """The agents after the manifests' plan, and what that plan covered."""
    if manifest is None:
        return None, "not computed: no manifests"
    involved = _involved(reader, manifest, now, keys)
    if not involved:
        return now, "no managed user holds or is given what these steps name: as now"
    plan = make_plan(manifest, reader, Narrowing(users=frozenset(involved)))
    if plan.errors:
        return None, f"not computed: the plan has errors ({plan.errors[0]})"
    changed: dict[str, dict[Key, float]] = {}
    usernames = dict(now.usernames)
    for change in plan.user_changes:
        changed[change.user_id] = _of(change.after, keys)
        usernames[change.user_id] = change.username
    moved = Agents(usernames, now.levels, now.everyone).with_levels(changed)
    return moved, f"the plan of {len(involved)} managed user(s) these steps concern"


def _of(proficiencies: Proficiencies, keys: set[Key]) -> dict[Key, float]:
    return {key: level for key, level in proficiencies.items() if key in keys}


def _involved(reader: LiveStateReader, manifest: Manifest, now: Agents, keys: set[Key]) -> set[str]:
    """The managed users whose proficiencies in `keys` the plan may change:
    holders now, declared users given one, members of groups giving one."""
    candidates = {now.usernames[u] for holders in now.levels.values() for u in holders}
    candidates |= {
        name for name, user in manifest.desired.users.items() if set(user.proficiencies) & keys
    }
    giving = [g.selector for g in manifest.groups if set(g.proficiencies) & keys]
    if giving:
        members = reader.managed_users(read_scope(manifest, Narrowing()))[1]
        selected = [
            m for g, m in zip(manifest.groups, members, strict=True) if g.selector in giving
        ]
        candidates |= set().union(*selected)
    if not candidates:
        return set()
    scope = read_scope(manifest, Narrowing(users=frozenset(candidates)))
    return reader.managed_users(scope)[0]
