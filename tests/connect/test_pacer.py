"""QuotaPacer against the emulator: paced calls are not throttled; transient
failures are retried; a dropped write is reported as ambiguous."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from reconciler.connect.client import connect_client
from reconciler.connect.pacer import (
    RETRY_BUDGET_CAPACITY,
    RETRY_COST,
    TIMEOUT_RETRY_COST,
    AmbiguousWrite,
    QuotaBuckets,
    QuotaPacer,
    RetryBudget,
    RetryBudgetExhausted,
)
from reconciler.emulator import ConnectEmulator, FaultPlan, backend_from_snapshot
from reconciler.service.quotas import Quota, pacing_quota, quota_for
from tests.conftest import INSTANCE_ID, ManualClock, small_snapshot

IN = {"InstanceId": INSTANCE_ID}
# Quotas run 10x faster. The pacing tests share a ManualClock with the
# emulator, so the machine's load never reaches what they measure.
SCALE = 10.0


def test_paced_concurrent_calls_are_never_throttled(connect) -> None:
    emulator, client = connect
    clock = ManualClock()
    emulator.reset(backend_from_snapshot(small_snapshot()), quota_scale=SCALE, clock=clock)
    pacer = QuotaPacer(client, time_scale=SCALE, clock=clock, sleep=clock.sleep)
    operations = ["ListUsers", "ListRoutingProfiles", "SearchPredefinedAttributes"]

    # The operations run concurrently, each on its own thread and bucket. On
    # the shared clock one operation's calls reach the emulator in the order
    # they were paced, so what passes the pacer passes the emulator whatever
    # the machine's load (several threads of one operation could overtake
    # each other in flight: that is scheduling, not pacing).
    def fifteen_calls(operation: str) -> None:
        for _ in range(15):
            pacer.call(operation, **IN)

    with ThreadPoolExecutor(len(operations)) as pool:
        list(pool.map(fifteen_calls, operations))
    stats = emulator.stats.snapshot()
    assert emulator.stats.total("throttled") == 0
    assert {op: s["calls"] for op, s in stats.items()} == dict.fromkeys(operations, 15)
    assert sum(pacer.retries.values()) == 0


def test_quota_overrides_are_paced(connect) -> None:
    emulator, client = connect
    slow = {"ListUsers": Quota(rate=1, burst=1)}
    clock = ManualClock()
    emulator.reset(
        backend_from_snapshot(small_snapshot()), quota_scale=SCALE, quotas=slow, clock=clock
    )
    pacer = QuotaPacer(client, overrides=slow, time_scale=SCALE, clock=clock, sleep=clock.sleep)
    start = clock()
    for _ in range(10):
        pacer.call("ListUsers", **IN)
    assert emulator.stats.total("throttled") == 0
    # nine waits at the paced rate (just under 1/s), none longer
    assert 9 / SCALE < clock() - start < 9 / (SCALE * 0.8)
    assert pacer.quota("ListUsers") == Quota(1, 1)


@pytest.mark.parametrize("fault", ["throttle", "error", "drop_before"])
def test_transient_read_failures_are_retried(connect, fault) -> None:
    emulator, client = connect
    emulator.set_faults(FaultPlan(**{fault: 0.5}, seed=4))
    pacer = QuotaPacer(client, time_scale=1000, seed=1)
    for _ in range(20):
        assert pacer.call("ListUsers", **IN)["UserSummaryList"]
    assert pacer.retries["ListUsers"] > 0
    assert pacer.calls["ListUsers"] == 20 + pacer.retries["ListUsers"]


def test_a_dropped_write_is_ambiguous_not_retried(connect) -> None:
    emulator, client = connect
    emulator.set_faults(FaultPlan(drop_after=1.0))
    pacer = QuotaPacer(client, time_scale=1000)
    with pytest.raises(AmbiguousWrite) as raised:
        pacer.call("AssociateUserProficiencies", **IN, UserId="id-ann",
                   UserProficiencies=[{"AttributeName": "Language", "AttributeValue": "French", "Level": 2}])  # fmt: skip
    assert raised.value.operation == "AssociateUserProficiencies"
    assert emulator.stats.calls("AssociateUserProficiencies") == 1


def test_client_errors_are_not_retried(connect) -> None:
    emulator, client = connect
    pacer = QuotaPacer(client, time_scale=1000)
    with pytest.raises(ClientError):
        pacer.call("DescribeUser", **IN, UserId="nobody")
    assert emulator.stats.calls("DescribeUser") == 1


def test_retries_give_up_after_max_attempts(connect) -> None:
    emulator, client = connect
    emulator.set_faults(FaultPlan(error=1.0))
    pacer = QuotaPacer(client, time_scale=1000, max_attempts=3)
    with pytest.raises(ClientError):
        pacer.call("ListUsers", **IN)
    assert emulator.stats.calls("ListUsers") == 3


def test_pages_follows_tokens(connect) -> None:
    _, client = connect
    pacer = QuotaPacer(client, time_scale=1000)
    users = pacer.pages("ListUsers", "UserSummaryList", **IN, MaxResults=1)
    assert sorted(u["Username"] for u in users) == ["ann", "jane", "joe"]
    assert pacer.calls["ListUsers"] == 3


# -- the retry budget (the SDKs' standard retry quota) -------------------------


def test_an_outage_spends_the_retry_budget_then_calls_fail_at_once(connect) -> None:
    emulator, client = connect
    emulator.set_faults(FaultPlan(error=1.0))
    pacer = QuotaPacer(client, time_scale=1000, max_attempts=8)
    outcomes = []
    for _ in range(20):
        with pytest.raises((ClientError, RetryBudgetExhausted)) as raised:
            pacer.call("ListUsers", **IN)
        outcomes.append(isinstance(raised.value, RetryBudgetExhausted))
    # 500 tokens at 5 a retry: 100 retries in all, then no call is retried.
    assert pacer.retries["ListUsers"] == RETRY_BUDGET_CAPACITY // RETRY_COST == 100
    assert emulator.stats.calls("ListUsers") == 20 + 100
    # 14 calls x 7 retries = 98 retries; the 15th retries twice and runs dry
    assert outcomes == [False] * 14 + [True] * 6
    assert pacer.budget.available < RETRY_COST


def test_successes_refill_the_budget(connect) -> None:
    emulator, client = connect
    pacer = QuotaPacer(client, time_scale=1000)
    pacer.budget.available = 0
    for _ in range(3):
        pacer.call("ListUsers", **IN)
    assert pacer.budget.available == 3  # one token back per call that needed no retry
    pacer.budget.available = 100
    emulator.set_faults(FaultPlan(error=0.5, seed=4))
    while True:
        before, retries_before = pacer.budget.available, pacer.retries["ListUsers"]
        pacer.call("ListUsers", **IN)
        retried = pacer.retries["ListUsers"] - retries_before
        if retried:
            break
    # each retry took 5; the success gave back what its last retry cost
    assert pacer.budget.available == before - RETRY_COST * retried + RETRY_COST


def test_throttles_do_not_spend_the_budget(connect) -> None:
    emulator, client = connect
    emulator.set_faults(FaultPlan(throttle=1.0))
    pacer = QuotaPacer(client, time_scale=1000, max_attempts=4)
    with pytest.raises(ClientError, match="Throttling"):
        pacer.call("ListUsers", **IN)
    assert pacer.retries["ListUsers"] == 3
    assert pacer.budget.available == RETRY_BUDGET_CAPACITY


def test_a_timeout_costs_twice_a_retry() -> None:
    budget = RetryBudget(capacity=15)
    assert budget.acquire(TIMEOUT_RETRY_COST) and budget.acquire(RETRY_COST)
    assert not budget.acquire(RETRY_COST)
    budget.release(100)
    assert budget.available == 15  # never above the capacity


def test_an_endpoint_never_reached_fails_at_once() -> None:
    client = connect_client(endpoint_url="http://127.0.0.1:9", emulator=True)
    pacer = QuotaPacer(client, time_scale=1000)
    with pytest.raises(EndpointConnectionError):
        pacer.call("ListUsers", **IN)
    assert pacer.calls["ListUsers"] == 1 and pacer.retries["ListUsers"] == 0


def test_an_endpoint_lost_after_answering_is_retried() -> None:
    server = ConnectEmulator(backend_from_snapshot(small_snapshot())).start()
    try:
        pacer = QuotaPacer(connect_client(endpoint_url=server.url, emulator=True),
                           time_scale=1000, max_attempts=3)  # fmt: skip
        assert pacer.call("ListUsers", **IN)["UserSummaryList"]
    finally:
        server.stop()
    # Drop the kept-alive connection, so the next call has to connect anew.
    pacer.client._endpoint.http_session.close()
    with pytest.raises(EndpointConnectionError):
        pacer.call("ListUsers", **IN)
    assert pacer.retries["ListUsers"] == 2


def test_pacers_sharing_buckets_draw_on_one_quota(connect) -> None:
    """Two instances of one account and region: their pacers share a bucket
    per API, so together they keep the one quota (the emulator's buckets
    are shared the same way, and throttle nothing)."""
    emulator, _ = connect
    clock = ManualClock()
    emulator.reset(backend_from_snapshot(small_snapshot()), quota_scale=SCALE, clock=clock)
    shared = QuotaBuckets(time_scale=SCALE, clock=clock, sleep=clock.sleep)
    pacers = [  # a client each, as each environment has
        QuotaPacer(
            connect_client(endpoint_url=emulator.url, emulator=True),
            time_scale=SCALE, clock=clock, sleep=clock.sleep, buckets=shared,
        )
        for _ in range(2)
    ]  # fmt: skip

    def twenty_calls(pacer: QuotaPacer) -> None:
        for _ in range(20):
            pacer.call("ListUsers", **IN)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(twenty_calls, pacers))
    assert emulator.stats.total("throttled") == 0
    assert [p.calls["ListUsers"] for p in pacers] == [20, 20]
    # 40 calls on one bucket: the time one quota needs for 40, not for 20
    quota = pacing_quota(quota_for("ListUsers", {}))
    assert clock() >= (40 - quota.burst) / (quota.rate * SCALE) * 0.99
