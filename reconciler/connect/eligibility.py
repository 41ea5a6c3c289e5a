"""How many agents of the whole instance meet a routing expression, as the
service counts them (what a plan needs for users it does not read)."""

from __future__ import annotations

from dataclasses import replace

from botocore.exceptions import ClientError

from reconciler.connect.criteria import search_criteria
from reconciler.connect.reader import LiveStateReader
from reconciler.routing.expression import AllOf, AnyOf, Expression


class InstanceEligibility:
    """Which users of the whole instance satisfy an expression, asked of the
    service: one SearchUsers for an expression it can search; otherwise
    set algebra over searches of each condition (NOT and agent lists
    against the instance's user list, read once). None when a condition
    cannot be searched at all (a fractional level, a name or value too short
    to search)."""

    def __init__(self, reader: LiveStateReader) -> None:
        self.reader = reader

    def eligible(self, expression: Expression) -> set[str] | None:
        """Usernames of the whole instance that satisfy `expression`, or None."""
        criteria = search_criteria(expression)
        if criteria is not None:
            try:
                return self.reader.search_users(criteria)
            except ClientError as error:
                # Refused whole (an OR list too long for this service?): ask by parts.
                refused = error.response.get("Error", {}).get("Code") == "InvalidParameterException"
                if not (refused and isinstance(expression, AllOf | AnyOf)):
                    raise
        if isinstance(expression, AllOf | AnyOf):
            parts = [self.eligible(e) for e in expression.items]
            if any(p is None for p in parts):
                return None
            sets = [p for p in parts if p is not None]
            if isinstance(expression, AllOf):
                return set.intersection(*sets)
            return set.union(*sets)
        if expression.agent_ids is not None:
            listed = set(expression.agent_ids)
            matched = {u for i, u in self.reader.usernames_by_id().items() if i in listed}
        else:
            positive = search_criteria(replace(expression, negated=False))
            if positive is None:
                return None
            matched = self.reader.search_users(positive)
        if expression.negated:
            return set(self.reader.usernames_by_id().values()) - matched
        return matched
