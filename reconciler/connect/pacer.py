"""Every API call goes through one QuotaPacer: paced per operation, retried.

Quotas are per API, so calls to different operations run concurrently and
each operation waits on its own token bucket, kept just inside the service's
(see `pacing_quota`). Throttles, 5xx and dropped connections that still
happen are retried with jittered exponential backoff. A write whose
connection dropped may or may not have been applied; that is not retried
here but raised as AmbiguousWrite, so the caller re-reads before deciding.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from reconciler.connect.quotas import Quota, TokenBucket, pacing_quota, quota_for

log = logging.getLogger(__name__)

_THROTTLE_CODES = {"ThrottlingException", "TooManyRequestsException", "Throttling"}
# Sent, then the connection failed: a write may or may not have applied.
_MAYBE_APPLIED = (ConnectionClosedError, ReadTimeoutError)
# Never sent (includes connect timeouts): safe to retry anything.
_NOT_SENT = (EndpointConnectionError,)
_READ_PREFIXES = ("Describe", "List", "Search", "Get")
_HOOK_ID = "connect-reconciler-quota-pacer"


class AmbiguousWrite(Exception):
    """A write's connection failed after it was sent: it may have applied."""

    def __init__(self, operation: str, cause: Exception) -> None:
        super().__init__(f"{operation}: outcome unknown ({cause})")
        self.operation = operation
        self.cause = cause


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
    ) -> None:
        self.client = client
        self._clock = clock  # tests inject a clock shared with the emulator
        self._sleep = sleep
        self.overrides = overrides or {}
        self.time_scale = time_scale
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self._random = random.Random(seed)
        self._buckets: dict[str, TokenBucket] = {}
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
        waited = self._bucket(operation).take()
        with self._lock:
            self.calls[operation] += 1
            self.waited += waited

    def quota(self, operation: str) -> Quota:
        """The service quota in force for `operation`."""
        return quota_for(operation, self.overrides)

    def _bucket(self, operation: str) -> TokenBucket:
        with self._lock:
            if operation not in self._buckets:
                self._buckets[operation] = TokenBucket(
                    pacing_quota(self.quota(operation)), self.time_scale, self._clock, self._sleep
                )
            return self._buckets[operation]

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """Call `operation` (e.g. "ListUsers") within its quota, retrying
        transient failures; raise ClientError for the rest."""
        method: Callable[..., dict[str, Any]] = getattr(self.client, self._methods[operation])
        for attempt in range(1, self.max_attempts + 1):
            try:
                return method(**params)
            except (ClientError, *_MAYBE_APPLIED, *_NOT_SENT) as error:
                if isinstance(error, _MAYBE_APPLIED) and not operation.startswith(_READ_PREFIXES):
                    raise AmbiguousWrite(operation, error) from error
                retryable = (
                    is_throttle(error)
                    or _is_server_error(error)
                    or isinstance(error, (*_MAYBE_APPLIED, *_NOT_SENT))
                )
                if not retryable or attempt == self.max_attempts:
                    raise
                with self._lock:
                    self.retries[operation] += 1
                    delay = self._random.uniform(0, self.base_delay * 2 ** (attempt - 1))
                log.debug("%s failed (%s); retry %d in %.2fs", operation, error, attempt, delay)
                self._sleep(delay / self.time_scale)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def pages(self, operation: str, key: str, **params: Any) -> list[Any]:
        """Every item under `key` across all pages of a paginated call."""
        items: list[Any] = []
        token = None
        while True:
            response = self.call(operation, **params, **({"NextToken": token} if token else {}))
            items.extend(response.get(key, []))
            token = response.get("NextToken")
            if not token:
                return items
