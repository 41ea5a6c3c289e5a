"""SearchUsers for the emulator: criteria validation and a search index.

The index keeps users by username and by (attribute, value) with each
holder's level, so a search touches only the users it can match and stays
fast at 50,000 users. Like the service's, it may trail writes: with a
`delay`, a write becomes searchable `delay` seconds (of the backend's clock)
after it is made. How quickly Connect's search reflects writes is not
documented; the default here is immediately, and a delay is a setting for
tests that need a lagging search.

Field names are exactly the documented ones (see the links below); anything
else is refused before any user is looked at, never silently ignored.
"""

from __future__ import annotations

import heapq
import itertools
import json
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from reconciler.emulator.behaviour import SHORT_VALUE, Behaviour

Record = dict[str, Any]

# UserSearchCriteria.StringCondition: "The currently supported values for
# FieldName are Username, FirstName, LastName, RoutingProfileId,
# SecurityProfileId, resourceId."
# https://docs.aws.amazon.com/connect/latest/APIReference/API_UserSearchCriteria.html
USER_STRING_FIELDS = (
    "Username",
    "FirstName",
    "LastName",
    "RoutingProfileId",
    "SecurityProfileId",
    "resourceId",
)
# Condition.StringCondition: "The currently supported values for FieldName are
# name and value."  https://docs.aws.amazon.com/connect/latest/APIReference/API_Condition.html
PROFICIENCY_STRING_FIELDS = ("name", "value")
# NumberCondition: "The currently supported value for FieldName is limit."
# https://docs.aws.amazon.com/connect/latest/APIReference/API_NumberCondition.html
PROFICIENCY_NUMBER_FIELD = "limit"
# Which of MinValue/MaxValue each NumberComparisonType needs. The reference
# lists the types but not their bounds; this is the strict reading: each type
# needs the bound(s) its name implies; what EQUAL/NOT_EQUAL read is the
# behaviour `number-equal` (by default one bound, MinValue or MaxValue, or
# both only when equal).
_NUMBER_BOUNDS = {
    "GREATER_OR_EQUAL": ("MinValue",),
    "GREATER": ("MinValue",),
    "LESSER_OR_EQUAL": ("MaxValue",),
    "LESSER": ("MaxValue",),
    "RANGE": ("MinValue", "MaxValue"),
    "EQUAL": (),
    "NOT_EQUAL": (),
}
# Results of recent searches, so that paging through one costs a slice.
_CACHED_SEARCHES = 64


_LEVELS = {float(level): float(level) for level in range(1, 6)}


def shared_level(level: float) -> float:
    """`level` as a float, the same object for every user at a valid level."""
    level = float(level)
    return _LEVELS.get(level, level)


def string_matches(condition: Record, actual: str, behaviour: Behaviour) -> bool:
    """A StringCondition's comparison: ignoring case or not, and what a value
    shorter than 2 characters does (behaviours `string-case`, `short-values`)."""
    wanted = str(condition.get("Value", ""))
    if len(wanted) < SHORT_VALUE and behaviour.short_values == "unmatched":
        return False
    if behaviour.string_case == "insensitive":
        wanted, actual = wanted.casefold(), actual.casefold()
    kind = condition.get("ComparisonType", "EXACT")
    if kind == "STARTS_WITH":
        return actual.startswith(wanted)
    if kind == "CONTAINS":
        return wanted in actual
    return actual == wanted


def criteria_problem(
    criteria: Record, behaviour: Behaviour, where: str = "SearchCriteria"
) -> str | None:
    """Why SearchUsers' `criteria` cannot be answered exactly, or None: any
    field name or member this emulator does not implement is refused, and
    what the behaviours refuse (`max-or-conditions`, `short-values`, the
    bounds `number-equal` needs)."""
    problem = or_conditions_problem(criteria, behaviour, where)
    if problem:
        return problem
    for key in ("OrConditions", "AndConditions"):
        for index, child in enumerate(criteria.get(key) or []):
            problem = criteria_problem(child, behaviour, f"{where}.{key}[{index}]")
            if problem:
                return problem
    string = criteria.get("StringCondition")
    if string is not None:
        problem = string_condition_problem(
            string, USER_STRING_FIELDS, f"{where}.StringCondition", behaviour
        )
        if problem:
            return problem
    group = criteria.get("HierarchyGroupCondition")
    if group is not None and (
        group.get("Value") is None or group.get("HierarchyGroupMatchType") is None
    ):
        return f"{where}.HierarchyGroupCondition needs Value and HierarchyGroupMatchType."
    listed = criteria.get("ListCondition")
    if listed is not None:
        return _list_condition_problem(listed, f"{where}.ListCondition", behaviour)
    return None


