"""Recent contacts and the routing criteria they were routed by."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from reconciler.connect.reader import LiveStateReader


@dataclass
class ContactWindow:
    """Contacts read from a time window, and how many it holds: more than
    were read when a limit cut it."""

    contacts: list[dict[str, Any]]
    total: int

    @property
    def cut(self) -> bool:
        return self.total > len(self.contacts)


def read_contacts(reader: LiveStateReader, start: float, end: float, limit: int) -> ContactWindow:
    """Up to `limit` contacts initiated in [start, end], newest first, with
    their RoutingCriteria. SearchContacts' summaries carry the criteria
    (ContactSearchSummary.RoutingCriteria, "latest routing criteria on the
    contact": https://docs.aws.amazon.com/connect/latest/APIReference/API_ContactSearchSummary.html),
    so DescribeContact is called only for contacts whose summary lacks them."""
    window = {"Type": "INITIATION_TIMESTAMP", "StartTime": start, "EndTime": end}
    found: list[dict[str, Any]] = []
    token = None
    total = 0
    while True:
        page = reader.call(
            "SearchContacts",
            TimeRange=window,
            # No default order is documented: ask for newest first.
            Sort={"FieldName": "INITIATION_TIMESTAMP", "Order": "DESCENDING"},
            MaxResults=100,
            **({"NextToken": token} if token else {}),
        )
        found += page.get("Contacts", [])
        token = page.get("NextToken")
        total = max(page.get("TotalCount") or 0, len(found) + (1 if token else 0))
        if not token or len(found) >= limit:
            break
    kept = found[:limit]
    lacking = [c for c in kept if not c.get("RoutingCriteria")]

    def describe(summary: dict[str, Any]) -> None:
        contact = reader.call("DescribeContact", ContactId=summary["Id"])["Contact"]
        summary["RoutingCriteria"] = contact.get("RoutingCriteria")

    with ThreadPoolExecutor(max_workers=reader.workers, thread_name_prefix="contacts") as pool:
        list(pool.map(describe, lacking))
    return ContactWindow(kept, max(total, len(found)))
