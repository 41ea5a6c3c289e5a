"""The one table of Amazon Connect API quotas this project relies on.

AWS documents 2 requests/s with a burst of 5 per API, per account and region,
for the APIs below unless Service Quotas says otherwise:
https://docs.aws.amazon.com/connect/latest/adminguide/amazon-connect-service-limits.html#connect-api-quotas
Both the client-side pacer and the emulator's throttling read this table;
`settings.quotas` in the manifests overrides entries for one account.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Quota:
    """A token bucket: `rate` requests per second, up to `burst` at once."""

    rate: float
    burst: int


_DEFAULT = Quota(rate=2.0, burst=5)

DEFAULT_QUOTAS: dict[str, Quota] = {
    **{
        op: _DEFAULT
        for op in (
            "ListUserProficiencies",
            "ListUsers",
            "DescribeUser",
            "SearchUsers",
            "ListPredefinedAttributes",
            "DescribePredefinedAttribute",
            "SearchPredefinedAttributes",
            "CreatePredefinedAttribute",
            "UpdatePredefinedAttribute",
            "DeletePredefinedAttribute",
            "AssociateUserProficiencies",
            "UpdateUserProficiencies",
            "DisassociateUserProficiencies",
            "ListRoutingProfiles",
            "ListUserHierarchyGroups",
            "DescribeInstance",
            "ListInstances",
            "CreateUser",
            "DeleteUser",
            # owner tags (settings.owner): tagged, then read back
            "TagResource",
            "ListTagsForResource",
        )
    },
    "DescribeContact": Quota(rate=10.0, burst=15),
    "SearchContacts": Quota(rate=0.5, burst=1),
}


# A client pacing at exactly the service's bucket gets throttled whenever its
# clock and the service's disagree (the service's bucket starts when the first
# call arrives, ours when we create it, and a request reaches it a little
# after our token is taken). Holding one token of the burst in reserve
# absorbs that skew; the rate itself is the quota's, so a long read runs at
# the quota. A quota with a burst of 1 (SearchContacts) has no token to hold
# back; it is paced this much under its rate instead.
SINGLE_BURST_RATE_MARGIN = 0.95


def pacing_quota(quota: Quota) -> Quota:
    """The client-side bucket that stays inside the service's `quota`: its
    rate, with one token of burst held in reserve."""
    if quota.burst <= 1:
        return Quota(rate=quota.rate * SINGLE_BURST_RATE_MARGIN, burst=1)
    return Quota(rate=quota.rate, burst=quota.burst - 1)


def quota_for(operation: str, overrides: dict[str, Quota] | None = None) -> Quota:
    """The quota in force for `operation`: an override, the table, or 2/5."""
    if overrides and operation in overrides:
        return overrides[operation]
    return DEFAULT_QUOTAS.get(operation, _DEFAULT)


class TokenBucket:
    """A thread-safe token bucket on a (possibly sped-up) clock.

    `time_scale` > 1 runs the quota faster than real time: a scale of 50 turns
    "2 requests/s" into 100 real requests/s with the same burst, so tests and
    benchmarks exercise pacing without waiting minutes. The emulator uses
    `try_take` (throttle when empty); the client pacer uses `take` (wait).
    """

    def __init__(
        self,
        quota: Quota,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = quota.rate * time_scale
        self.burst = float(quota.burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._updated = clock()
        self._lock = threading.Lock()

    def try_take(self) -> float:
        """Take a token if there is one and return 0, else the wait for one."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.rate

    def take(self) -> float:
        """Wait until a token is available and take it; return the time waited."""
        waited = 0.0
        while (wait := self.try_take()) > 0:
            self._sleep(wait)
            waited += wait
        return waited
