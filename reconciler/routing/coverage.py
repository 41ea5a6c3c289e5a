"""Routing requirements and how many agents meet each, now and after a plan."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from reconciler.routing.eligibility import eligible
from reconciler.routing.expression import Expression, to_text
from reconciler.state import RoutingState


@dataclass(frozen=True)
class Requirement:
    """A routing step that must keep at least `min_agents` eligible agents."""

    name: str
    expression: Expression
    min_agents: int


@dataclass(frozen=True)
class CoverageRow:
    """How many agents satisfy a requirement now and after the plan."""

    name: str
    expression: str
    min_agents: int
    now: int
    after: int
    counted: str  # "all users", or "managed users" when others could not be counted

    @property
    def lowered_below_minimum(self) -> bool:
        """The guard: the plan takes it below min_agents, or lowers it further."""
        return self.after < self.min_agents and self.after < self.now

    @property
    def met(self) -> bool:
        return self.after >= self.min_agents

    @property
    def cause(self) -> str | None:
        """Why it is unmet after the plan: `plan` (it was met, the plan takes
        it below), `worsened` (unmet already, the plan lowers it further) or
        `already unmet`; None when met."""
        if self.met:
            return None
        if self.now >= self.min_agents:
            return "plan"
        return "worsened" if self.after < self.now else "already unmet"

    @property
    def data(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "expression": self.expression,
            "min_agents": self.min_agents,
            "now": self.now,
            "after": self.after,
            "counted": self.counted,
        }


def coverage_rows(
    requirements: Iterable[Requirement],
    before: RoutingState,
    after: RoutingState,
    others: dict[str, set[str] | None],
) -> list[CoverageRow]:
    """Rows for each requirement. `before`/`after` hold the managed users;
    `others[name]` are unmanaged users known to satisfy it (the plan does not
    change them), or None when they could not be counted."""
    rows = []
    for requirement in requirements:
        extra = others.get(requirement.name)
        unmanaged = len(extra - before.users.keys()) if extra is not None else 0
        rows.append(
            CoverageRow(
                requirement.name,
                to_text(requirement.expression),
                requirement.min_agents,
                len(eligible(requirement.expression, before)) + unmanaged,
                len(eligible(requirement.expression, after)) + unmanaged,
                "all users" if extra is not None else "managed users",
            )
        )
    return rows
