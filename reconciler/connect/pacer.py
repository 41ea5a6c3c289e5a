"""Every API call goes through one QuotaPacer: paced per operation, retried.

Quotas are per API, so calls to different operations run concurrently and
each operation waits on its own token bucket, at the service's rate with a
burst token in reserve (see `pacing_quota`). Throttles, 5xx and dropped connections that still
happen are retried with jittered exponential backoff. A write whose
connection dropped may or may not have been applied; that is not retried
here but raised as AmbiguousWrite, so the caller re-reads before deciding.

Retries other than throttles draw on a RetryBudget shared by every call, as
the AWS SDKs' standard retry mode does: when the service keeps failing the
budget runs dry and calls fail at once (RetryBudgetExhausted) instead of
each retrying through an outage.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from reconciler.service.model import is_read
from reconciler.service.quotas import Quota, TokenBucket, pacing_quota, quota_for

log = logging.getLogger(__name__)

_THROTTLE_CODES = {"ThrottlingException", "TooManyRequestsException", "Throttling"}
# Sent, then the connection failed: a write may or may not have applied.
_MAYBE_APPLIED = (ConnectionClosedError, ReadTimeoutError)
# Never sent (includes connect timeouts): safe to retry anything.
_NOT_SENT = (EndpointConnectionError,)
_TIMEOUTS = (ReadTimeoutError, ConnectTimeoutError)

# The standard retry mode's retry quota, in the values the AWS SDKs have long
# used (https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html;
# Ruby's Aws::Plugins::Retries::RetryQuota, JS v3's middleware-retry
# constants): 500 tokens; a retry costs 5, a retry after a timeout 10; a call
# that succeeds without retrying puts 1 back, one that succeeds after retrying
# puts back what its last retry cost. (botocore 1.44's opt-in 2026 behaviour
# charges 14 and 5 for throttles.) Throttles cost nothing here: the pacer
# keeps them rare and they say "slower", not "failing".
RETRY_BUDGET_CAPACITY = 500
RETRY_COST = 5
TIMEOUT_RETRY_COST = 10
NO_RETRY_INCREMENT = 1
_HOOK_ID = "connect-reconciler-quota-pacer"


class AmbiguousWrite(Exception):
    """A write's connection failed after it was sent: it may have applied."""

    def __init__(self, operation: str, cause: Exception) -> None:
        super().__init__(f"{operation}: outcome unknown ({cause})")
        self.operation = operation
        self.cause = cause


class RetryBudgetExhausted(BotoCoreError):
    """A call failed and the retry budget is spent: the service keeps failing."""

    fmt = "{operation}: {error} (not retried: the service keeps failing, retry budget spent)"


class RetryBudget:
    """The shared retry quota: retries take tokens, successes refill them."""

    def __init__(self, capacity: int = RETRY_BUDGET_CAPACITY) -> None:
        self.capacity = capacity
        self.available = capacity
        self._lock = threading.Lock()

    def acquire(self, cost: int) -> bool:
        """Take `cost` tokens for a retry; False when too few are left."""
        with self._lock:
            if cost > self.available:
                return False
            self.available -= cost
            return True

    def release(self, amount: int) -> None:
        """Put tokens back after a success, never above the capacity."""
        with self._lock:
            self.available = min(self.capacity, self.available + amount)


# (attempt that failed, its error, seconds until the retry): for the journal
RetryListener = Callable[[int, Exception, float], None]


def is_throttle(error: Exception) -> bool:
    """True for the service's throttling answer."""
    return (
        isinstance(error, ClientError)
        and error.response.get("Error", {}).get("Code") in _THROTTLE_CODES
    )


def _is_server_error(error: Exception) -> bool:
    return (
        isinstance(error, ClientError)
        and error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500
    )


