"""Throttling at a quota, injected faults and the call counters."""

from __future__ import annotations

import http.client
import json
import re
import socket
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from reconciler.emulator import ConnectEmulator, FaultPlan, backend_from_snapshot
from reconciler.emulator.server import MAX_BODY_BYTES, MAX_JSON_DEPTH, MAX_WORKERS, json_too_deep
from reconciler.service.quotas import DEFAULT_QUOTAS, Quota, TokenBucket, pacing_quota
from tests.conftest import INSTANCE_ID, ManualClock, small_snapshot

IN = {"InstanceId": INSTANCE_ID}
SCALE = 50.0  # the default 2 requests/s runs at 100/s


def codes(client, calls: int) -> list[str]:
    results = []
    for _ in range(calls):
        try:
            client.list_routing_profiles(**IN)
            results.append("ok")
        except ClientError as error:
            results.append(error.response["Error"]["Code"])
    return results


def test_a_burst_beyond_the_quota_is_throttled_with_429(connect) -> None:
    emulator, client = connect
    # Slow the bucket right down so the burst is all that is available.
    emulator.reset(backend_from_snapshot(small_snapshot()), quota_scale=0.001)
    results = codes(client, 8)
    burst = DEFAULT_QUOTAS["ListRoutingProfiles"].burst
    assert results == ["ok"] * burst + ["ThrottlingException"] * (8 - burst)
    assert emulator.stats.snapshot()["ListRoutingProfiles"]["throttled"] == 8 - burst
    with pytest.raises(ClientError) as raised:
        client.list_routing_profiles(**IN)
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429


def test_quotas_are_per_operation(connect) -> None:
    emulator, client = connect
    emulator.reset(backend_from_snapshot(small_snapshot()), quota_scale=0.001)
    codes(client, 8)
    client.list_users(**IN)  # another API's bucket is untouched


def test_calls_paced_at_the_quota_are_never_throttled(connect) -> None:
    emulator, client = connect
    clock = ManualClock()
    emulator.reset(backend_from_snapshot(small_snapshot()), quota_scale=SCALE, clock=clock)
    pacer = TokenBucket(
        pacing_quota(DEFAULT_QUOTAS["ListRoutingProfiles"]), SCALE, clock, clock.sleep
    )
    for _ in range(40):
        pacer.take()
        client.list_routing_profiles(**IN)
    assert emulator.stats.snapshot()["ListRoutingProfiles"] == {"calls": 40, "ok": 40}


def test_quota_overrides(connect) -> None:
    emulator, client = connect
    emulator.reset(
        backend_from_snapshot(small_snapshot()),
        quota_scale=0.001,
        quotas={"ListRoutingProfiles": Quota(rate=1, burst=2)},
    )
    assert codes(client, 3) == ["ok", "ok", "ThrottlingException"]
    # the next reset forgets the override
    emulator.reset(backend_from_snapshot(small_snapshot()), quota_scale=0.001)
    assert emulator.quotas == {}


def test_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    slept: list[float] = []
    bucket = TokenBucket(
        Quota(rate=2, burst=2),
        time_scale=1,
        clock=lambda: now[0],
        sleep=lambda s: (slept.append(s), now.__setitem__(0, now[0] + s)),
    )
    assert [bucket.try_take() for _ in range(3)] == [0, 0, 0.5]
    assert bucket.take() == pytest.approx(0.5)
    now[0] += 10
    assert (
        bucket.try_take() == 0 and bucket.try_take() == 0 and bucket.try_take() > 0
    )  # never more than the burst


@pytest.mark.parametrize(
    ("fault", "code"), [("error", "InternalServiceException"), ("throttle", "ThrottlingException")]
)
def test_injected_errors(connect, fault, code) -> None:
    emulator, client = connect
    emulator.set_faults(FaultPlan(**{fault: 1.0}))
    with pytest.raises(ClientError) as raised:
        client.list_users(**IN)
    assert raised.value.response["Error"]["Code"] == code


@pytest.mark.parametrize(("fault", "applied"), [("drop_before", False), ("drop_after", True)])
def test_dropped_connections_before_and_after_the_write(connect, fault, applied) -> None:
    emulator, client = connect
    emulator.set_faults(FaultPlan(**{fault: 1.0}))
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        client.associate_user_proficiencies(
            **IN,
            UserId="id-ann",
            UserProficiencies=[
                {"AttributeName": "Language", "AttributeValue": "French", "Level": 2}
            ],
        )
    emulator.set_faults(FaultPlan())
    held = client.list_user_proficiencies(**IN, UserId="id-ann")["UserProficiencyList"]
    assert bool(held) is applied
    assert emulator.stats.snapshot()["AssociateUserProficiencies"]["dropped"] == 1


