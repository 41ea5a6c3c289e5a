"""Guards: findings that make apply refuse (exit 3) unless --force."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.connect.criteria import SEARCH_SEMANTICS
from reconciler.manifest.models import SettingsSpec
from reconciler.plan.changes import AttributeChange, Change, ChangeKind, UserProficiencyChange
from reconciler.quoting import counted, names
from reconciler.routing.coverage import CoverageRow


@dataclass(frozen=True)
class GuardFinding:
    """One reason to refuse the apply."""

    guard: str
    message: str

    @property
    def data(self) -> dict[str, Any]:
        return {"guard": self.guard, "message": self.message}


def change_share_guard(
    changes: list[Change], existing: int, settings: SettingsSpec
) -> GuardFinding | None:
    """octoDNS-style safety: refuse when more than `max_change_percent` of the
    managed objects that exist would be updated or deleted, once there are at
    least `min_existing_objects` of them (creations are not counted)."""
    emptied = emptied_users(changes)
    if emptied and settings.users == "all":
        # One agent left with nothing is what a typo under `users: all` does:
        # it alone is past any share (and no minimum of objects excuses it).
        return GuardFinding(
            "max_change_percent",
            f"{counted(len(emptied), 'agent')} would lose every proficiency: {names(emptied)}; "
            "under `users: all` an agent the manifests do not give anything is emptied "
            "(a mistyped username?); each counts past settings.max_change_percent",
        )
    changed = {
        ("attribute", c.name.casefold()) if isinstance(c, AttributeChange) else ("user", c.username)
        for c in changes
        if not (isinstance(c, AttributeChange) and c.kind is ChangeKind.CREATE_ATTRIBUTE)
    }
    if existing < settings.min_existing_objects or existing == 0:
        return None
    share = 100 * len(changed) / existing
    if share <= settings.max_change_percent:
        return None
    return GuardFinding(
        "max_change_percent",
        f"{len(changed)} of {existing} managed objects ({share:.0f}%) would change; "
        f"settings.max_change_percent is {settings.max_change_percent:g}%",
    )


def emptied_users(changes: list[Change]) -> list[str]:
    """Users a change leaves with no proficiency who held some."""
    return [
        c.username
        for c in changes
        if isinstance(c, UserProficiencyChange) and c.before and not c.after
    ]


def coverage_guard(rows: list[CoverageRow]) -> list[GuardFinding]:
    """A routing requirement the plan takes below `min_agents`, or lowers
    further when it is already below: contacts would wait for nobody."""
    return [
        GuardFinding(
            "routing_requirement",
            f"{row.name}: {row.now} → {row.after} eligible agents; min_agents is {row.min_agents} "
            f"({row.expression})",
        )
        for row in rows
        if row.lowered_below_minimum
    ]


def unchecked_coverage_guard(rows: list[CoverageRow]) -> list[GuardFinding]:
    """A narrowed plan reads a few users: a requirement it could not count
    for the whole instance is unchecked, and that refuses the apply."""
    return [
        GuardFinding(
            "coverage_not_checked",
            f"{row.name}: coverage not checked: the service cannot count "
            f"{row.expression!r} for the whole instance; run a full plan",
        )
        for row in rows
        if row.counted != "all users"
    ]


def distrusted_count_guards(problems: list[str]) -> list[GuardFinding]:
    """Requirement counts the service gave otherwise than known users'
    proficiencies: coverage of the users not read is not checked."""
    return [
        GuardFinding(
            "coverage_not_checked",
            f"{problem}: the service's search does not count as assumed, so agents this "
            f"plan did not read are not counted; one of these behaviours differs: "
            f"{SEARCH_SEMANTICS}",
        )
        for problem in problems
    ]


def plan_guards(
    settings: SettingsSpec,
    changes: list[Change],
    existing: int,
    coverage: list[CoverageRow],
    narrowed: bool,
) -> list[GuardFinding]:
    """Every reason apply refuses without --force: the change share against
    the `existing` managed objects, and each routing requirement (one a
    narrowed read could not count for the whole instance is unchecked)."""
    share = change_share_guard(changes, existing, settings)
    guards = ([share] if share else []) + coverage_guard(coverage)
    return guards + unchecked_coverage_guard(coverage) if narrowed else guards
