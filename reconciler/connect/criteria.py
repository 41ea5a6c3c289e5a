"""SearchUsers' criteria, spelled once: usernames, holders of a proficiency,
and a routing expression as a query the service can answer."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from reconciler.routing.expression import AllOf, AnyOf, Expression
from reconciler.service.limits import MAX_LEVEL, MAX_OR_CONDITIONS, MIN_LEVEL, searchable

Criteria = dict[str, Any]


# The undocumented search semantics the search reads and counts rest on, by
# the names docs/emulator-fidelity.md and `connect-reconciler doctor` give
# them: what a disagreement between SearchUsers and the list read points to.
SEARCH_SEMANTICS = (
    "consistency-lag (the search index trails writes), list-condition (a ListCondition "
    "met across a user's proficiencies), number-equal (which bound an EQUAL reads), "
    "string-case (values matched ignoring case or not), short-values (values under 2 "
    "characters); `connect-reconciler doctor` tells which this service answers"
)


def string_is(field: str, value: str) -> Criteria:
    return {"StringCondition": {"FieldName": field, "Value": value, "ComparisonType": "EXACT"}}


def username_is(username: str) -> Criteria:
    return string_is("Username", username)


def proficiency_condition(
    attribute: str,
    value: str | None = None,
    low: int | None = None,
    high: int | None = None,
    equal: int | None = None,
) -> Criteria:
    """SearchUsers' criteria for holders of one proficiency: of `attribute`
    (and `value`), at a level in [low, high] or `equal` to one. This is the one
    place that spells the field names, as the service model documents them:
    StringCondition `name`/`value` (API_Condition) and NumberCondition
    `limit` (API_NumberCondition):
    https://docs.aws.amazon.com/connect/latest/APIReference/API_Condition.html
    https://docs.aws.amazon.com/connect/latest/APIReference/API_NumberCondition.html
    API_ListCondition ANDs the conditions on one list item."""
    conditions = [string_is("name", attribute)]
    if value is not None:
        conditions.append(string_is("value", value))
    if equal is not None:
        # Both bounds, equal: right whichever bound EQUAL reads.
        conditions.append(_limit("EQUAL", MinValue=equal, MaxValue=equal))
    elif low is not None or high is not None:
        # A RANGE, even for "at least": which bound GREATER_OR_EQUAL reads is
        # undocumented; a range needs both (docs/emulator-fidelity.md).
        conditions.append(_limit("RANGE", MinValue=low or MIN_LEVEL, MaxValue=high or MAX_LEVEL))
    return _list_condition(conditions)


def _limit(comparison: str, **bounds: int) -> Criteria:
    return {"NumberCondition": {"FieldName": "limit", "ComparisonType": comparison, **bounds}}


def _list_condition(conditions: list[Criteria]) -> Criteria:
    return {"ListCondition": {"TargetListType": "PROFICIENCIES", "Conditions": conditions}}


def holder_alternatives(attribute: str, values: Iterable[str] | None) -> list[Criteria]:
    """Criteria of which any one finds a holder of `attribute` (of any of `values`)."""
    if values is None:
        return [proficiency_condition(attribute)]
    return [proficiency_condition(attribute, v) for v in sorted(values)]


def search_criteria(expression: Expression) -> Criteria | None:
    """A routing expression as a SearchUsers criteria, so the service counts
    users we do not read; None when it cannot be asked exactly (NOT, agent
    lists, fractional levels, a name or value too short to search, more
    alternatives than one OR list takes)."""
    if isinstance(expression, AllOf | AnyOf):
        parts = [search_criteria(e) for e in expression.items]
        if any(p is None for p in parts):
            return None
        if isinstance(expression, AnyOf) and len(parts) > MAX_OR_CONDITIONS:
            return None
        return {"AndConditions" if isinstance(expression, AllOf) else "OrConditions": parts}
    if expression.negated or expression.agent_ids is not None or expression.name is None:
        return None
    if not searchable(expression.name) or not searchable(expression.value or "--"):
        return None
    levels = (expression.min_level, expression.max_level)
    if any(level is not None and not float(level).is_integer() for level in levels):
        return None
    low, high = (None if level is None else int(level) for level in levels)
    return proficiency_condition(expression.name, expression.value, low, high)
