"""Read live state from Connect with the fewest calls, concurrently.

- attributes: SearchPredefinedAttributes returns values too (100 a page), so
  there is no Describe per attribute;
- users: ListUsers (1,000 a page) maps usernames to ids; narrowed to a few
  users, SearchUsers by username instead;
- groups: ListRoutingProfiles / ListUserHierarchyGroups only when a selector
  names one, then one SearchUsers per selector (the service filters);
- proficiencies: ListUserProficiencies once per managed user.

Calls to different APIs overlap; each API is paced by the shared QuotaPacer.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from reconciler.connect.pacer import QuotaPacer
from reconciler.coverage import AllOf, AnyOf, Expression
from reconciler.manifest.models import GroupMatch
from reconciler.state import Attribute, Proficiencies, RoutingState, UserState

log = logging.getLogger(__name__)

# Usernames per SearchUsers call when narrowing (--user); one OrConditions each.
USERNAMES_PER_SEARCH = 20
# The tag `settings.owner` puts on every user it manages (DESIGN §4).
OWNER_TAG = "connect-reconciler:owner"
Progress = Callable[[str, int, int], None]  # (what, done, total), for progress bars


@dataclass
class ReadScope:
    """What to read, from the manifests and any --user/--attribute narrowing."""

    declared_users: set[str]
    all_users: bool = False
    groups: list[GroupMatch] = field(default_factory=list)
    only_users: set[str] | None = None
    only_attributes: set[str] | None = None
    owners: bool = False  # read users' owner tags (SearchUsers returns Tags; ListUsers not)


@dataclass
class LiveState:
    """What Connect holds: attributes, and the managed users' proficiencies."""

    state: RoutingState
    managed: set[str]
    group_members: list[set[str]]
    missing_users: list[str]
    errors: list[str] = field(default_factory=list)
    # managed users' ARNs and OWNER_TAG values (when the scope asked for owners)
    arns: dict[str, str] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)