class QuotaBuckets:
    """One token bucket per operation, taken from before each send. A pacer
    has its own, or shares one with the pacers of every instance in the same
    account and region: Connect's quotas are the account's, per region."""

    def __init__(
        self,
        overrides: dict[str, Quota] | None = None,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.overrides = overrides or {}
        self.time_scale = time_scale
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def take(self, operation: str) -> float:
        """Wait for `operation`'s next token; return the time waited."""
        with self._lock:
            bucket = self._buckets.get(operation)
            if bucket is None:
                quota = pacing_quota(quota_for(operation, self.overrides))
                bucket = TokenBucket(quota, self.time_scale, self._clock, self._sleep)
                self._buckets[operation] = bucket
        return bucket.take()


class QuotaPacer:
    """Paces and retries calls to a boto3 Connect client.

    `time_scale` speeds the quotas up (and the backoff with them), matching an
    emulator run with the same `--quota-scale`.
    """

    def __init__(
        self,
        client: Any,
        overrides: dict[str, Quota] | None = None,
        time_scale: float = 1.0,
        max_attempts: int = 8,
        base_delay: float = 0.25,
        seed: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        buckets: QuotaBuckets | None = None,
    ) -> None:
        """`buckets` shared with other pacers pace them together: the
        instances of one account and region draw on one quota per API."""
        self.client = client
        self._clock = clock  # tests inject a clock shared with the emulator
        self._sleep = sleep
        self.overrides = overrides or {}
        self.time_scale = time_scale
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self._random = random.Random(seed)
        # Until the endpoint has answered once, a connect error is not a
        # blip but a wrong or unreachable endpoint: fail at once, not after
        # a silent minute of retries.
        self._answered = False
        self.budget = RetryBudget()
        self.buckets = buckets or QuotaBuckets(self.overrides, time_scale, clock, sleep)
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.retries: Counter[str] = Counter()
        self.waited = 0.0
        self._methods = {v: k for k, v in client.meta.method_to_api_mapping.items()}
        # The token is taken at the last moment, when botocore is about to
        # send (after serializing and signing), so the gap between our bucket
        # and the service's is as small as it can be; retries pass here too.
        events = client.meta.events
        events.unregister("before-send.connect", unique_id=_HOOK_ID)
        events.register("before-send.connect", self._before_send, unique_id=_HOOK_ID)

    def _before_send(self, event_name: str, **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        waited = self.buckets.take(operation)
        with self._lock:
            self.calls[operation] += 1
            self.waited += waited

    def quota(self, operation: str) -> Quota:
        """The service quota in force for `operation`."""
        return quota_for(operation, self.overrides)

    def call(
        self, operation: str, /, on_retry: RetryListener | None = None, **params: Any
    ) -> dict[str, Any]:
        """Call `operation` (e.g. "ListUsers") within its quota, retrying
        transient failures while the retry budget lasts (telling `on_retry`
        of each); raise ClientError for the rest."""
        method: Callable[..., dict[str, Any]] = getattr(self.client, self._methods[operation])
        last_cost = 0
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = method(**params)
            except (ClientError, *_MAYBE_APPLIED, *_NOT_SENT) as error:
                if isinstance(error, _NOT_SENT) and not self._answered:
                    raise
                self._answered = True
                if isinstance(error, _MAYBE_APPLIED) and not is_read(operation):
                    raise AmbiguousWrite(operation, error) from error
                retryable = (
                    is_throttle(error)
                    or _is_server_error(error)
                    or isinstance(error, (*_MAYBE_APPLIED, *_NOT_SENT))
                )
                if not retryable or attempt == self.max_attempts:
                    raise
                if not is_throttle(error):
                    last_cost = self.spend_retry(operation, error)
                with self._lock:
                    self.retries[operation] += 1
                    delay = self._random.uniform(0, self.base_delay * 2 ** (attempt - 1))
                log.debug("%s failed (%s); retry %d in %.2fs", operation, error, attempt, delay)
                if on_retry is not None:
                    on_retry(attempt, error, delay)
                self.pause(delay)
            else:
                self._answered = True
                self.budget.release(last_cost or NO_RETRY_INCREMENT)
                return response
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def pause(self, seconds: float) -> None:
        """Wait `seconds` of service time (scaled like the quotas)."""
        self._sleep(seconds / self.time_scale)

    def spend_retry(self, operation: str, error: Exception) -> int:
        """Take a retry's tokens from the budget (also before re-sending a
        write whose outcome was unknown) and return them; raise
        RetryBudgetExhausted when too few are left."""
        cost = TIMEOUT_RETRY_COST if isinstance(error, _TIMEOUTS) else RETRY_COST
        if not self.budget.acquire(cost):
            raise RetryBudgetExhausted(operation=operation, error=error) from error
        return cost

    def pages(self, operation: str, key: str, **params: Any) -> list[Any]:
        """Every item under `key` across all pages of a paginated call."""
        return [item for page in self.each_page(operation, key, **params) for item in page]

    def each_page(self, operation: str, key: str, **params: Any) -> Iterator[list[Any]]:
        """The items under `key`, page by page, as each page arrives."""
        token = None
        while True:
            response = self.call(operation, **params, **({"NextToken": token} if token else {}))
            yield response.get(key, [])
            token = response.get("NextToken")
            if not token:
                return
