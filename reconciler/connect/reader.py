"""Read live state from Connect with the fewest calls, concurrently.

- attributes: SearchPredefinedAttributes returns values too (100 a page), so
  there is no Describe per attribute;
- users: ListUsers (1,000 a page) maps usernames to ids; narrowed to a few
  users, SearchUsers by username instead; with `settings.owner`, SearchUsers
  (500 a page), whose results carry the owner tags;
- groups: ListRoutingProfiles / ListUserHierarchyGroups only when a selector
  names one, then one SearchUsers per selector (the service filters);
- proficiencies, one of two ways (docs/design.md §3, "read strategies"):
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

import difflib
import logging
import random
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.exceptions import ClientError

from reconciler.connect.criteria import (
    SEARCH_SEMANTICS,
    Criteria,
    holder_alternatives,
    proficiency_condition,
    string_is,
    username_is,
)
from reconciler.connect.pacer import QuotaPacer
from reconciler.connect.read_choice import (
    LEVEL_BITS,
    READS,
    ReadChoice,
    Verification,
    choose_read,
)
from reconciler.service.limits import (
    MAX_OR_CONDITIONS,
    SEARCH_ATTRIBUTES_PAGE,
    SEARCH_USERS_PAGE,
    searchable,
)
from reconciler.state import Attribute, Proficiencies, RoutingState, UserSelector, UserState

log = logging.getLogger(__name__)

# Operation -> (its result key, its largest page).
_SEARCHES = {
    "SearchUsers": ("Users", SEARCH_USERS_PAGE),
    "SearchPredefinedAttributes": ("PredefinedAttributes", SEARCH_ATTRIBUTES_PAGE),
}
_REFUSED = "InvalidParameterException"
# The tag `settings.owner` puts on every user it manages (docs/design.md §4).
OWNER_TAG = "connect-reconciler:owner"
Progress = Callable[[str, int, int], None]  # (what, done, total), for progress bars


@dataclass
class ReadScope:
    """What to read, from the manifests and any --user/--attribute narrowing."""

    declared_users: set[str]
    all_users: bool = False
    groups: list[UserSelector] = field(default_factory=list)
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


class SearchMisread(Exception):
    """`--read search` on a service whose search answers otherwise than the
    search read needs (exit 1, naming the users and values)."""


# A search read re-reads at least this many users by ListUserProficiencies
# (and one holder of every value it searched) to check what it found.
CHECKED_USERS = 32
# When explain's holder search disagrees, it reads every user by list if the
# instance has at most this many (a few minutes at the default quota).
RELISTED_USERS = 300


class SearchCheck:
    """Cross-checks a search read: a seeded sample of users, at least one
    holder of every searched value and CHECKED_USERS or more, is read again
    by ListUserProficiencies while the search goes on."""

    def __init__(self, reader: LiveStateReader, pool: ThreadPoolExecutor, seed: int) -> None:
        self.reader = reader
        self.pool = pool
        self.seed = seed
        self._holders = random.Random(seed)  # the values come in one order: so do the picks
        self.read: dict[str, Future[Proficiencies]] = {}
        self._lock = threading.Lock()

    def holder(self, holders: set[str]) -> None:
        """One of a value's holders (ids), to read again."""
        if holders:
            self._read([self._holders.choice(sorted(holders))])

    def users(self, records: Iterable[dict[str, Any]]) -> None:
        """CHECKED_USERS of the listed users, picked at random by the seed
        (whenever this is called: the same ones)."""
        ids = sorted({r["Id"] for r in records})
        self._read(random.Random(self.seed).sample(ids, min(len(ids), CHECKED_USERS)))

    def _read(self, user_ids: list[str]) -> None:
        with self._lock:
            for user_id in user_ids:
                if user_id not in self.read:
                    self.read[user_id] = self.pool.submit(self.reader.proficiencies, user_id)

    def disagreements(
        self,
        found: dict[str, Proficiencies],
        attributes: Iterable[str],
        keys: set[tuple[str, str]] | None = None,
    ) -> list[tuple[str, str]]:
        """(user id, what differs) for each sampled user whose listed
        proficiencies in `attributes` (only `keys` of them, when given) are
        not what the search found."""
        folded = {name.casefold() for name in attributes}
        with self._lock:
            sampled = dict(self.read)
        differ = []
        for user_id, future in sorted(sampled.items()):
            listed = {
                k: v
                for k, v in future.result().items()
                if k[0].casefold() in folded and (keys is None or k in keys)
            }
            searched = found.get(user_id, {})
            if listed != searched:
                both = sorted(set(listed) | set(searched))
                wrong = [k for k in both if listed.get(k) != searched.get(k)][:3]
                said = [
                    f"{a}/{v} listed {_level(listed.get((a, v)))}, "
                    f"searched {_level(searched.get((a, v)))}"
                    for a, v in wrong
                ]
                differ.append((user_id, ", ".join(said)))
        return differ


