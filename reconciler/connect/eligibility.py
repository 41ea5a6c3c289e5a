"""How many agents of the whole instance meet a routing expression, as the
service counts them (what a plan needs for users it does not read)."""

from __future__ import annotations

import random
from dataclasses import replace

from botocore.exceptions import ClientError

from reconciler.connect.criteria import Criteria, search_criteria, username_is
from reconciler.connect.reader import LiveStateReader
from reconciler.quoting import names
from reconciler.routing.coverage import Requirement
from reconciler.routing.eligibility import satisfies
from reconciler.routing.expression import AllOf, AnyOf, Expression
from reconciler.service.limits import MAX_OR_CONDITIONS, searchable
from reconciler.state import RoutingState


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


def count_check(
    reader: LiveStateReader, requirements: list[Requirement], state: RoutingState, seed: int = 0
) -> tuple[int, list[str]]:
    """(requirements checked, a line for each one the service counts
    otherwise than the known proficiencies of a sample of `state`'s users).

    The service's counts stand in for every user a plan does not read, so
    they are asked once more about users whose state is known: a sample
    (users with two or more proficiencies first: they tell whether a
    ListCondition is met by one proficiency), small enough for one OR list."""
    rich = sorted(u for u, user in state.users.items() if len(user.proficiencies) > 1)
    rest = sorted(u for u, user in state.users.items() if len(user.proficiencies) == 1)
    shuffle = random.Random(seed).sample
    sample = (shuffle(rich, len(rich)) + shuffle(rest, len(rest)))[:MAX_OR_CONDITIONS]
    checked, wrong = 0, []
    for requirement in requirements:
        criteria = search_criteria(requirement.expression)
        if criteria is None or not sample or not all(searchable(u) for u in sample):
            continue
        known = {
            u
            for u in sample
            if satisfies(
                requirement.expression, state.users[u].proficiencies, state.users[u].user_id
            )
        }

        def within(usernames: Criteria, criteria: Criteria = criteria) -> Criteria:
            return {"AndConditions": [criteria, usernames]}

        counted = {
            user["Username"]
            for user in reader.search_any([username_is(u) for u in sample], around=within)
        }
        checked += 1
        if counted != known:
            wrong.append(
                f"{requirement.name}: SearchUsers finds {len(counted)} of {len(sample)} users "
                f"whose proficiencies are known, {len(known)} meet it "
                f"(too many: {names(counted - known) or 'none'}; missing: "
                f"{names(known - counted) or 'none'})"
            )
    return checked, wrong
