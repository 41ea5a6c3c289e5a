"""Throttling at a quota, injected faults and the call counters."""

from __future__ import annotations

import json
import urllib.request

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from reconciler.connect.quotas import DEFAULT_QUOTAS, Quota, TokenBucket, pacing_quota
from reconciler.emulator import FaultPlan, backend_from_snapshot
from tests.conftest import INSTANCE_ID, small_snapshot

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
    emulator.reset(backend_from_snapshot(small_snapshot()), quota_scale=SCALE)
    pacer = TokenBucket(pacing_quota(DEFAULT_QUOTAS["ListRoutingProfiles"]), SCALE)
    for _ in range(40):
        pacer.take()
        client.list_routing_profiles(**IN)
    assert emulator.stats.snapshot()["ListRoutingProfiles"] == {"calls": 40, "ok": 40}


def test_quota_overrides(connect) -> None:
    emulator, client = connect
    emulator.reset(backend_from_snapshot(small_snapshot()), quota_scale=0.001)
    emulator.quotas = {"ListRoutingProfiles": Quota(rate=1, burst=2)}
    assert codes(client, 3) == ["ok", "ok", "ThrottlingException"]


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


def test_fault_spec_parsing() -> None:
    plan = FaultPlan.parse(
        "error=0.05,throttle=0.2,drop_before=0.01,drop_after=0.02,latency=0.003,seed=7"
    )
    assert plan == FaultPlan(0.05, 0.2, 0.01, 0.02, 0.003, 7)
    with pytest.raises(ValueError, match="unknown fault 'typo'"):
        FaultPlan.parse("typo=1")


def control(emulator, method: str, action: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{emulator.url}/_emulator/{action}", data=data, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


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
