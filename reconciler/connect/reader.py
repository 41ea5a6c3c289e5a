"""Read live state from Connect with the fewest calls, concurrently.

- attributes: SearchPredefinedAttributes returns values too (100 a page), so
  there is no Describe per attribute;
- users: ListUsers (1,000 a page) maps usernames to ids; narrowed to a few
  users, SearchUsers by username instead; with `settings.owner`, SearchUsers
  (500 a page), whose results carry the owner tags;
- groups: ListRoutingProfiles / ListUserHierarchyGroups only when a selector
  names one, then one SearchUsers per selector (the service filters);
- proficiencies, one of two ways (DESIGN §3, "read strategies"):
  - list: ListUserProficiencies once per managed user;
  - search: for each attribute value, three SearchUsers (500 users a page)
    for the holders whose level has bit 0, 1 or 2 set, which together give
    every holder and their exact level, at about 3 x values x pages calls.
  `auto` estimates both in seconds at the quotas in force and takes the
  cheaper. The search index may trail writes, so what a search read plans
  is re-read with ListUserProficiencies before it is applied (plan.saved).

Calls to different APIs overlap; each API is paced by the shared QuotaPacer.
"""

from __future__ import annotations

import fnmatch
import logging
import math
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
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
READS = ("auto", "search", "list")
# Levels 1-5 are 001..101 in binary: the holders found at the levels with
# bit 0, bit 1 and bit 2 set give every holder of a value and its level.
LEVEL_BITS = ((1, 3, 5), (2, 3), (4, 5))
SEARCH_PAGE = 500


@dataclass(frozen=True)
class ReadChoice:
    """How proficiencies were read, and why: the strategy asked for and the
    estimated seconds of each (None when not estimated)."""

    strategy: str  # "list" or "search"
    requested: str = "list"  # "auto", "search" or "list"
    list_seconds: float | None = None
    search_seconds: float | None = None

    @property
    def data(self) -> dict[str, Any]:
        """The plan's `read` member (docs/plan-format.md)."""
        return {
            "strategy": self.strategy,
            "requested": self.requested,
            "estimated_seconds": {"list": self.list_seconds, "search": self.search_seconds},
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> ReadChoice:
        estimate = data.get("estimated_seconds") or {}
        return cls(
            data["strategy"], data["requested"], estimate.get("list"), estimate.get("search")
        )

    def describe(self) -> str:
        """One line for renderers, e.g. "by search (auto: ~750 s vs ~5000 s by list)"."""
        how = "SearchUsers" if self.strategy == "search" else "ListUserProficiencies"
        if self.requested != "auto":
            why = "" if self.requested == self.strategy else ": values equal but for case"
            return f"proficiencies read by {how} (--read {self.requested}{why})"
        if self.search_seconds is None:
            return f"proficiencies read by {how} (auto: search cannot be cheaper)"
        return (
            f"proficiencies read by {how} (auto: ~{self.list_seconds:.0f} s by list, "
            f"~{self.search_seconds:.0f} s by search)"
        )


@dataclass
class ReadScope:
    """What to read, from the manifests and any --user/--attribute narrowing."""

    declared_users: set[str]
    all_users: bool = False
    groups: list[GroupMatch] = field(default_factory=list)
    only_users: set[str] | None = None
    only_attributes: set[str] | None = None
    # proficiencies wanted in these attributes only (--attribute): the search read asks for less
    proficiency_attributes: set[str] | None = None
    owners: bool = False  # read users' owner tags (SearchUsers returns Tags; ListUsers not)
    # "list" forces ListUserProficiencies (re-reads that must not trust the search index)
    strategy: str | None = None


@dataclass
class LiveState:
    """What Connect holds: attributes, and the managed users' proficiencies."""

    state: RoutingState
    managed: set[str]
    group_members: list[set[str]]
    missing_users: list[str]
    errors: list[str] = field(default_factory=list)
    read: ReadChoice = field(default_factory=lambda: ReadChoice("list"))
    whole: bool = True  # False when narrowed to some users: `managed` is not every managed user
    # managed users' ARNs and OWNER_TAG values (when the scope asked for owners)
    arns: dict[str, str] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)