def _level(level: float | None) -> str:
    return "not held" if level is None else f"at {level:g}"


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
        self.check_seed = 0  # which users a search read checks (SearchCheck)
        self._usernames: dict[str, str] | None = None
        self._usernames_lock = threading.Lock()
        self.or_limit = MAX_OR_CONDITIONS  # conditions one OR list may hold (search_any)
        self._limit_lock = threading.Lock()

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
            searched = _proficiency_attributes(attributes.result(), scope.proficiency_attributes)
            if scope.all_users or scope.groups or scope.only_users is not None:
                users = len(listing.result()[2])
            else:
                # Managed users are then the declared ones (less any missing), so
                # their count is known: the read is chosen, and a search runs,
                # while the users are still being listed.
                users = len(scope.declared_users)
            choice = choose_read(
                strategy,
                searched,
                users,
                narrowed_to_users=scope.only_users is not None,
                list_rate=self.pacer.quota("ListUserProficiencies").rate,
                search_rate=self.pacer.quota("SearchUsers").rate,
                holder_counts=self._holder_counts,
            )
            found: dict[str, Proficiencies] = {}
            if choice.strategy == "search":
                # Checked as it goes: ListUserProficiencies is another API, so
                # the sample is read beside the search (docs/design.md §3).
                check = SearchCheck(self, reads, self.check_seed)
                listing.add_done_callback(
                    lambda done: (
                        None if done.exception() else check.users(done.result()[0].values())
                    )
                )
                found = self.proficiencies_by_search(searched, listing, check)
                check.users(listing.result()[0].values())  # if the callback has not run yet
                choice = self._checked(choice, check, found, searched, listing.result()[0])
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

    def _holder_counts(self, attributes: list[str]) -> list[int | None]:
        """How many users hold any value of each attribute, as the service counts."""

        def count(attribute: str) -> int | None:
            criteria = proficiency_condition(attribute)
            page = self.call("SearchUsers", MaxResults=1, SearchCriteria=criteria)
            return page.get("ApproximateTotalCount")

        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="estimate") as pool:
            return list(pool.map(count, attributes))

    def _checked(
        self,
        choice: ReadChoice,
        check: SearchCheck,
        found: dict[str, Proficiencies],
        attributes: dict[str, Attribute],
        listed: dict[str, dict[str, Any]],
    ) -> ReadChoice:
        """`choice` with how the search read was checked; when the sample
        disagrees, `auto` falls back to the list read and `search` refuses."""
        disagreed = check.disagreements(found, attributes)
        verification = Verification(len(check.read), len(disagreed))
        if not disagreed:
            return replace(choice, verification=verification)
        names_by_id = {record["Id"]: name for name, record in listed.items()}
        said = "; ".join(
            f"{names_by_id.get(user_id, user_id)}: {what}" for user_id, what in disagreed[:5]
        )
        more = f" and {len(disagreed) - 5} more" if len(disagreed) > 5 else ""
        why = (
            f"SearchUsers and ListUserProficiencies disagree for {len(disagreed)} of "
            f"{len(check.read)} sampled users ({said}{more}): one of the service's "
            f"behaviours is not what the search read needs: {SEARCH_SEMANTICS}"
        )
        if choice.requested == "search":
            raise SearchMisread(f"--read search: {why}; use --read list or auto")
        log.warning("%s; reading by list instead", why)
        return replace(
            choice,
            strategy="list",
            note="search disagreed with ListUserProficiencies, read by list instead",
            verification=replace(verification, fell_back_to="list"),
        )

    def proficiencies_by_search(
        self,
        attributes: dict[str, Attribute],
        abandon_if_failed: Future[Any] | None = None,
        check: SearchCheck | None = None,
    ) -> dict[str, Proficiencies]:
        """Every holder's proficiencies in `attributes` by user id, from three
        SearchUsers per value run concurrently. If `abandon_if_failed` (a read
        running alongside) fails, no more queries start and its error is
        raised: the plan fails now, not after the whole search. `check` is
        told each value's holders as soon as its searches are done."""
        queries = [
            (attribute.name, value, bit)
            for attribute in attributes.values()
            for value in attribute.values
            for bit in range(len(LEVEL_BITS))
        ]
        held: dict[str, Proficiencies] = {}
        value_holders: set[str] = set()
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
                    value_holders.add(user_id)
                if bit == len(LEVEL_BITS) - 1:
                    if check is not None:
                        check.holder(value_holders)
                    value_holders = set()
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

    def holder_levels(self, attribute: str, value: str) -> dict[str, tuple[str, float]]:
        """Every holder of `attribute`/`value` with its level, id -> (username,
        level): three SearchUsers, one per level bit (as the search read)."""
        found: dict[str, tuple[str, float]] = {}
        for bit, levels in enumerate(LEVEL_BITS):
            alternatives = [proficiency_condition(attribute, value, equal=n) for n in levels]
            for user in self.search_any(alternatives):
                username, level = found.get(user["Id"], (user["Username"], 0.0))
                found[user["Id"]] = (username, level + 2**bit)
        return found

    def checked_holder_levels(
        self, keys: list[tuple[str, str]]
    ) -> tuple[dict[tuple[str, str], dict[str, tuple[str, float]]], str]:
        """holder_levels of every key (concurrently), checked as a search
        read is (SearchCheck: one holder of every key and CHECKED_USERS of
        the instance's users read again by ListUserProficiencies, so a holder
        the search missed shows too). When any differs, every user is read by
        list instead, up to RELISTED_USERS (SearchMisread beyond: too slow).
        Returns the levels and a note saying why ("" when the search held)."""
        users = self.usernames_by_id()
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="holders") as pool:
            check = SearchCheck(self, pool, self.check_seed)
            found = dict(
                zip(keys, pool.map(lambda key: self.holder_levels(*key), keys), strict=True)
            )
            for by_id in found.values():
                check.holder(set(by_id))
            check.users({"Id": user_id} for user_id in users)
            by_user: dict[str, Proficiencies] = {}
            for key, by_id in found.items():
                for user_id, (_, level) in by_id.items():
                    by_user.setdefault(user_id, {})[key] = level
            differ = check.disagreements(by_user, {a for a, _ in keys}, set(keys))
            if not differ:
                return found, ""
            why = (
                f"SearchUsers and ListUserProficiencies disagree for {len(differ)} of "
                f"{len(check.read)} sampled users; {SEARCH_SEMANTICS}"
            )
            if len(users) > RELISTED_USERS:
                raise SearchMisread(
                    f"{why}; reading all {len(users)} users by list instead would take too long "
                    f"(more than {RELISTED_USERS})"
                )
        # the sample is read already: list the others
        listed = {user_id: future.result() for user_id, future in check.read.items()}
        rest = sorted(set(users) - set(listed))
        listed |= dict(zip(rest, self.proficiencies_of(rest), strict=True))
        log.warning("%s; every user read by list instead", why)
        names = {u: name for by_id in found.values() for u, (name, _) in by_id.items()} | users
        relisted = {
            key: {u: (names[u], held[key]) for u, held in listed.items() if key in held}
            for key in keys
        }
        return relisted, f"{why}: every user read by list instead."

    def _holder_ids(self, attribute: str, value: str, levels: tuple[int, ...]) -> list[str]:
        """Holders of `value` at any of `levels` (one OR list, chunked as the service takes)."""
        found = self.search_any([proficiency_condition(attribute, value, equal=n) for n in levels])
        return sorted({u["Id"] for u in found})

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
        # Declared users are managed whatever `users:` says: under `all`, a
        # typo must be an error, not a real agent left with nothing.
        wanted = set(scope.declared_users) | (set(listed) if scope.all_users else set())
        for matched in members:
            wanted |= set(matched)
        if scope.only_users is not None:
            wanted &= scope.only_users
        missing = sorted(u for u in wanted if u not in listed)
        errors += [unknown_user(username, listed) for username in missing]
        if scope.only_users is None:  # every user listed: a group that matches nobody is a typo
            errors += [
                f"group {selector.describe()} matches no user in Connect: fix the selector, or "
                "remove the group (its agents would lose what only it gives)"
                for selector, matched in zip(scope.groups, members, strict=True)
                if not matched
                and selector.routing_profile in (None, *profile_ids)  # else already an error
                and selector.hierarchy_group in (None, *group_ids)
            ]
        return listed, members, wanted - set(missing), missing, errors

    def attribute(self, name: str) -> Attribute | None:
        """One attribute as DescribePredefinedAttribute gives it now (None
        when it does not exist): what a write of its value list starts from."""
        try:
            found = self.call("DescribePredefinedAttribute", Name=name)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise
        return attribute_of(found["PredefinedAttribute"])

    def attributes(self, names: set[str] | None = None) -> dict[str, Attribute]:
        """Predefined attributes with their values (all, or just `names`)."""
        if names and all(searchable(n) for n in names):
            alternatives = [string_is("name", n) for n in sorted(names)]
            found = self.search_any(alternatives, operation="SearchPredefinedAttributes")
        else:
            found = self.pages(
                "SearchPredefinedAttributes",
                "PredefinedAttributes",
                MaxResults=SEARCH_ATTRIBUTES_PAGE,
            )
        # Names match ignoring case, as the service names them (and as a
        # search may or may not compare).
        folded = {n.casefold() for n in names or ()}
        return {
            record["Name"]: attribute_of(record)
            for record in found
            if not names or record["Name"].casefold() in folded
        }

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

    def holders(self, attribute: str, values: Iterable[str] | None) -> dict[str, str]:
        """Users the service finds holding `attribute` (any of `values`, or
        any value), username -> id: every holder, and under some search
        semantics more (see `confirmed_holders`)."""
        found = self.search_any(holder_alternatives(attribute, values))
        return {u["Username"]: u["Id"] for u in found}

    def confirmed_holders(
        self, attribute: str, values: Iterable[str] | None, candidates: dict[str, str], enough: int
    ) -> set[str]:
        """Those of `candidates` (username -> id) whose ListUserProficiencies
        shows them holding `attribute` (any of `values`): up to `enough`, read
        in batches, so what a search only guessed is never reported."""
        folded = attribute.casefold()
        wanted = None if values is None else set(values)
        confirmed: set[str] = set()
        names = sorted(candidates)
        for start in range(0, len(names), self.workers):
            batch = names[start : start + self.workers]
            held = self.proficiencies_of([candidates[u] for u in batch])
            for username, proficiencies in zip(batch, held, strict=True):
                if any(
                    a.casefold() == folded and (wanted is None or v in wanted)
                    for a, v in proficiencies
                ):
                    confirmed.add(username)
            if len(confirmed) >= enough:
                break
        return confirmed

    def search_users(self, criteria: Criteria) -> set[str]:
        """Usernames SearchUsers returns for `criteria`."""
        found = self.pages(
            "SearchUsers", "Users", MaxResults=SEARCH_USERS_PAGE, SearchCriteria=criteria
        )
        return {u["Username"] for u in found}

    def search_any(
        self,
        alternatives: list[Criteria],
        around: Callable[[Criteria], Criteria] = lambda criteria: criteria,
        operation: str = "SearchUsers",
    ) -> list[dict[str, Any]]:
        """What matches any of `alternatives` (each OR list wrapped by
        `around`), asked in OR lists the service takes: at most
        MAX_OR_CONDITIONS, and half as many from the first a service refuses
        (no limit is documented). Lists are searched concurrently."""
        key, size = _SEARCHES[operation]

        def ask(chunk: list[Criteria]) -> list[dict[str, Any]]:
            criteria = around(chunk[0] if len(chunk) == 1 else {"OrConditions": chunk})
            try:
                return self.pages(operation, key, MaxResults=size, SearchCriteria=criteria)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != _REFUSED or len(chunk) == 1:
                    raise
            half = len(chunk) // 2
            with self._limit_lock:
                if half < self.or_limit:
                    log.warning(
                        "%s refused %d OR'ed conditions; sending %d", operation, len(chunk), half
                    )
                    self.or_limit = half
            return ask(chunk[:half]) + ask(chunk[half:])

        limit = self.or_limit
        chunks = [alternatives[i : i + limit] for i in range(0, len(alternatives), limit)]
        if len(chunks) == 1:
            return ask(chunks[0])
        # The lists are independent: search them concurrently (the pacer
        # still holds the operation to its quota).
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="search") as pool:
            return [item for found in pool.map(ask, chunks) for item in found]

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

        if scope.only_users is None or not all(searchable(n) for n in scope.only_users):
            # every user (and then only those asked for: a name too short
            # to search for is looked up in the listing)
            operation, key, size = (
                ("SearchUsers", "Users", SEARCH_USERS_PAGE)
                if scope.owners
                else ("ListUsers", "UserSummaryList", 1000)
            )
            only = scope.only_users
            for users in self.pacer.each_page(
                operation, key, InstanceId=self.instance_id, MaxResults=size
            ):
                take([u for u in users if only is None or u["Username"] in only])
            return found
        take(self.search_any([username_is(n) for n in sorted(scope.only_users)]))
        return found

    def _selector_names(self, groups: list[UserSelector]) -> tuple[dict[str, str], dict[str, str]]:
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
        selector: UserSelector,
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
            conditions.append(string_is("RoutingProfileId", profile_id))
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
        if only_users is None or not all(searchable(n) for n in only_users):
            criteria = conditions[0] if len(conditions) == 1 else {"AndConditions": conditions}
            found = self.pages(
                "SearchUsers", "Users", MaxResults=SEARCH_USERS_PAGE, SearchCriteria=criteria
            )
        else:
            found = self.search_any(
                [username_is(n) for n in sorted(only_users)],
                around=lambda names: {"AndConditions": [*conditions, names]},
            )
        return {
            u["Username"]: u["Id"]
            for u in found
            if only_users is None or u["Username"] in only_users
        }


def unknown_user(username: str, listed: dict[str, Any]) -> str:
    """The error for a declared user Connect does not have, with the live
    names closest to it. Whether the service compares usernames ignoring
    case is not documented: a name that differs only in case is refused too."""
    same = [name for name in listed if name.casefold() == username.casefold()]
    if same:
        return (
            f"user {username!r} does not exist in Connect, which has {same[0]!r}: usernames "
            "differ only in case; write the name as Connect has it"
        )
    close = difflib.get_close_matches(username, list(listed), n=3, cutoff=0.6)
    hint = f"; closest: {', '.join(close)}" if close else ""
    return (
        f"user {username!r} declared in the manifests does not exist in Connect "
        f"(this tool does not create users){hint}"
    )


def _members(
    selector: UserSelector, server_matched: dict[str, str], user_ids: dict[str, str]
) -> dict[str, str]:
    """The selector's users: the server's matches (or every listed user when
    it names no profile or group), filtered by its username glob."""
    candidates = server_matched if selector.server_side else user_ids
    return {u: i for u, i in candidates.items() if selector.matches_username(u)}


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