def test_faults_are_seeded_and_reproducible(connect) -> None:
    emulator, client = connect

    def run() -> list[str]:
        emulator.set_faults(FaultPlan(error=0.3, throttle=0.3, seed=42))
        return codes(client, 30)

    first = run()
    assert first == run()
    assert {"ok", "InternalServiceException", "ThrottlingException"} <= set(first)


def test_latency_is_added(connect) -> None:
    import time

    emulator, client = connect
    emulator.set_faults(FaultPlan(latency=0.05))
    started = time.perf_counter()
    client.list_users(**IN)
    assert time.perf_counter() - started >= 0.05


def test_denied_operations_fail_as_access_denied_and_others_run(connect) -> None:
    emulator, client = connect
    emulator.set_faults(FaultPlan(deny_operations=("ListUsers",)))
    with pytest.raises(ClientError) as raised:
        client.list_users(**IN)
    assert raised.value.response["Error"]["Code"] == "AccessDeniedException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert client.search_users(**IN)["Users"]


def test_fault_spec_parsing() -> None:
    plan = FaultPlan.parse(
        "error=0.05,throttle=0.2,drop_before=0.01,drop_after=0.02,latency=0.003,seed=7"
    )
    assert plan == FaultPlan(0.05, 0.2, 0.01, 0.02, 0.003, 7)
    assert FaultPlan.parse("deny_operations=ListUsers+SearchUsers,reject_users=a+b") == FaultPlan(
        reject_users=("a", "b"), deny_operations=("ListUsers", "SearchUsers")
    )
    with pytest.raises(ValueError, match="no Connect operation 'ListUser'"):
        FaultPlan.parse("deny_operations=ListUser")
    with pytest.raises(ValueError, match="unknown fault 'typo'"):
        FaultPlan.parse("typo=1")


