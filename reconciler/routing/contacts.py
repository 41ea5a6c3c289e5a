"""The routing steps recent contacts waited in, grouped to be counted like requirements."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.routing.coverage import Requirement
from reconciler.routing.expression import (
    Expression,
    ExpressionError,
    as_mapping,
    parse_structured,
    to_text,
)


@dataclass
class ContactSteps:
    """The distinct routing steps of some contacts, as requirements to count."""

    contacts: int = 0
    without_criteria: int = 0  # contacts from before routing criteria existed
    unreadable: int = 0  # steps whose expression this version cannot read
    steps: dict[str, tuple[Expression, int]] = field(
        default_factory=dict
    )  # text -> (expression, contacts)

    def requirements(self) -> list[Requirement]:
        """One requirement per distinct step: it needs at least one agent."""
        return [Requirement(text, expression, 1) for text, (expression, _) in self.steps.items()]


def contact_steps(
    contacts: Iterable[dict[str, Any]], agent_names: Mapping[str, str] | None = None
) -> ContactSteps:
    """Group identical steps of the contacts' RoutingCriteria (agents shown
    by username, from `agent_names`: id -> username)."""
    found = ContactSteps()
    for contact in contacts:
        found.contacts += 1
        steps = (contact.get("RoutingCriteria") or {}).get("Steps")
        if not steps:
            found.without_criteria += 1
            continue
        seen_here: set[str] = set()
        for step in steps:
            try:
                expression = parse_structured(as_mapping(step, "step").get("Expression"), "step")
            except ExpressionError:
                found.unreadable += 1
                continue
            text = to_text(expression, agent_names=agent_names)
            if text not in seen_here:
                seen_here.add(text)
                count = found.steps.get(text, (expression, 0))[1]
                found.steps[text] = (expression, count + 1)
    return found
