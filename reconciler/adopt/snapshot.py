"""A live instance captured as an emulator snapshot (docs/design.md §4): the
nightly job that lets pull-request CI plan with no AWS credentials."""

from __future__ import annotations

from typing import Any

from reconciler.connect.reader import LiveStateReader
from reconciler.service.limits import SEARCH_ATTRIBUTES_PAGE, SEARCH_USERS_PAGE


def snapshot_document(reader: LiveStateReader) -> dict[str, Any]:
    """The live instance as an emulator snapshot: DescribeInstance, every
    attribute, every user (SearchUsers' summary carries the fields plans use)
    with its proficiencies, routing profiles and hierarchy groups."""
    instance = reader.call("DescribeInstance")["Instance"]
    attributes = reader.pages(
        "SearchPredefinedAttributes", "PredefinedAttributes", MaxResults=SEARCH_ATTRIBUTES_PAGE
    )
    users = reader.pages("SearchUsers", "Users", MaxResults=SEARCH_USERS_PAGE)
    held = reader.proficiencies_of([u["Id"] for u in users])
    document: dict[str, Any] = _iso(
        {
            "Instance": instance,
            "PredefinedAttributes": attributes,
            "Users": [
                {
                    "User": user,
                    "Proficiencies": [
                        {"AttributeName": a, "AttributeValue": v, "Level": level}
                        for (a, v), level in sorted(proficiencies.items())
                    ],
                }
                for user, proficiencies in zip(users, held, strict=True)
            ],
            "RoutingProfiles": reader.pages(
                "ListRoutingProfiles", "RoutingProfileSummaryList", MaxResults=100
            ),
            "UserHierarchyGroups": reader.pages(
                "ListUserHierarchyGroups", "UserHierarchyGroupSummaryList", MaxResults=100
            ),
        }
    )
    return document


def _iso(value: Any) -> Any:
    """boto3 returns datetimes; snapshots hold ISO 8601 text."""
    if isinstance(value, dict):
        return {k: _iso(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_iso(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