def control(emulator, method: str, action: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{emulator.url}/_emulator/{action}", data=data, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_quota_scale_changes_over_http(connect) -> None:
    emulator, client = connect
    # ListUsers: burst 5 at 2/s (docs/design.md §4); at 0.001x a token takes 500 s
    assert control(emulator, "PUT", "quota-scale", {"scale": 0.001}) == {"scale": 0.001}
    for _ in range(5):
        client.list_users(**IN)
    with pytest.raises(ClientError, match="Throttling"):
        client.list_users(**IN)
    assert control(emulator, "PUT", "quota-scale", {"scale": None}) == {"scale": None}
    for _ in range(10):
        client.list_users(**IN)
    bad_scales = [0, -1, 10**400, 1e6, float("nan"), "fast", True]
    for bad in [{"scale": scale} for scale in bad_scales] + [{}, [1]]:
        with pytest.raises(urllib.error.HTTPError) as raised:
            control(emulator, "PUT", "quota-scale", bad)
        assert raised.value.code == 400
    assert emulator.quota_scale is None  # a refused change changes nothing


def test_counters_over_http_and_reset(connect) -> None:
    emulator, client = connect
    client.list_users(**IN)
    client.list_users(**IN)
    with pytest.raises(ClientError):
        client.describe_user(**IN, UserId="nobody")
    stats = control(emulator, "GET", "stats")
    assert stats["ListUsers"] == {"calls": 2, "ok": 2}
    assert stats["DescribeUser"] == {"calls": 1, "client_error": 1}
    assert emulator.stats.total("calls") == 3
    control(emulator, "POST", "reset")
    assert control(emulator, "GET", "stats") == {}


def test_faults_and_snapshot_over_http(connect) -> None:
    emulator, client = connect
    assert control(emulator, "PUT", "faults", {"error": 1.0, "seed": 3})["error"] == 1.0
    with pytest.raises(ClientError):
        client.list_users(**IN)
    control(emulator, "PUT", "faults", {})
    snapshot = control(emulator, "GET", "snapshot")
    assert {u["User"]["Username"] for u in snapshot["Users"]} == {"jane", "joe", "ann"}
    with pytest.raises(urllib.error.HTTPError):
        control(emulator, "GET", "nothing")


# -- hostile clients (issue 14) -------------------------------------------------


def raw_exchange(emulator, request: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes to the emulator and read until it closes or answers."""
    host, port = emulator._server.server_address[:2]
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(request)
        received = b""
        while b"\r\n\r\n" not in received or not _complete(received):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def _complete(received: bytes) -> bool:
    head, _, body = received.partition(b"\r\n\r\n")
    match = re.search(rb"Content-Length: (\d+)", head)
    return match is not None and len(body) >= int(match.group(1))


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


@pytest.mark.parametrize("length", [b"abc", b"-1", b"1e3", b"\xd9\xa3"])
def test_an_invalid_content_length_is_a_400(connect, length: bytes) -> None:
    emulator, client = connect
    response = raw_exchange(
        emulator, b"PUT /_emulator/faults HTTP/1.1\r\nContent-Length: " + length + b"\r\n\r\n{}"
    )
    assert status_of(response) == 400
    assert b"SerializationException" in response
    client.list_users(**IN)  # the server is still up


def test_a_body_over_the_limit_is_refused_unread_with_413(connect) -> None:
    emulator, _ = connect
    # Only the headers are sent: the answer must not wait for 2 GB.
    response = raw_exchange(
        emulator, b"PUT /_emulator/faults HTTP/1.1\r\nContent-Length: 2000000000\r\n\r\n"
    )
    assert status_of(response) == 413
    assert b"Connection: close" in response


def test_deeply_nested_json_is_a_400_serialization_exception(connect) -> None:
    emulator, _ = connect
    body = b"[" * 100_000 + b"]" * 100_000
    assert len(body) <= MAX_BODY_BYTES
    request = urllib.request.Request(f"{emulator.url}/_emulator/faults", data=body, method="PUT")
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)
    assert raised.value.code == 400
    assert raised.value.headers["x-amzn-ErrorType"] == "SerializationException"
    # brackets inside strings are not nesting
    assert not json_too_deep(b'{"a": "' + b"[" * 1000 + b'"}')
    assert json_too_deep(b'{"a": ' + b"[" * (MAX_JSON_DEPTH + 1) + b"]")
    # many brackets, shallow nesting; escaped quotes do not end a string
    assert not json_too_deep(b"[" + b"[]," * 100 + b'"\\"[[[", []]')
    assert json_too_deep(b'["\\"", ' + b"[" * MAX_JSON_DEPTH + b"]")


@pytest.mark.parametrize(
    "plan",
    [
        {"error": "abc"},
        {"error": 2},
        {"throttle": True},
        {"latency": -1},
        {"latency": 1e9},
        {"seed": 1.5},
        {"reject_users": "id-ann"},
        {"deny_operations": "ListUsers"},
        {"deny_operations": [1]},
        {"deny_operations": ["Nonsense"]},
        {"nonsense": 1},
        [],
    ],
)
def test_nonsense_fault_settings_are_refused_and_change_nothing(connect, plan) -> None:
    emulator, client = connect
    request = urllib.request.Request(
        f"{emulator.url}/_emulator/faults", data=json.dumps(plan).encode(), method="PUT"
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)
    assert raised.value.code == 400
    assert emulator.faults == FaultPlan()
    client.list_users(**IN)


def test_fault_spec_values_are_validated() -> None:
    with pytest.raises(ValueError, match="error must be a number"):
        FaultPlan.parse("error=abc")
    with pytest.raises(ValueError, match="rate from 0 to 1"):
        FaultPlan.parse("throttle=1.5")


def test_idle_connections_are_closed_after_the_read_timeout() -> None:
    emulator = ConnectEmulator(backend_from_snapshot(small_snapshot()), read_timeout=0.2).start()
    try:
        host, port = emulator._server.server_address[:2]
        with socket.create_connection((host, port), timeout=10) as sock:
            sock.sendall(b"GET /_emulator/stats HTTP/1.1\r\nContent-Le")  # and then nothing
            # The server gives up on the half-sent request and closes.
            assert sock.recv(1024) == b""
    finally:
        emulator.stop()


def test_backlog_and_workers_are_bounded(connect) -> None:
    emulator, _ = connect
    assert emulator._server.request_queue_size >= 128
    assert emulator._server._workers._value <= MAX_WORKERS


def test_fifty_threads_of_requests_are_all_answered_correctly(connect) -> None:
    emulator, _ = connect
    host, port = emulator._server.server_address[:2]
    path = f"/routing-profiles-summary/{INSTANCE_ID}"

    def client_thread(_: int) -> list[int]:
        connection = http.client.HTTPConnection(host, port, timeout=30)
        try:
            statuses = []
            for _ in range(60):
                connection.request("GET", path)
                response = connection.getresponse()
                body = json.loads(response.read())
                statuses.append(response.status)
                assert len(body["RoutingProfileSummaryList"]) == 2
            return statuses
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(client_thread, range(50)))
    assert [s for statuses in results for s in statuses] == [200] * 3_000
    assert emulator.stats.snapshot()["ListRoutingProfiles"] == {"calls": 3_000, "ok": 3_000}
