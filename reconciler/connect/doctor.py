"""`doctor`: read-only checks of an instance and probes of what the
documentation leaves open, settled with the data the instance already holds.

Nothing here writes. Each check is ok, warn (the tool copes, differently),
fail (the tool cannot work as configured) or skip (it cannot run against
this target or instance). The probes ask SearchUsers questions whose answer
is known from ListUserProficiencies, so a service that answers otherwise
shows which behaviour it has (docs/emulator-fidelity.md, "Switches").
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from reconciler.connect.client import APPLY_READS, AUDIT_OPERATIONS, access_denied
from reconciler.connect.criteria import Criteria, proficiency_condition, username_is
from reconciler.connect.reader import LiveStateReader
from reconciler.quoting import markdown_cell
from reconciler.service.limits import MAX_OR_CONDITIONS, SEARCH_USERS_PAGE, searchable
from reconciler.service.model import ModelTooOld, require_model
from reconciler.state import Proficiencies

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
FORMAT_VERSION = "1"
# Users whose proficiencies the probes read to find the data they need.
PROBED_USERS = 20
CLOCK_SKEW_FAIL = 300.0  # SigV4 refuses requests signed more than 5 minutes off
CLOCK_SKEW_WARN = 60.0
OR_PROBES = (MAX_OR_CONDITIONS, 50, 100)


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str

    @property
    def data(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail}


def report(checks: list[Check]) -> dict[str, Any]:
    """doctor's JSON document."""
    return {"format_version": FORMAT_VERSION, "checks": [c.data for c in checks]}


@dataclass
class Holding:
    """A user and what ListUserProficiencies says they hold."""

    username: str
    user_id: str
    proficiencies: Proficiencies
    arn: str | None = None


