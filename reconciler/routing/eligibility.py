"""Which agents satisfy an expression, over one side's state (live or desired)."""

from __future__ import annotations

from reconciler.routing.expression import AllOf, AnyOf, Expression
from reconciler.state import Proficiencies, RoutingState


def satisfies(
    expression: Expression, proficiencies: Proficiencies, user_id: str | None = None
) -> bool:
    """Whether an agent with these proficiencies meets the expression."""
    if isinstance(expression, AllOf):
        return all(satisfies(e, proficiencies, user_id) for e in expression.items)
    if isinstance(expression, AnyOf):
        return any(satisfies(e, proficiencies, user_id) for e in expression.items)
    if expression.agent_ids is not None:
        met = user_id in expression.agent_ids
    else:
        level = proficiencies.get((expression.name or "", expression.value or ""))
        met = (
            level is not None
            and (expression.min_level is None or level >= expression.min_level)
            and (expression.max_level is None or level <= expression.max_level)
        )
    return met != expression.negated


def eligible(expression: Expression, state: RoutingState) -> set[str]:
    """Usernames in `state` that satisfy the expression."""
    return {
        name
        for name, user in state.users.items()
        if satisfies(expression, user.proficiencies, user.user_id)
    }
