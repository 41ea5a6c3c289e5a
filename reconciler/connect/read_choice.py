"""Which way to read proficiencies: one ListUserProficiencies per user, or
SearchUsers by value and level bit, estimated in seconds at the quotas in force."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from reconciler.state import Attribute

log = logging.getLogger(__name__)

READS = ("auto", "search", "list")
# Levels 1-5 are 001..101 in binary: the holders found at the levels with
# bit 0, bit 1 and bit 2 set give every holder of a value and its level.
LEVEL_BITS = ((1, 3, 5), (2, 3), (4, 5))
SEARCH_PAGE = 500


@dataclass(frozen=True)
class ReadChoice:
    """How proficiencies were read, and why: the strategy asked for and the
    estimated seconds of each (None when not estimated)."""

    strategy: str  # "list" or "search"
    requested: str = "list"  # "auto", "search" or "list"
    list_seconds: float | None = None
    search_seconds: float | None = None

    @property
    def data(self) -> dict[str, Any]:
        """The plan's `read` member (docs/plan-format.md)."""
        return {
            "strategy": self.strategy,
            "requested": self.requested,
            "estimated_seconds": {"list": self.list_seconds, "search": self.search_seconds},
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> ReadChoice:
        estimate = data.get("estimated_seconds") or {}
        return cls(
            data["strategy"], data["requested"], estimate.get("list"), estimate.get("search")
        )

    def describe(self) -> str:
        """One line for renderers, e.g. "by search (auto: ~750 s vs ~5000 s by list)"."""
        how = "SearchUsers" if self.strategy == "search" else "ListUserProficiencies"
        if self.requested != "auto":
            why = "" if self.requested == self.strategy else ": values equal but for case"
            return f"proficiencies read by {how} (--read {self.requested}{why})"
        if self.search_seconds is None:
            return f"proficiencies read by {how} (auto: search cannot be cheaper)"
        return (
            f"proficiencies read by {how} (auto: ~{self.list_seconds:.0f} s by list, "
            f"~{self.search_seconds:.0f} s by search)"
        )


def choose_read(
    strategy: str,
    attributes: dict[str, Attribute],
    users: int,
    *,
    narrowed_to_users: bool,
    list_rate: float,
    search_rate: float,
    holder_counts: Callable[[list[str]], Iterable[int | None]],
) -> ReadChoice:
    """How to read `users` users' proficiencies in `attributes`: as asked,
    or (auto) whichever is estimated to take less time at these rates.
    Search needs at least one page per query, so it is only estimated (one
    SearchUsers per attribute, `holder_counts`: its holders) when that floor
    is below the list read."""
    if strategy == "list" or any(
        len({v.casefold() for v in a.values}) < len(a.values) for a in attributes.values()
    ):
        # Search matches values case-insensitively: values equal but for
        # case would be confused, so such an instance is always listed.
        return ReadChoice("list", strategy)
    if strategy == "search":
        return ReadChoice("search", "search")
    list_seconds = users / list_rate
    queries = len(LEVEL_BITS) * sum(len(a.values) for a in attributes.values())
    if narrowed_to_users or queries / search_rate >= list_seconds:
        return ReadChoice("list", "auto", list_seconds)
    calls = len(attributes) + queries
    names = sorted(attributes)
    for name, count in zip(names, holder_counts(names), strict=True):
        values = len(attributes[name].values)
        if values and count is None:
            return ReadChoice("list", "auto", list_seconds)
        if values and count is not None:
            # a value's holders, if spread evenly, bound each query's pages
            pages = max(1, math.ceil(count / values / SEARCH_PAGE))
            calls += len(LEVEL_BITS) * values * (pages - 1)
    search_seconds = calls / search_rate
    chosen = "search" if search_seconds < list_seconds else "list"
    log.info(
        "read: %s (estimated %.0f s by list, %.0f s by search)",
        chosen,
        list_seconds,
        search_seconds,
    )
    return ReadChoice(chosen, "auto", list_seconds, search_seconds)