@dataclass
class ContactWindow:
    """Contacts read from a time window, and how many it holds: more than
    were read when a limit cut it."""

    contacts: list[dict[str, Any]]
    total: int

    @property
    def cut(self) -> bool:
        return self.total > len(self.contacts)


class LiveStateReader:
    """Reads a Connect instance through a QuotaPacer."""

    def __init__(
        self,
        pacer: QuotaPacer,
        instance_id: str,
        workers: int = 16,
        progress: Progress | None = None,
        strategy: str = "auto",
    ) -> None:
        self.pacer = pacer
        self.instance_id = instance_id
        self.workers = workers
        self.progress = progress or (lambda what, done, total: None)
        if strategy not in READS:
            raise ValueError(f"read strategy {strategy!r} is not one of {', '.join(READS)}")
        self.strategy = strategy  # how read() reads proficiencies
        self._usernames: dict[str, str] | None = None
        self._usernames_lock = threading.Lock()

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """One paced call on this instance."""
        return self.pacer.call(operation, InstanceId=self.instance_id, **params)

    def usernames_by_id(self) -> dict[str, str]:
        """Every user of the instance, id -> username: listed once per reader
        (a NOT condition, agent ids on contacts, a typo's closest names)."""
        with self._usernames_lock:
            if self._usernames is None:
                listed = self.pages("ListUsers", "UserSummaryList", MaxResults=1000)
                self._usernames = {u["Id"]: u["Username"] for u in listed}
            return self._usernames

    def pages(self, operation: str, key: str, **params: Any) -> list[Any]:
        """Every item under `key` of a paginated call on this instance."""
        return self.pacer.pages(operation, key, InstanceId=self.instance_id, **params)

    def read(self, scope: ReadScope) -> LiveState:
        """Read everything `scope` needs. When proficiencies are listed, a
        user the scope surely manages (declared, or every user) is read as
        soon as its page of users arrives, not after the last page."""
        # Proficiency reads get their own pool: queued behind thousands of
        # them, a group's SearchUsers would wait for all of them.
        with (
            ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="read") as pool,
            ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="users") as reads,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="listing") as lister,
        ):
            attributes = pool.submit(self.attributes, scope.only_attributes)
            started: dict[str, Future[Proficiencies]] = {}

            # Only when the list read is certain: auto narrowed to users always lists.
            strategy = scope.strategy or self.strategy
            eager = strategy == "list" or (strategy == "auto" and scope.only_users is not None)

            def start(page: dict[str, str]) -> None:
                if not eager:
                    return
                for username, user_id in page.items():
                    declared = scope.all_users or username in scope.declared_users
                    if declared and (scope.only_users is None or username in scope.only_users):
                        started[username] = reads.submit(self.proficiencies, user_id)

            listing = lister.submit(self._managed, scope, pool, start)
            searchable = _proficiency_attributes(attributes.result(), scope.proficiency_attributes)
            if scope.all_users or scope.groups or scope.only_users is not None:
                users = len(listing.result()[2])
            else:
                # Managed users are then the declared ones (less any missing), so
                # their count is known: the read is chosen, and a search runs,
                # while the users are still being listed.
                users = len(scope.declared_users)
            choice = self.choose_read(strategy, scope, searchable, users)
            found = (
                self.proficiencies_by_search(searchable, abandon_if_failed=listing)
                if choice.strategy == "search"
                else {}
            )
            listed, members, managed, missing, errors = listing.result()
            user_ids = {name: record["Id"] for name, record in listed.items()}
            ordered = sorted(managed)
            ids = [user_ids[u] for u in ordered]
            if choice.strategy == "search":
                held = [found.get(i, {}) for i in ids]
            else:
                for username in ordered:
                    if username not in started:
                        started[username] = reads.submit(self.proficiencies, user_ids[username])
                held = self._gathered([started[u] for u in ordered])
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
                choice,
                whole=scope.only_users is None,
                arns={u: listed[u]["Arn"] for u in ordered if u in listed and "Arn" in listed[u]},
                owners={
                    u: listed[u]["Tags"][OWNER_TAG]
                    for u in ordered
                    if OWNER_TAG in (listed.get(u, {}).get("Tags") or {})
                },
            )

    def choose_read(
        self, strategy: str, scope: ReadScope, attributes: dict[str, Attribute], users: int
    ) -> ReadChoice:
        """How to read `users` users' proficiencies in `attributes`: as asked,
        or (auto) whichever is estimated to take less time at the quotas in
        force. Search needs at least one page per query, so it is only
        estimated (one SearchUsers per attribute: its holder count) when that
        floor is below the list read."""
        if strategy == "list" or any(
            len({v.casefold() for v in a.values}) < len(a.values) for a in attributes.values()
        ):
            # Search matches values case-insensitively: values equal but for
            # case would be confused, so such an instance is always listed.
            return ReadChoice("list", strategy)
        if strategy == "search":
            return ReadChoice("search", "search")
        list_rate = self.pacer.quota("ListUserProficiencies").rate
        search_rate = self.pacer.quota("SearchUsers").rate
        list_seconds = users / list_rate
        queries = 3 * sum(len(a.values) for a in attributes.values())
        if scope.only_users is not None or queries / search_rate >= list_seconds:
            return ReadChoice("list", "auto", list_seconds)
        calls = len(attributes) + queries
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="estimate") as pool:
            counts = pool.map(self._holder_count, sorted(attributes))
            for name, count in zip(sorted(attributes), counts, strict=True):
                values = len(attributes[name].values)
                if values and count is None:
                    return ReadChoice("list", "auto", list_seconds)
                if values:
                    # a value's holders, if spread evenly, bound each query's pages
                    calls += 3 * values * (max(1, math.ceil(count / values / SEARCH_PAGE)) - 1)
        search_seconds = calls / search_rate
        strategy = "search" if search_seconds < list_seconds else "list"
        log.info(
            "read: %s (estimated %.0f s by list, %.0f s by search)",
            strategy,
            list_seconds,
            search_seconds,
        )
        return ReadChoice(strategy, "auto", list_seconds, search_seconds)

    def _holder_count(self, attribute: str) -> int | None:
        """How many users hold any value of `attribute`, as the service counts."""
        page = self.call(
            "SearchUsers", MaxResults=1, SearchCriteria=proficiency_condition(attribute)
        )
        return page.get("ApproximateTotalCount")

    def proficiencies_by_search(
        self, attributes: dict[str, Attribute], abandon_if_failed: Future[Any] | None = None
    ) -> dict[str, Proficiencies]:
        """Every holder's proficiencies in `attributes` by user id, from three
        SearchUsers per value run concurrently. If `abandon_if_failed` (a read
        running alongside) fails, no more queries start and its error is
        raised: the plan fails now, not after the whole search."""
        queries = [
            (attribute.name, value, bit)
            for attribute in attributes.values()
            for value in attribute.values
            for bit in range(len(LEVEL_BITS))
        ]
        held: dict[str, Proficiencies] = {}
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="search") as pool:
            futures = [
                pool.submit(self._holder_ids, name, value, LEVEL_BITS[bit])
                for name, value, bit in queries
            ]
            for done, ((name, value, bit), future) in enumerate(
                zip(queries, futures, strict=True), start=1
            ):
                if abandon_if_failed is not None:
                    wait([future, abandon_if_failed], return_when=FIRST_COMPLETED)
                    if abandon_if_failed.done() and abandon_if_failed.exception() is not None:
                        for queued in futures:
                            queued.cancel()
                        abandon_if_failed.result()
                for user_id in future.result():
                    levels = held.setdefault(user_id, {})
                    levels[(name, value)] = levels.get((name, value), 0.0) + 2**bit
                self.progress("Searching proficiencies", done, len(futures))
        return held

    def relisted(
        self, state: RoutingState, usernames: set[str], attributes: set[str]
    ) -> tuple[RoutingState, list[str]]:
        """`state` read by search for `attributes` only, with `usernames`
        re-read whole by ListUserProficiencies (so their fingerprints cover
        every proficiency), and one error per user whose listed proficiencies
        in `attributes` differ from what the search found."""
        users = dict(state.users)
        names = sorted(u for u in usernames if u in users)
        folded = {name.casefold() for name in attributes}  # as --attribute matches
        errors = []
        for username, listed in zip(
            names, self.proficiencies_of([users[u].user_id or "" for u in names]), strict=True
        ):
            searched = users[username].proficiencies
            if {k: v for k, v in listed.items() if k[0].casefold() in folded} != searched:
                errors.append(
                    f"user {username}: SearchUsers and ListUserProficiencies disagree (the "
                    "search index may trail writes); plan again, or use --read list"
                )
            users[username] = UserState(username, listed, users[username].user_id)
        return RoutingState(state.attributes, users), errors

    def _holder_ids(self, attribute: str, value: str, levels: tuple[int, ...]) -> list[str]:
        criteria = proficiency_condition(attribute, value, levels=levels)
        found = self.pages("SearchUsers", "Users", MaxResults=SEARCH_PAGE, SearchCriteria=criteria)
        return [u["Id"] for u in found]

    def managed_users(self, scope: ReadScope) -> tuple[set[str], list[set[str]]]:
        """(every username `scope` manages, each group's members), without
        reading proficiencies; a selector naming nothing matches nobody (the
        plan's own read reports it)."""
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="read") as pool:
            _, members, managed, _, _ = self._managed(scope, pool)
        return managed, [set(m) for m in members]

    def _managed(
        self,
        scope: ReadScope,
        pool: ThreadPoolExecutor,
        on_page: Callable[[dict[str, str]], None] = lambda page: None,
    ) -> tuple[dict[str, dict[str, Any]], list[dict[str, str]], set[str], list[str], list[str]]:
        """(username -> user record, each group's members, managed, missing,
        errors); `on_page` sees each page of usernames -> ids as it arrives."""
        users = pool.submit(self._users, scope, on_page)
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
            for username, user_id in matched.items():
                listed.setdefault(username, {"Username": username, "Id": user_id})
        wanted = set(listed) if scope.all_users else set(scope.declared_users)
        for matched in members:
            wanted |= set(matched)
        if scope.only_users is not None:
            wanted &= scope.only_users
        missing = sorted(u for u in wanted if u not in listed)
        return listed, members, wanted - set(missing), missing, errors

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
            return self._gathered([pool.submit(self.proficiencies, i) for i in user_ids])

    def _gathered(self, futures: list[Future[Proficiencies]]) -> list[Proficiencies]:
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

    def contacts(self, start: float, end: float, limit: int) -> ContactWindow:
        """Up to `limit` contacts initiated in [start, end], newest first, with
        their RoutingCriteria. SearchContacts' summaries carry the criteria
        (ContactSearchSummary.RoutingCriteria, "latest routing criteria on the
        contact": https://docs.aws.amazon.com/connect/latest/APIReference/API_ContactSearchSummary.html),
        so DescribeContact is called only for contacts whose summary lacks them."""
        window = {"Type": "INITIATION_TIMESTAMP", "StartTime": start, "EndTime": end}
        found: list[dict[str, Any]] = []
        token = None
        total = 0
        while True:
            page = self.call(
                "SearchContacts",
                TimeRange=window,
                MaxResults=100,
                **({"NextToken": token} if token else {}),
            )
            found += page.get("Contacts", [])
            token = page.get("NextToken")
            total = max(page.get("TotalCount") or 0, len(found) + (1 if token else 0))
            if not token or len(found) >= limit:
                break
        kept = found[:limit]
        lacking = [c for c in kept if not c.get("RoutingCriteria")]

        def describe(summary: dict[str, Any]) -> None:
            contact = self.call("DescribeContact", ContactId=summary["Id"])["Contact"]
            summary["RoutingCriteria"] = contact.get("RoutingCriteria")

        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="contacts") as pool:
            list(pool.map(describe, lacking))
        return ContactWindow(kept, max(total, len(found)))

    def _users(
        self, scope: ReadScope, on_page: Callable[[dict[str, str]], None]
    ) -> dict[str, dict[str, Any]]:
        """Users by username as ListUsers or SearchUsers returns them (Id,
        Arn; SearchUsers also Tags, so owners cost no call per user);
        `on_page` sees each page's usernames -> ids as it arrives."""
        found: dict[str, dict[str, Any]] = {}

        def take(users: list[dict[str, Any]]) -> None:
            on_page({u["Username"]: u["Id"] for u in users})
            found.update({u["Username"]: u for u in users})

        if scope.only_users is None:
            operation, key, size = (
                ("SearchUsers", "Users", 500)
                if scope.owners
                else ("ListUsers", "UserSummaryList", 1000)
            )
            for users in self.pacer.each_page(
                operation, key, InstanceId=self.instance_id, MaxResults=size
            ):
                take(users)
            return found
        names = sorted(scope.only_users)
        chunks = [
            {"OrConditions": [_username_is(n) for n in names[i : i + USERNAMES_PER_SEARCH]]}
            for i in range(0, len(names), USERNAMES_PER_SEARCH)
        ]
        # The chunks are independent: search them concurrently (the pacer
        # still holds SearchUsers to its quota).
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="usernames") as pool:
            for users in pool.map(
                lambda c: self.pages("SearchUsers", "Users", MaxResults=500, SearchCriteria=c),
                chunks,
            ):
                take(users)
        return found

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
        if not conditions or (only_users is not None and not only_users):
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
    attribute: str,
    value: str | None = None,
    low: int | None = None,
    high: int | None = None,
    levels: Iterable[int] | None = None,
) -> dict[str, Any]:
    """SearchUsers' criteria for holders of one proficiency: of `attribute`
    (and `value`), at a level in [low, high] or in `levels`. This is the one
    place that spells the field names, as the service model documents them:
    StringCondition `name`/`value` (API_Condition) and NumberCondition
    `limit` (API_NumberCondition):
    https://docs.aws.amazon.com/connect/latest/APIReference/API_Condition.html
    https://docs.aws.amazon.com/connect/latest/APIReference/API_NumberCondition.html
    API_ListCondition ANDs the conditions on one list item."""
    conditions = [_string_is("name", attribute)]
    if value is not None:
        conditions.append(_string_is("value", value))
    if levels is not None:
        return {
            "OrConditions": [
                _list_condition([*conditions, _limit("EQUAL", MinValue=level)]) for level in levels
            ]
        }
    if high is not None:
        conditions.append(_limit("RANGE", MinValue=low or 1, MaxValue=high))
    elif low is not None:
        conditions.append(_limit("GREATER_OR_EQUAL", MinValue=low))
    return _list_condition(conditions)


def _limit(comparison: str, **bounds: int) -> dict[str, Any]:
    return {"NumberCondition": {"FieldName": "limit", "ComparisonType": comparison, **bounds}}


def _list_condition(conditions: list[dict[str, Any]]) -> dict[str, Any]:
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


def _proficiency_attributes(
    attributes: dict[str, Attribute], wanted: set[str] | None
) -> dict[str, Attribute]:
    """The attributes whose proficiencies a read needs: all, or `wanted`."""
    if wanted is None:
        return attributes
    folded = {name.casefold() for name in wanted}
    return {name: a for name, a in attributes.items() if name.casefold() in folded}
