"""Where the conformance tests run: the emulator (always), or a real instance.

Against AWS (when CONNECT_CONFORMANCE_INSTANCE_ID is set) the suite
- creates only predefined attributes named with a prefix unique to the run,
- touches only the users named in CONNECT_CONFORMANCE_USERS (comma-separated
  usernames), recording their proficiencies first and restoring them after
  every test,
- deletes every attribute it created, in fixture finalizers, which pytest runs
  also on Ctrl-C (SIGTERM is turned into the same).
Region and credentials come from the usual AWS environment (AWS_REGION or
CONNECT_CONFORMANCE_REGION, AWS_PROFILE, ...).
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

INSTANCE_ENV = "CONNECT_CONFORMANCE_INSTANCE_ID"
USERS_ENV = "CONNECT_CONFORMANCE_USERS"
REGION_ENV = "CONNECT_CONFORMANCE_REGION"
EMULATED_INSTANCE = "c0c0c0c0-0000-4000-8000-000000000001"
EMULATED_USERS = ("conformance-a", "conformance-b")
# How long AWS may take to show a write in search results (eventual consistency).
AWS_SEARCH_WAIT = 60.0


@dataclass
class Endpoint:
    """One Connect instance under test and what the run created on it."""

    name: str  # "emulator" or "aws"
    client: Any
    instance_id: str
    users: dict[str, str]  # username -> user id
    prefix: str
    created: list[str] = field(default_factory=list)
    observed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def on_aws(self) -> bool:
        return self.name == "aws"

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """One API call on this instance."""
        method = getattr(self.client, _snake(operation))
        return method(InstanceId=self.instance_id, **params)

    def error(self, operation: str, **params: Any) -> tuple[str, int]:
        """The (error code, HTTP status) a call fails with, or ("", 200)."""
        try:
            self.call(operation, **params)
        except ClientError as exc:
            return exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"]
        return "", 200

    def new_attribute(self, values: list[str], **params: Any) -> str:
        """Create an attribute named uniquely for this run; deleted at the end."""
        name = f"{self.prefix}{uuid.uuid4().hex[:8]}"
        self.call("CreatePredefinedAttribute", Name=name, Values={"StringList": values}, **params)
        self.created.append(name)
        return name

    def proficiencies(self, username: str) -> dict[tuple[str, str], float]:
        listed = self.call("ListUserProficiencies", UserId=self.users[username])
        return {
            (p["AttributeName"], p["AttributeValue"]): p["Level"]
            for p in listed["UserProficiencyList"]
        }

    def eventually(self, check: Callable[[], bool]) -> bool:
        """`check()` until it holds: at once on the emulator; on AWS, whose
        search index trails writes, polling for up to AWS_SEARCH_WAIT."""
        deadline = time.monotonic() + (AWS_SEARCH_WAIT if self.on_aws else 0)
        while True:
            if check():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(2)

    def observe(self, behaviour: str, choice: str) -> None:
        """Record what an undocumented behaviour turned out to be here."""
        self.observed.append((behaviour, choice))


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def _client(**options: Any) -> Any:
    config = Config(retries={"mode": "standard", "total_max_attempts": 4})
    return boto3.session.Session(**options).client("connect", config=config)


def _emulator() -> Iterator[Endpoint]:
    from reconciler.emulator import ConnectEmulator, backend_from_snapshot

    snapshot = {
        "Instance": {"Id": EMULATED_INSTANCE, "InstanceStatus": "ACTIVE"},
        "Users": [
            {"User": {"Id": f"id-{name}", "Username": name}, "Proficiencies": []}
            for name in EMULATED_USERS
        ],
        "PredefinedAttributes": [
            {"Name": "connect:Subtype", "Values": {"StringList": ["connect:Chat"]},
             "AttributeConfiguration": {"IsReadOnly": True}},
            {"Name": "connect:Language", "Values": {"StringList": ["en-US", "es-ES"]},
             "AttributeConfiguration": {"IsReadOnly": False}},
        ],
        "Contacts": [
            {"Id": f"c-{n}", "Channel": "VOICE", "InitiationMethod": "INBOUND",
             "InitiationTimestamp": time.time() - 3600 * (n + 1)}
            for n in range(3)
        ],
    }  # fmt: skip
    with ConnectEmulator(backend_from_snapshot(snapshot), check_responses=True) as server:
        session = {
            "aws_access_key_id": "conformance",
            "aws_secret_access_key": "conformance",
            "region_name": "us-east-1",
        }
        client = boto3.session.Session(**session).client(
            "connect",
            endpoint_url=server.url,
            config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
        )
        users = {name: f"id-{name}" for name in EMULATED_USERS}
        yield Endpoint("emulator", client, EMULATED_INSTANCE, users, "conformance-")


def _aws(read_only: bool) -> Iterator[Endpoint]:
    region = os.environ.get(REGION_ENV) or os.environ.get("AWS_REGION")
    client = _client(region_name=region)
    instance_id = os.environ[INSTANCE_ENV]
    wanted = [u.strip() for u in os.environ.get(USERS_ENV, "").split(",") if u.strip()]
    if not wanted and not read_only:
        pytest.exit(f"{USERS_ENV} must name at least one user the suite may change", 1)
    users = {}
    for username in wanted:
        found = client.search_users(
            InstanceId=instance_id,
            SearchCriteria={
                "StringCondition": {
                    "FieldName": "Username",
                    "Value": username,
                    "ComparisonType": "EXACT",
                }
            },
        )["Users"]
        if len(found) != 1:
            pytest.exit(f"{USERS_ENV}: no single user named {username!r}", 1)
        users[username] = found[0]["Id"]
    prefix = f"conformance-{uuid.uuid4().hex[:6]}-"
    yield Endpoint("aws", client, instance_id, users, prefix)


def _endpoints() -> list[str]:
    return ["emulator", "aws"] if os.environ.get(INSTANCE_ENV) else ["emulator"]


@pytest.fixture(scope="session", params=_endpoints())
def endpoint_session(request: pytest.FixtureRequest) -> Iterator[Endpoint]:
    """The endpoint for the session; deletes what the run created on teardown."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    read_only = bool(request.config.getoption("--read-only"))
    opened = _emulator() if request.param == "emulator" else _aws(read_only)
    endpoint = next(opened)
    try:
        yield endpoint
    finally:
        for name in endpoint.created:
            try:
                endpoint.call("DeletePredefinedAttribute", Name=name)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                    print(f"conformance: could not delete {name}: {exc}")
        opened.close()
        signal.signal(signal.SIGTERM, previous)
        _REPORTS.append((endpoint.name, endpoint.observed))


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@pytest.fixture
def endpoint(endpoint_session: Endpoint) -> Iterator[Endpoint]:
    """The endpoint for one test; the users' proficiencies are restored after it."""
    before = {u: endpoint_session.proficiencies(u) for u in endpoint_session.users}
    try:
        yield endpoint_session
    finally:
        for username, held in before.items():
            _restore(endpoint_session, username, held)