def or_conditions_problem(criteria: Record, behaviour: Behaviour, where: str) -> str | None:
    """An OrConditions list longer than `max-or-conditions` allows."""
    listed = criteria.get("OrConditions") or []
    limit = behaviour.max_or_conditions
    if limit is not None and len(listed) > limit:
        return f"{where}.OrConditions has {len(listed)} conditions; at most {limit} are allowed."
    return None


def string_condition_problem(
    condition: Record, known: tuple[str, ...], where: str, behaviour: Behaviour
) -> str | None:
    if condition.get("FieldName") not in known:
        return (
            f"{where}.FieldName {condition.get('FieldName')!r} is not supported; "
            f"the supported values are {', '.join(known)}."
        )
    if condition.get("Value") is None or condition.get("ComparisonType") is None:
        return f"{where} needs Value and ComparisonType."
    if len(str(condition["Value"])) < SHORT_VALUE and behaviour.short_values == "refused":
        return f"{where}.Value must have at least {SHORT_VALUE} characters."
    return None


# The bounds an EQUAL or NOT_EQUAL needs under each `number-equal` answer.
_EQUAL_BOUNDS = {
    "min-value": ("MinValue",),
    "max-value": ("MaxValue",),
    "both-bounds": ("MinValue", "MaxValue"),
}


def _list_condition_problem(condition: Record, where: str, behaviour: Behaviour) -> str | None:
    if condition.get("TargetListType") != "PROFICIENCIES" or not condition.get("Conditions"):
        return f"{where} needs TargetListType PROFICIENCIES and at least one Condition."
    for index, item in enumerate(condition["Conditions"]):
        at = f"{where}.Conditions[{index}]"
        string, number = item.get("StringCondition"), item.get("NumberCondition")
        if (string is None) == (number is None):
            return f"{at} needs exactly one of StringCondition and NumberCondition."
        if string is not None:
            problem = string_condition_problem(string, PROFICIENCY_STRING_FIELDS, at, behaviour)
            if problem:
                return problem
            continue
        if number.get("FieldName") != PROFICIENCY_NUMBER_FIELD:
            return (
                f"{at}.NumberCondition.FieldName {number.get('FieldName')!r} is not supported; "
                f"the supported value is {PROFICIENCY_NUMBER_FIELD}."
            )
        kind = number.get("ComparisonType")
        if kind not in _NUMBER_BOUNDS:
            return f"{at}.NumberCondition needs a ComparisonType."
        needed = _NUMBER_BOUNDS[kind]
        if kind in ("EQUAL", "NOT_EQUAL"):
            needed = _EQUAL_BOUNDS.get(behaviour.number_equal, ())
        missing = [bound for bound in needed if number.get(bound) is None]
        low, high = number.get("MinValue"), number.get("MaxValue")
        if (
            kind in ("EQUAL", "NOT_EQUAL")
            and behaviour.number_equal == "either-bound"
            and ((low is None and high is None) or (None not in (low, high) and low != high))
        ):
            missing = ["MinValue or MaxValue (one value)"]
        if missing:
            return f"{at}.NumberCondition {kind} needs {' and '.join(missing)}."
    return None


def level_matches(level: float, number: Record, behaviour: Behaviour) -> bool:
    """A level meets a validated NumberCondition (EQUAL as `number-equal` reads it)."""
    kind = number["ComparisonType"]
    if kind == "GREATER_OR_EQUAL":
        return bool(level >= number["MinValue"])
    if kind == "GREATER":
        return bool(level > number["MinValue"])
    if kind == "LESSER_OR_EQUAL":
        return bool(level <= number["MaxValue"])
    if kind == "LESSER":
        return bool(level < number["MaxValue"])
    if kind == "RANGE":
        return bool(number["MinValue"] <= level <= number["MaxValue"])
    mode = behaviour.number_equal
    if mode == "both-bounds":
        equal = bool(number["MinValue"] <= level <= number["MaxValue"])
    else:
        low = number.get("MinValue")
        bound = number["MaxValue"] if mode == "max-value" or low is None else low
        equal = bool(level == bound)
    return equal if kind == "EQUAL" else not equal