class Doctor:
    """Runs every check against one instance through its reader."""

    def __init__(
        self, reader: LiveStateReader, identity: Callable[[], dict[str, Any]] | None
    ) -> None:
        self.reader = reader
        self.identity = identity  # None: not AWS's credential chain (an endpoint, the emulator)

    def checks(self) -> list[Check]:
        found = [self._model(), self._identity()]
        instance, reachable = self._instance()
        found += instance
        if not reachable:
            return found
        users = self._sample()
        found += list(self._reads(users))
        found += self._probes(users or [])
        return found

    # -- the installation and the account -----------------------------------

    def _model(self) -> Check:
        try:
            require_model()
        except ModelTooOld as exc:
            return Check("botocore model", FAIL, str(exc))
        return Check("botocore model", OK, "models every Connect member the tool uses")

    def _identity(self) -> Check:
        if self.identity is None:
            said = "not AWS's credential chain: an endpoint or the emulator"
            return Check("caller identity", SKIP, said)
        try:
            who = self.identity()
        except (BotoCoreError, ClientError) as exc:
            return Check("caller identity", FAIL, f"{exc}")
        return Check("caller identity", OK, f"{who.get('Arn')} (account {who.get('Account')})")

    def _instance(self) -> tuple[list[Check], bool]:
        """The instance's checks, and whether the other checks can run: they
        can when only DescribeInstance is denied, not when there is no
        instance or no service to ask."""
        try:
            response = self.reader.call("DescribeInstance")
        except (BotoCoreError, ClientError) as exc:
            return [Check("instance", FAIL, _failure(exc))], access_denied(exc) is not None
        instance = response["Instance"]
        found = [
            Check("instance", OK, f"{instance.get('Id')} ({instance.get('InstanceStatus', '?')})")
        ]
        found.append(_clock(response.get("ResponseMetadata", {}).get("HTTPHeaders", {})))
        return found, True

    # -- every read the commands make ----------------------------------------

    def _sample(self) -> list[Holding] | None:
        """Up to PROBED_USERS users with their proficiencies and ARNs (the
        probes' data); None when they cannot be read (the read checks say why)."""
        try:
            page = self.reader.call("ListUsers", MaxResults=PROBED_USERS)["UserSummaryList"]
        except (BotoCoreError, ClientError):
            return None
        try:
            held = self.reader.proficiencies_of([u["Id"] for u in page])
        except (BotoCoreError, ClientError):
            held = [{} for _ in page]  # the ListUserProficiencies check says why
        return [
            Holding(u["Username"], u["Id"], p, u.get("Arn"))
            for u, p in zip(page, held, strict=True)
        ]

    def _reads(self, users: list[Holding] | None) -> Iterator[Check]:
        """Each read action the commands use, called once, cheaply; those
        that need an object (a user, an attribute, a contact) ask about the
        first one another read found."""
        window = _window(days=1)
        found: dict[str, Any] = {}
        calls: list[tuple[str, dict[str, Any]]] = [
            ("ListUsers", {"MaxResults": 1}),
            ("SearchUsers", {"MaxResults": 1}),
            ("SearchPredefinedAttributes", {"MaxResults": 1}),
            ("ListRoutingProfiles", {"MaxResults": 1}),
            ("ListUserHierarchyGroups", {"MaxResults": 1}),
            ("SearchContacts", {"MaxResults": 1, "TimeRange": window}),
        ]
        for operation, params in calls:
            try:
                found[operation] = self.reader.call(operation, **params)
            except (BotoCoreError, ClientError) as exc:
                yield _read_failure(operation, exc)
                continue
            yield Check(f"read connect:{operation}", OK, "allowed")
        user = users[0] if users else None
        unlisted = "users could not be listed" if users is None else "the instance has no users"
        attribute = next(iter(found.get("SearchPredefinedAttributes", {}).get(
            "PredefinedAttributes") or []), None)  # fmt: skip
        contact = next(iter(found.get("SearchContacts", {}).get("Contacts") or []), None)
        needing: list[tuple[str, dict[str, Any] | None, str]] = [
            ("ListUserProficiencies", {"UserId": user.user_id, "MaxResults": 1} if user else None,
             unlisted),
            # apply's reads: an attribute's value list right before it is
            # updated, a user's owner tag read back
            ("DescribePredefinedAttribute", {"Name": attribute["Name"]} if attribute else None,
             "no predefined attribute found"),
            ("ListTagsForResource", {"resourceArn": user.arn} if user and user.arn else None,
             unlisted),
            ("DescribeContact", {"ContactId": contact["Id"]} if contact else None,
             "no contact in the last day"),
        ]  # fmt: skip
        for operation, asked, missing in needing:
            if asked is None:
                yield Check(f"read connect:{operation}", SKIP, missing)
                continue
            # a tag read names its resource by ARN alone, every other read takes the instance
            call = self.reader.pacer.call if "resourceArn" in asked else self.reader.call
            try:
                call(operation, **asked)
            except (BotoCoreError, ClientError) as exc:
                yield _read_failure(operation, exc)
            else:
                yield Check(f"read connect:{operation}", OK, "allowed")

    # -- what the documentation leaves open -----------------------------------

    def _probes(self, users: list[Holding]) -> list[Check]:
        probes = (
            self._list_condition,
            self._number_equal,
            self._string_case,
            self._short_values,
            self._max_or_conditions,
            self._contact_order,
        )
        found = []
        for probe in probes:
            try:
                found.append(probe(users))
            except (BotoCoreError, ClientError) as exc:
                found.append(
                    Check(probe.__name__.strip("_").replace("_", "-"), FAIL, _failure(exc))
                )
        writes = "these need writes: run the conformance suite against a test instance (README)"
        found.append(Check("associate-held, remove-held-value, consistency-lag", SKIP, writes))
        return found

    def _finds(self, user: Holding, criteria: Criteria) -> bool | str:
        """Whether SearchUsers finds `user` by `criteria`, or the error code it answers."""
        within = {"AndConditions": [criteria, username_is(user.username)]}
        try:
            found = self.reader.pages(
                "SearchUsers", "Users", MaxResults=SEARCH_USERS_PAGE, SearchCriteria=within
            )
        except ClientError as exc:
            return str(exc.response.get("Error", {}).get("Code"))
        return any(u["Id"] == user.user_id for u in found)

    def _list_condition(self, users: list[Holding]) -> Check:
        name = "list-condition"
        candidates = (
            (user, key, level, other)
            for user in users
            for key, level in user.proficiencies.items()
            if _searchable(key)
            for other in set(user.proficiencies.values()) - {level}
        )
        probe = next(candidates, None)
        if probe is None:
            return Check(name, SKIP, "no sampled user holds two proficiencies at different levels")
        user, key, level, other = probe
        same = self._finds(user, proficiency_condition(*key, equal=int(level)))
        if same is not True:
            said = f"{user.username} holds {_key(key)} at {level:g}, SearchUsers: {_answer(same)}"
            return Check(name, WARN, f"{said}: inconclusive")
        if self._finds(user, proficiency_condition(*key, equal=int(other))) is True:
            said = (
                f"a ListCondition is met across the list: {_key(key)} at {other:g} finds "
                f"{user.username}, who holds it at {level:g} (another proficiency is at "
                f"{other:g}); search reads fall back to the list read and requirement counts "
                "of users not read are not trusted"
            )
            return Check(name, WARN, said)
        return Check(name, OK, f"met by one proficiency (probed on {user.username})")

    def _number_equal(self, users: list[Holding]) -> Check:
        name = "number-equal"
        holdings = ((u, k, v) for u in users for k, v in u.proficiencies.items() if _searchable(k))
        holding = next(holdings, None)
        if holding is None:
            return Check(name, SKIP, "no sampled user holds a proficiency")
        user, key, level = holding
        base = proficiency_condition(*key)["ListCondition"]["Conditions"]
        answers = {}
        at = int(level)
        tried = {"MinValue": {"MinValue": at}, "MaxValue": {"MaxValue": at}}
        tried["both"] = {"MinValue": at, "MaxValue": at}
        for label, bounds in tried.items():
            number = {
                "NumberCondition": {"FieldName": "limit", "ComparisonType": "EQUAL", **bounds}
            }
            listed = {"TargetListType": "PROFICIENCIES", "Conditions": [*base, number]}
            criteria = {"ListCondition": listed}
            answers[label] = self._finds(user, criteria)
        said = ", ".join(
            f"{label} alone: {_answer(a)}" for label, a in answers.items() if label != "both"
        )
        if answers["both"] is not True:
            missed = f"{user.username}'s {_key(key)} at {level:g}: {_answer(answers['both'])}"
            return Check(name, FAIL, f"EQUAL with both bounds equal misses {missed}; {said}")
        return Check(name, OK, f"both bounds (what the tool sends) find it; {said}")

    def _string_case(self, users: list[Holding]) -> Check:
        name = "string-case"
        holdings = (
            (u, k)
            for u in users
            for k in u.proficiencies
            if _searchable(k) and k[1].swapcase() != k[1]
        )
        holding = next(holdings, None)
        if holding is None:
            return Check(name, SKIP, "no sampled user holds a value with letters")
        user, (attribute, value) = holding
        found = self._finds(user, proficiency_condition(attribute, value.swapcase()))
        asked = f"{_key((attribute, value.swapcase()))} for {user.username}'s {value}"
        if isinstance(found, str):
            return Check(name, WARN, f"a value in other case is refused ({found}): {asked}")
        how = "ignoring case" if found else "case-sensitively"
        return Check(
            name,
            OK,
            f"values match {how} ({asked}); the tool sends the service's own spelling",
        )

    def _short_values(self, users: list[Holding]) -> Check:
        name = "short-values"
        shorts = (
            (u, k)
            for u in users
            for k in u.proficiencies
            if searchable(k[0]) and not searchable(k[1])
        )
        holding = next(shorts, None)
        if holding is None:
            return Check(name, SKIP, "no sampled user holds a value shorter than 2 characters")
        user, key = holding
        found = self._finds(user, proficiency_condition(*key))
        how = (
            "matched" if found is True else "unmatched" if found is False else f"refused ({found})"
        )
        return Check(name, OK, f"a 1-character value is {how}; the tool never searches for one")

    def _max_or_conditions(self, users: list[Holding]) -> Check:
        name = "max-or-conditions"
        accepted = 0
        for size in OR_PROBES:
            alternatives = [username_is(f"connect-reconciler-probe-{n}") for n in range(size)]
            try:
                self.reader.call(
                    "SearchUsers", MaxResults=1, SearchCriteria={"OrConditions": alternatives}
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "InvalidParameterException":
                    raise
                break
            accepted = size
        if accepted < MAX_OR_CONDITIONS:
            said = f"{MAX_OR_CONDITIONS} OR'ed conditions are refused"
            return Check(name, WARN, f"{said}: the tool halves its lists until taken (more calls)")
        return Check(
            name, OK, f"{accepted} OR'ed conditions taken (the tool sends {MAX_OR_CONDITIONS})"
        )

    def _contact_order(self, users: list[Holding]) -> Check:
        name = "contact-order"
        window = _window(days=30)
        try:
            unsorted = self.reader.call("SearchContacts", TimeRange=window, MaxResults=10)
        except ClientError as exc:
            if access_denied(exc) is None:
                raise
            return Check(name, SKIP, "contacts cannot be read with these credentials")
        contacts = unsorted.get("Contacts") or []
        if len(contacts) < 2:
            return Check(name, SKIP, "fewer than two contacts in the last 30 days")
        newest = {"FieldName": "INITIATION_TIMESTAMP", "Order": "DESCENDING"}
        ordered = self.reader.call("SearchContacts", TimeRange=window, MaxResults=10, Sort=newest)
        first = (ordered.get("Contacts") or [{}])[0].get("Id")
        how = "newest first" if contacts[0].get("Id") == first else "not newest first"
        return Check(name, OK, f"without a Sort, contacts come {how}; the tool always sends one")


def _window(days: int) -> dict[str, Any]:
    now = time.time()
    return {"Type": "INITIATION_TIMESTAMP", "StartTime": now - days * 86400, "EndTime": now}


def _searchable(key: tuple[str, str]) -> bool:
    return searchable(key[0]) and searchable(key[1])


def _key(key: tuple[str, str]) -> str:
    return f"{key[0]}/{key[1]}"


def _answer(answer: bool | str) -> str:
    if isinstance(answer, str):
        return f"refused ({answer})"
    return "found" if answer else "not found"


def _failure(exc: Exception) -> str:
    return access_denied(exc) or str(exc)


# Reads the plan policy does not grant, and who needs them: denied, a
# warning (the role doctor runs with may be a pull request's plan role).
_OTHER_ROLES = {
    **{operation: "coverage --from-contacts and explain" for operation in AUDIT_OPERATIONS},
    **{operation: "apply" for operation in APPLY_READS},
}


def _read_failure(operation: str, exc: Exception) -> Check:
    """A read that failed: a failed check, but a warning for a denied read
    only the contact audits or apply make, saying who needs it."""
    name = f"read connect:{operation}"
    if operation in _OTHER_ROLES and access_denied(exc) is not None:
        return Check(name, WARN, f"{_failure(exc)}; only {_OTHER_ROLES[operation]} need it")
    return Check(name, FAIL, _failure(exc))


def _clock(headers: dict[str, str]) -> Check:
    stamp = headers.get("date")
    if not stamp:
        return Check("clock", SKIP, "the response carries no Date header")
    skew = time.time() - parsedate_to_datetime(stamp).timestamp()
    said = f"this machine is {abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} the service"
    if abs(skew) > CLOCK_SKEW_FAIL:
        return Check("clock", FAIL, f"{said}: signed requests are refused beyond 5 minutes")
    return Check("clock", WARN if abs(skew) > CLOCK_SKEW_WARN else OK, said)


_MARKS = {OK: "✓", WARN: "!", FAIL: "✗", SKIP: "-"}


def render(checks: list[Check], fmt: str) -> str:
    """The checks as text (a line each), JSON, or a Markdown table."""
    if fmt == "json":
        return json.dumps(report(checks), indent=2)
    if fmt == "markdown":
        rows = [
            f"| {c.status} | {markdown_cell(c.name)} | {markdown_cell(c.detail)} |" for c in checks
        ]
        head = ["### connect-reconciler doctor", "", "| status | check | detail |", "|---|---|---|"]
        return "\n".join([*head, *rows])
    lines = [f"{_MARKS[c.status]} {c.status:4}  {c.name}: {c.detail}" for c in checks]
    failed = sum(c.status == FAIL for c in checks)
    lines.append(f"{len(checks)} checks, {failed} failed")
    return "\n".join(lines)
