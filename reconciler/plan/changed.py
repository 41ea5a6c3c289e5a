"""`--changed-since GITREF`: narrow a plan to what the manifests changed.

Compares the manifests compiled at GITREF with the current ones: attributes
whose declaration changed; users whose proficiencies changed through their
own entries or a set they use; and, when a group's selector or sets changed,
its live members (under either selector), resolved and compared with every
group applied.
"""

from __future__ import annotations

from reconciler.connect.reader import LiveStateReader, ReadScope
from reconciler.manifest import Manifest
from reconciler.plan.planner import Narrowing, merged_proficiencies, names
from reconciler.state import Proficiencies


class NotNarrowable(Exception):
    """A change that touches every managed user: plan in full instead."""


def changed_narrowing(
    before: Manifest | None, now: Manifest, ref: str, reader: LiveStateReader
) -> Narrowing:
    """The narrowing for everything that differs between `before` (the
    manifests at `ref`) and `now`. Raises NotNarrowable, with the reason,
    when the change reaches every managed user."""
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
        selectors = [g.match for g in before.groups] + [g.match for g in now.groups]
        _, members = reader.managed_users(ReadScope(declared_users=set(), groups=selectors))
        before_members, now_members = members[: len(before.groups)], members[len(before.groups) :]
        # Everyone in a group either way, compared with every group applied in
        # order (a later group wins, so a reordering changes people too).
        candidates = set().union(*members)
        users = {
            username
            for username in candidates | declared
            if merged_proficiencies(before, username, before_members)
            != merged_proficiencies(now, username, now_members)
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
        reasons.append(f"nothing in the manifests changed since {ref}")
    return Narrowing(
        users=frozenset(users),
        declarations=frozenset(declarations),
        changed_since=ref,
        reasons=tuple(reasons),
    )


def _declared(manifest: Manifest, username: str) -> Proficiencies | None:
    user = manifest.desired.users.get(username)
    return None if user is None else user.proficiencies
