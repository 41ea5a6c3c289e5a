"""Which way to read proficiencies: one ListUserProficiencies per user, or
SearchUsers by value and level bit, estimated in seconds at the quotas in force."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from reconciler.quoting import names
from reconciler.service.limits import SEARCH_USERS_PAGE, searchable
from reconciler.state import Attribute

log = logging.getLogger(__name__)

READS = ("auto", "search", "list")
# Levels 1-5 are 001..101 in binary: the holders found at the levels with
# bit 0, bit 1 and bit 2 set give every holder of a value and its level.
LEVEL_BITS = ((1, 3, 5), (2, 3), (4, 5))


@dataclass(frozen=True)
class Verification:
    """How a search read was checked: `sampled` users read again by
    ListUserProficiencies, `disagreed` of them showing otherwise than the
    search, and the read used instead (`fell_back_to`); requirement counts
    the service gave checked against users whose state is known."""

    sampled: int = 0
    disagreed: int = 0
    fell_back_to: str | None = None
    counts_checked: int = 0
    counts_disagreed: int = 0

    @property
    def data(self) -> dict[str, Any]:
        return {
            "sampled": self.sampled,
            "disagreed": self.disagreed,
            "fell_back_to": self.fell_back_to,
            "counts": {"checked": self.counts_checked, "disagreed": self.counts_disagreed},
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Verification:
        counts = data["counts"]
        return cls(
            data["sampled"],
            data["disagreed"],
            data["fell_back_to"],
            counts["checked"],
            counts["disagreed"],
        )


@dataclass(frozen=True)
class ReadChoice:
    """How proficiencies were read, and why: the strategy asked for, the
    estimated seconds of each (None when not estimated), why it read
    otherwise than asked (`note`), and how a search read was checked."""

    strategy: str  # "list" or "search"
    requested: str = "list"  # "auto", "search" or "list"
    list_seconds: float | None = None
    search_seconds: float | None = None
    note: str = ""
    verification: Verification | None = None

    @property
    def data(self) -> dict[str, Any]:
        """The plan's `read` member (docs/plan-format.md)."""
        data: dict[str, Any] = {
            "strategy": self.strategy,
            "requested": self.requested,
            "estimated_seconds": {"list": self.list_seconds, "search": self.search_seconds},
        }
        if self.note:
            data["note"] = self.note
        if self.verification is not None:
            data["verification"] = self.verification.data
        return data

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> ReadChoice:
        estimate = data.get("estimated_seconds") or {}
        checked = data.get("verification")
        return cls(
            data["strategy"],
            data["requested"],
            estimate.get("list"),
            estimate.get("search"),
            data.get("note", ""),
            Verification.from_data(checked) if checked is not None else None,
        )

    def describe(self) -> str:
        """One line for renderers, e.g. "by search (auto: ~750 s vs ~5000 s by list)"."""
        how = "SearchUsers" if self.strategy == "search" else "ListUserProficiencies"
        note = f": {self.note}" if self.note else ""
        if self.requested != "auto":
            return f"proficiencies read by {how} (--read {self.requested}{note})"
        if self.note:
            return f"proficiencies read by {how} (auto{note})"
        if self.search_seconds is None:
            return f"proficiencies read by {how} (auto: search cannot be cheaper)"
        checked = self.verification
        sample = f"; {checked.sampled} users checked by list" if checked and checked.sampled else ""
        return (
            f"proficiencies read by {how} (auto: ~{self.list_seconds:.0f} s by list, "
            f"~{self.search_seconds:.0f} s by search{sample})"
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
    if strategy == "list":
        return ReadChoice("list", strategy)
    if any(len({v.casefold() for v in a.values}) < len(a.values) for a in attributes.values()):
        # Search may match values ignoring case: values equal but for case
        # could be confused, so such an instance is always listed.
        return ReadChoice("list", strategy, note="values equal but for case")
    short = sorted(
        f"{a.name}/{v}" if searchable(a.name) else a.name
        for a in attributes.values()
        for v in (a.values if searchable(a.name) else a.values[:1])
        if not (searchable(a.name) and searchable(v))
    )
    if short:
        return ReadChoice("list", strategy, note=f"too short to search for: {names(short)}")
    if strategy == "search":
        return ReadChoice("search", "search")
    list_seconds = users / list_rate
    queries = len(LEVEL_BITS) * sum(len(a.values) for a in attributes.values())
    if narrowed_to_users or queries / search_rate >= list_seconds:
        return ReadChoice("list", "auto", list_seconds)
    calls = len(attributes) + queries
    ordered = sorted(attributes)
    for name, count in zip(ordered, holder_counts(ordered), strict=True):
        values = len(attributes[name].values)
        if values and count is None:
            return ReadChoice("list", "auto", list_seconds)
        if values and count is not None:
            # a value's holders, if spread evenly, bound each query's pages
            pages = max(1, math.ceil(count / values / SEARCH_USERS_PAGE))
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