def _restore(endpoint: Endpoint, username: str, wanted: dict[tuple[str, str], float]) -> None:
    now = endpoint.proficiencies(username)
    user_id = endpoint.users[username]

    def entries(keys: Any, levels: dict[tuple[str, str], float] | None = None) -> list[dict]:
        return [
            {"AttributeName": a, "AttributeValue": v, **({"Level": levels[a, v]} if levels else {})}
            for a, v in keys
        ]

    extra = [k for k in now if k not in wanted]
    if extra:
        endpoint.call(
            "DisassociateUserProficiencies", UserId=user_id, UserProficiencies=entries(extra)
        )
    changed = [k for k in wanted if k in now and now[k] != wanted[k]]
    if changed:
        endpoint.call(
            "UpdateUserProficiencies", UserId=user_id, UserProficiencies=entries(changed, wanted)
        )
    lost = [k for k in wanted if k not in now]
    if lost:
        endpoint.call(
            "AssociateUserProficiencies", UserId=user_id, UserProficiencies=entries(lost, wanted)
        )


_REPORTS: list[tuple[str, list[tuple[str, str]]]] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "undocumented: an API behaviour no AWS documentation states; against AWS the "
        "test reports the choice the service makes",
    )
    config.addinivalue_line(
        "markers", "read_only: makes no write (the --read-only subset, safe against production)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--read-only"):
        writes = pytest.mark.skip(reason="--read-only: this test writes")
        for item in items:
            if "read_only" not in item.keywords:
                item.add_marker(writes)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for name, observed in _REPORTS:
        if name == "aws" and observed:
            terminalreporter.section("undocumented Connect behaviours, as AWS answered")
            for behaviour, choice in observed:
                terminalreporter.write_line(f"{behaviour}: {choice}")
