"""Eventual consistency: each write reaches each read path after its own delay.

The API Reference's eventual-consistency page: "changes … might not be
immediately visible … typically takes less than a few seconds … in some
cases several minutes. You might get unexpected errors, such as a
ResourceNotFoundException or an InvalidRequestException"
(https://docs.aws.amazon.com/connect/latest/APIReference/eventual-consistency.html).

So with a lag, the backend keeps the versions of every object written lately;
a read path (an operation, or the checks a write makes) sees the newest
version that has reached it. Each write reaches each path after a seeded
random delay up to the lag, so paths disagree with each other for a while, as
the service's do. Once the newest version has reached every path, the
history is dropped and the object is read as stored.
"""

from __future__ import annotations

import copy
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Record = dict[str, Any]
Key = tuple[str, str]  # ("user", id) or ("attribute", casefolded name)

# The read paths a write travels to, each on its own delay: the operations that
# read users and attributes, and the checks writes make before they apply.
PATHS = (
    "ListUsers",
    "DescribeUser",
    "SearchUsers",
    "ListUserProficiencies",
    "ListTagsForResource",
    "DescribePredefinedAttribute",
    "ListPredefinedAttributes",
    "SearchPredefinedAttributes",
    "validation",
)


@dataclass
class _Version:
    value: Record | None  # None: the object does not exist
    reaches: dict[str, float] = field(default_factory=dict)  # path -> when; empty: everywhere


class LaggedViews:
    """The versions each read path sees of recently written objects."""

    def __init__(self, lag: float, clock: Callable[[], float], seed: int = 0) -> None:
        self.lag = lag
        self.clock = clock
        self._random = random.Random(seed)
        self._history: dict[Key, list[_Version]] = {}
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return self.lag > 0

    def written(self, key: Key, before: Record | None, after: Record | None) -> None:
        """Record a write of `key` from `before` to `after` (copies are kept)."""
        if not self.active:
            return
        with self._lock:
            now = self.clock()
            versions = self._history.setdefault(key, [_Version(copy.deepcopy(before))])
            reaches = {path: now + self._random.uniform(0, self.lag) for path in PATHS}
            versions.append(_Version(copy.deepcopy(after), reaches))

    def seen(self, path: str, key: Key, stored: Record | None) -> Record | None:
        """What `path` sees of `key` now (`stored` when nothing is pending)."""
        if not self._history:
            return stored
        with self._lock:
            versions = self._history.get(key)
            if versions is None:
                return stored
            now = self.clock()
            if all(when <= now for when in versions[-1].reaches.values()):
                del self._history[key]  # everywhere now: read as stored
                return stored
            for version in reversed(versions):
                if version.reaches.get(path, now) <= now:  # the first version: everywhere
                    return version.value
            return versions[0].value

    def pending(self, kind: str) -> set[str]:
        """Keys of `kind` with versions still travelling (a listing must look
        at them: created ones may not show yet, deleted ones still may)."""
        with self._lock:
            return {key for k, key in self._history if k == kind}

    def reaches(self, path: str, key: Key) -> float | None:
        """When the newest write of `key` reaches `path` (None: nothing pending)."""
        with self._lock:
            versions = self._history.get(key)
            return versions[-1].reaches.get(path) if versions else None