class LiveStateReader:
    """Reads a Connect instance through a QuotaPacer."""

    def __init__(
        self,
        pacer: QuotaPacer,
        instance_id: str,
        workers: int = 16,
        progress: Progress | None = None,
    ) -> None:
        self.pacer = pacer
        self.instance_id = instance_id
        self.workers = workers
        self.progress = progress or (lambda what, done, total: None)

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """One paced call on this instance."""
        return self.pacer.call(operation, InstanceId=self.instance_id, **params)

    def pages(self, operation: str, key: str, **params: Any) -> list[Any]:
        """Every item under `key` of a paginated call on this instance."""
        return self.pacer.pages(operation, key, InstanceId=self.instance_id, **params)

    def read(self, scope: ReadScope) -> LiveState:
        """Read everything `scope` needs."""
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="read") as pool:
            attributes = pool.submit(self.attributes, scope.only_attributes)
            users = pool.submit(self._users, scope)
            names = pool.submit(self._selector_names, scope.groups)
            errors: list[str] = []
            profile_ids, group_ids = names.result()
            member_futures = [
                pool.submit(
                    self._group_members, selector, profile_ids, group_ids, scope.only_users, errors
                )
                for selector in scope.groups
            ]
            listed = users.result()
            user_ids = {name: record["Id"] for name, record in listed.items()}
            members = [
                _members(selector, future.result(), user_ids)
                for selector, future in zip(scope.groups, member_futures, strict=True)
            ]
            for matched in members:
                user_ids.update(matched)
            wanted = set(user_ids) if scope.all_users else set(scope.declared_users)
            for matched in members:
                wanted |= set(matched)
            if scope.only_users is not None:
                wanted &= scope.only_users
            missing = sorted(u for u in wanted if u not in user_ids)
            managed = wanted - set(missing)
            ordered = sorted(managed)
            held = self.proficiencies_of([user_ids[u] for u in ordered])
            users_state = {
                username: UserState(username, proficiencies, user_id=user_ids[username])
                for username, proficiencies in zip(ordered, held, strict=True)
            }
            return LiveState(
                RoutingState(attributes.result(), users_state),
                managed,
                [set(m) for m in members],
                missing,
                errors,
                arns={u: listed[u]["Arn"] for u in ordered if u in listed and "Arn" in listed[u]},
                owners={
                    u: listed[u]["Tags"][OWNER_TAG]
                    for u in ordered
                    if OWNER_TAG in (listed.get(u, {}).get("Tags") or {})
                },
            )

    def attributes(self, names: set[str] | None = None) -> dict[str, Attribute]:
        """Predefined attributes with their values (all, or just `names`)."""
        criteria = {}
        if names:
            criteria = {
                "SearchCriteria": {"OrConditions": [_string_is("name", n) for n in sorted(names)]}
            }
        found = self.pages(
            "SearchPredefinedAttributes", "PredefinedAttributes", MaxResults=100, **criteria
        )
        return {record["Name"]: attribute_of(record) for record in found}

    def proficiencies(self, user_id: str) -> Proficiencies:
        """One user's proficiencies (one call: the cap is far below a page)."""
        listed = self.pages(
            "ListUserProficiencies", "UserProficiencyList", UserId=user_id, MaxResults=100
        )
        return {(p["AttributeName"], p["AttributeValue"]): float(p["Level"]) for p in listed}

    def proficiencies_of(self, user_ids: list[str]) -> list[Proficiencies]:
        """Several users' proficiencies, read concurrently (one call each),
        reporting progress; in the order of `user_ids`."""
        with ThreadPoolExecutor(
            max_workers=self.workers, thread_name_prefix="proficiencies"
        ) as pool:
            futures = [pool.submit(self.proficiencies, user_id) for user_id in user_ids]
            results = []
            for done, future in enumerate(futures, start=1):
                results.append(future.result())
                self.progress("Reading proficiencies", done, len(futures))
            return results

    def holders(self, attribute: str, values: Iterable[str] | None) -> set[str]:
        """Usernames holding `attribute` (any of `values`, or any value)."""
        return self.search_users(_holder_criteria(attribute, values))

    def search_users(self, criteria: dict[str, Any]) -> set[str]:
        """Usernames SearchUsers returns for `criteria`."""
        found = self.pages("SearchUsers", "Users", MaxResults=500, SearchCriteria=criteria)
        return {u["Username"] for u in found}

    def contacts(self, start: float, end: float, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` contacts initiated in [start, end], newest first, as
        DescribeContact returns them (SearchContacts pages, then one
        DescribeContact each, concurrently: the two APIs have their own quotas)."""
        window = {"Type": "INITIATION_TIMESTAMP", "StartTime": start, "EndTime": end}
        ids: list[str] = []
        token = None
        while len(ids) < limit:
            page = self.call(
                "SearchContacts",
                TimeRange=window,
                MaxResults=100,
                **({"NextToken": token} if token else {}),
            )
            ids += [c["Id"] for c in page.get("Contacts", [])]
            token = page.get("NextToken")
            if not token:
                break
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="contacts") as pool:
            found = pool.map(
                lambda i: self.call("DescribeContact", ContactId=i)["Contact"], ids[:limit]
            )
            return list(found)

    def _users(self, scope: ReadScope) -> dict[str, dict[str, Any]]:
        """Users by username as ListUsers or SearchUsers returns them (Id,
        Arn; SearchUsers also Tags, so owners cost no call per user)."""
        if scope.only_users is None:
            if scope.owners:
                found = self.pages("SearchUsers", "Users", MaxResults=500)
            else:
                found = self.pages("ListUsers", "UserSummaryList", MaxResults=1000)
            return {u["Username"]: u for u in found}
        users: dict[str, dict[str, Any]] = {}
        names = sorted(scope.only_users)
        for start in range(0, len(names), USERNAMES_PER_SEARCH):
            criteria = {
                "OrConditions": [
                    _username_is(n) for n in names[start : start + USERNAMES_PER_SEARCH]
                ]
            }
            for user in self.pages("SearchUsers", "Users", MaxResults=500, SearchCriteria=criteria):
                users[user["Username"]] = user
        return users

    def _selector_names(self, groups: list[GroupMatch]) -> tuple[dict[str, str], dict[str, str]]:
        profiles: dict[str, str] = {}
        hierarchy: dict[str, str] = {}
        if any(g.routing_profile for g in groups):
            listed = self.pages("ListRoutingProfiles", "RoutingProfileSummaryList", MaxResults=100)
            profiles = {p["Name"]: p["Id"] for p in listed}
        if any(g.hierarchy_group for g in groups):
            listed = self.pages(
                "ListUserHierarchyGroups", "UserHierarchyGroupSummaryList", MaxResults=100
            )
            hierarchy = {g["Name"]: g["Id"] for g in listed}
        return profiles, hierarchy

    def _group_members(
        self,
        selector: GroupMatch,
        profile_ids: dict[str, str],
        group_ids: dict[str, str],
        only_users: set[str] | None,
        errors: list[str],
    ) -> dict[str, str]:
        """Users a selector matches on the server side (username globs are
        applied by the caller against the user list)."""
        conditions = []
        if selector.routing_profile is not None:
            if selector.routing_profile not in profile_ids:
                errors.append(
                    f"group selector: routing profile {selector.routing_profile!r} does not exist"
                )
                return {}
            profile_id = profile_ids[selector.routing_profile]
            conditions.append(_string_is("RoutingProfileId", profile_id))
        if selector.hierarchy_group is not None:
            if selector.hierarchy_group not in group_ids:
                errors.append(
                    f"group selector: hierarchy group {selector.hierarchy_group!r} does not exist"
                )
                return {}
            # A user in "Dublin" under "EMEA" is in EMEA: match child groups too.
            group = {
                "Value": group_ids[selector.hierarchy_group],
                "HierarchyGroupMatchType": "WITH_CHILD_GROUPS",
            }
            conditions.append({"HierarchyGroupCondition": group})
        if not conditions:
            return {}
        if only_users is not None:
            conditions.append({"OrConditions": [_username_is(n) for n in sorted(only_users)]})
        criteria = conditions[0] if len(conditions) == 1 else {"AndConditions": conditions}
        found = self.pages("SearchUsers", "Users", MaxResults=500, SearchCriteria=criteria)
        return {u["Username"]: u["Id"] for u in found}


def _members(
    selector: GroupMatch, server_matched: dict[str, str], user_ids: dict[str, str]
) -> dict[str, str]:
    """The selector's users: the server's matches (or every listed user when
    it names no profile or group), filtered by its username glob."""
    server_side = selector.routing_profile is not None or selector.hierarchy_group is not None
    candidates = server_matched if server_side else user_ids
    if selector.username is None:
        return dict(candidates)
    return {u: i for u, i in candidates.items() if fnmatch.fnmatchcase(u, selector.username)}


def _string_is(field: str, value: str) -> dict[str, Any]:
    return {"StringCondition": {"FieldName": field, "Value": value, "ComparisonType": "EXACT"}}


def _username_is(username: str) -> dict[str, Any]:
    return _string_is("Username", username)


def proficiency_condition(
    attribute: str, value: str | None = None, low: int | None = None, high: int | None = None
) -> dict[str, Any]:
    """SearchUsers' ListCondition for one proficiency. API_ListCondition says
    its conditions are ANDed on one list item but not what the fields are
    called; these are UserProficiency's member names, and this is the one
    place that spells them."""
    conditions = [_string_is("AttributeName", attribute)]
    if value is not None:
        conditions.append(_string_is("AttributeValue", value))
    if high is not None:
        number = {
            "FieldName": "Level",
            "ComparisonType": "RANGE",
            "MinValue": low or 1,
            "MaxValue": high,
        }
        conditions.append({"NumberCondition": number})
    elif low is not None:
        number = {"FieldName": "Level", "ComparisonType": "GREATER_OR_EQUAL", "MinValue": low}
        conditions.append({"NumberCondition": number})
    return {"ListCondition": {"TargetListType": "PROFICIENCIES", "Conditions": conditions}}


def _holder_criteria(attribute: str, values: Iterable[str] | None) -> dict[str, Any]:
    if values is None:
        return proficiency_condition(attribute)
    return {"OrConditions": [proficiency_condition(attribute, v) for v in sorted(values)]}


def search_criteria(expression: Expression) -> dict[str, Any] | None:
    """A routing expression as a SearchUsers criteria, so the service counts
    users we do not read; None when it cannot be asked (NOT, agent lists,
    fractional levels)."""
    if isinstance(expression, AllOf | AnyOf):
        parts = [search_criteria(e) for e in expression.items]
        if any(p is None for p in parts):
            return None
        return {"AndConditions" if isinstance(expression, AllOf) else "OrConditions": parts}
    if expression.negated or expression.agent_ids is not None or expression.name is None:
        return None
    levels = (expression.min_level, expression.max_level)
    if any(level is not None and not float(level).is_integer() for level in levels):
        return None
    low, high = (None if level is None else int(level) for level in levels)
    return proficiency_condition(expression.name, expression.value, low, high)


def attribute_of(record: dict[str, Any]) -> Attribute:
    """An Attribute from the API's PredefinedAttribute shape."""
    configuration = record.get("AttributeConfiguration") or {}
    return Attribute(
        record["Name"],
        tuple((record.get("Values") or {}).get("StringList", [])),
        tuple(record.get("Purposes") or ()),
        bool(configuration.get("EnableValueValidationOnAssociation", False)),
    )