def user_fields(user: Record, field: str) -> list[str]:
    """The values a user StringCondition on `field` compares with (a user
    has several security profiles; the condition holds for any of them)."""
    if field == "SecurityProfileId":
        return list(user.get("SecurityProfileIds") or [])
    if field in ("FirstName", "LastName"):
        value = (user.get("IdentityInfo") or {}).get(field)
    else:
        value = user.get("Id" if field == "resourceId" else field)
    return [] if value is None else [value]


@dataclass
class _Entry:
    """A user as the index saw it: its JSON as SearchUsers returns it and
    its proficiency levels, both at indexing time, and the record string
    conditions match. That record is the backend's own, not a copy: the
    fields conditions read (names, profiles, group) no write here changes."""

    user: Record
    json: str
    levels: dict[tuple[str, str], float]  # (casefolded attribute, value) -> level


class UserSearchIndex:
    """Users by username and by (attribute, value), for SearchUsers.

    Users are known inside by their rank, the order they were first indexed
    in: sets of ranks sort as plain integers into the results' order, which
    is what keeps a search of a thousand holders cheap at 50,000 users."""

    def __init__(
        self,
        clock: Callable[[], float],
        in_group: Callable[[Record, Record], bool],
        encode: Callable[[Record], str],
        delay: float = 0.0,
        behaviour: Behaviour | None = None,
    ) -> None:
        self.clock = clock
        self.delay = delay
        self.behaviour = behaviour or Behaviour()
        self._in_group = in_group
        self._encode = encode  # a user record -> its SearchUsers item JSON
        self._rank: dict[str, int] = {}  # user id -> rank
        self._json_at: list[str] = []  # rank -> the entry's JSON (a list: fast to gather)
        self._entries: dict[int, _Entry] = {}  # rank -> entry
        self._by_username: dict[str, set[int]] = {}  # casefolded username -> ranks
        # (casefolded attribute, value) -> level -> holders' ranks
        self._holders: dict[tuple[str, str], dict[float, set[int]]] = {}
        self._values: dict[str, set[str]] = {}  # casefolded attribute -> values held
        self._names: dict[str, str] = {}  # casefolded attribute -> its name as stored
        self._keys: dict[tuple[str, str], tuple[str, str]] = {}
        # (due, write number, user id, entry): a heap, since delays differ per write
        self._pending: list[tuple[float, int, str, _Entry | None]] = []
        self._writes = itertools.count()
        self._applied: dict[str, int] = {}  # user id -> the write number indexed
        self._results: dict[str, list[int]] = {}  # criteria -> matching users' ranks

    def put(
        self, user_id: str, record: Record | None, *, now: bool = False, delay: float = 0.0
    ) -> None:
        """Index `record` ({"User", "Proficiencies"}, None once deleted) as it
        is at this moment; searchable after the index's delay, or `delay`
        if longer (a lagging write), unless `now`."""
        seen = None
        if record is not None:
            levels = {}
            for p in record["Proficiencies"]:
                key = (p["AttributeName"].casefold(), p["AttributeValue"])
                self._names.setdefault(key[0], p["AttributeName"])
                # one key object per (attribute, value), not one per holder
                levels[self._keys.setdefault(key, key)] = shared_level(p["Level"])
            seen = _Entry(record["User"], self._encode(record["User"]), levels)
        number = next(self._writes)
        wait = max(self.delay, delay)
        if now or wait <= 0:
            self._apply(user_id, seen, number)
        else:
            heapq.heappush(self._pending, (self.clock() + wait, number, user_id, seen))

    def _apply(self, user_id: str, seen: _Entry | None, number: int) -> None:
        if self._applied.get(user_id, -1) > number:
            return  # a later write of this user is indexed already
        self._applied[user_id] = number
        self._results.clear()
        rank = self._rank.get(user_id)
        old = None if rank is None else self._entries.pop(rank)
        if old is not None:
            self._by_username[old.user["Username"].casefold()].discard(rank)
            for key, level in old.levels.items():
                by_level = self._holders[key]
                by_level[level].discard(rank)
                if not by_level[level]:
                    del by_level[level]
                if not by_level:
                    del self._holders[key]
                    self._values[key[0]].discard(key[1])
        if seen is None:
            self._rank.pop(user_id, None)
            return
        if rank is None:
            rank = self._rank[user_id] = len(self._json_at)
            self._json_at.append(seen.json)
        else:
            self._json_at[rank] = seen.json
        self._entries[rank] = seen
        self._by_username.setdefault(seen.user["Username"].casefold(), set()).add(rank)
        for key, level in seen.levels.items():
            self._holders.setdefault(key, {}).setdefault(level, set()).add(rank)
            self._values.setdefault(key[0], set()).add(key[1])

    def search(self, criteria: Record) -> list[int]:
        """The ranks of the users matching validated `criteria`, in order
        (kept for the next pages until the index changes; see `texts`)."""
        while self._pending and self._pending[0][0] <= self.clock():
            _, number, user_id, seen = heapq.heappop(self._pending)
            self._apply(user_id, seen, number)
        key = json.dumps(criteria, sort_keys=True)
        found = self._results.get(key)
        if found is None:
            ranks = self._ranks(criteria)
            found = sorted(self._entries if ranks is None else ranks)
            if len(self._results) >= _CACHED_SEARCHES:
                self._results.clear()
            self._results[key] = found
        return found

    def texts(self, ranks: list[int]) -> list[str]:
        """The JSON SearchUsers returns for these ranks (from `search`, with
        no write since), in one C call: at 50,000 users a Python call per
        item was a quarter of a new search's time."""
        if len(ranks) < 2:  # itemgetter of one key returns the item, not a tuple
            return [self._json_at[rank] for rank in ranks]
        return list(operator.itemgetter(*ranks)(self._json_at))

    def _ranks(self, criteria: Record) -> set[int] | None:
        """Ranks of the users matching `criteria`; None for every user (no condition)."""
        parts: list[set[int]] = []
        if criteria.get("OrConditions"):
            alternatives = [self._ranks(c) for c in criteria["OrConditions"]]
            known = [a for a in alternatives if a is not None]
            if len(known) == len(alternatives):
                parts.append(set().union(*known))
        for condition in criteria.get("AndConditions") or []:
            found = self._ranks(condition)
            if found is not None:
                parts.append(found)
        if "StringCondition" in criteria:
            parts.append(self._string_ranks(criteria["StringCondition"]))
        if "HierarchyGroupCondition" in criteria:
            condition = criteria["HierarchyGroupCondition"]
            parts.append({r for r, e in self._entries.items() if self._in_group(e.user, condition)})
        if "ListCondition" in criteria:
            parts.append(self._proficiency_ranks(criteria["ListCondition"]["Conditions"]))
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else set.intersection(*parts)  # each part is new

    def _string_ranks(self, condition: Record) -> set[int]:
        field = condition["FieldName"]
        behaviour = self.behaviour
        if field == "Username" and condition["ComparisonType"] == "EXACT":
            candidates = self._by_username.get(str(condition["Value"]).casefold(), ())
            return {
                rank
                for rank in candidates
                if string_matches(condition, self._entries[rank].user["Username"], behaviour)
            }
        return {
            rank
            for rank, entry in self._entries.items()
            if any(string_matches(condition, v, behaviour) for v in user_fields(entry.user, field))
        }

    def _proficiency_ranks(self, conditions: list[Record]) -> set[int]:
        """Users with one proficiency meeting every condition ("applied
        together with an AND condition", API_ListCondition), or, under
        `list-condition=any-proficiency`, with each condition met by some
        proficiency of theirs."""
        if self.behaviour.list_condition == "any-proficiency" and len(conditions) > 1:
            each = [self._proficiency_ranks([condition]) for condition in conditions]
            return set.intersection(*each)
        behaviour = self.behaviour
        strings = [c["StringCondition"] for c in conditions if "StringCondition" in c]
        numbers = [c["NumberCondition"] for c in conditions if "NumberCondition" in c]
        names = [s for s in strings if s["FieldName"] == "name"]
        values = [s for s in strings if s["FieldName"] == "value"]
        exact = [s for s in names if s["ComparisonType"] == "EXACT"]
        attributes: Iterable[str] = (
            [str(exact[0]["Value"]).casefold()] if exact else list(self._values)
        )
        found: set[int] = set()
        for attribute in attributes:
            name = self._names.get(attribute, attribute)
            if not all(string_matches(s, name, behaviour) for s in names):
                continue
            for value in self._values.get(attribute, ()):
                if not all(string_matches(s, value, behaviour) for s in values):
                    continue
                for level, ranks in self._holders[(attribute, value)].items():
                    if all(level_matches(level, n, behaviour) for n in numbers):
                        found |= ranks
        return found
