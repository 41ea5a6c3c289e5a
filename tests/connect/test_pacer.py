"""QuotaPacer against the emulator: paced calls are not throttled; transient
failures are retried; a dropped write is reported as ambiguous."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from reconciler.connect.pacer import AmbiguousWrite, QuotaPacer
from reconciler.connect.quotas import Quota
from reconciler.emulator import FaultPlan, backend_from_snapshot
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
