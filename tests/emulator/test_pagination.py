"""Every paginated operation across several pages, with boto3's paginators."""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.exceptions import ClientError

from reconciler.emulator import backend_from_snapshot
from tests.conftest import INSTANCE_ARN, INSTANCE_ID, small_snapshot

IN = {"InstanceId": INSTANCE_ID}
N = 23  # items of each kind; pages of 5 make five pages, the last one short


def big_snapshot() -> dict:
    snapshot = small_snapshot()
    snapshot["Quotas"] = {"ProficienciesPerUser": N}  # "many" holds N
    snapshot["PredefinedAttributes"] += [
        {"Name": f"Attr{i:02d}", "Values": {"StringList": [f"v{i}"]}} for i in range(N)
    ]
    snapshot["Users"] += [
        {"User": {"Id": f"id-u{i:02d}", "Username": f"u{i:02d}"}, "Proficiencies": []}
        for i in range(N)
    ]
    snapshot["Users"].append({
        "User": {"Id": "id-many", "Username": "many"},
        "Proficiencies": [{"AttributeName": f"Attr{i:02d}", "AttributeValue": f"v{i}", "Level": 1.0} for i in range(N)],
    })  # fmt: skip
    snapshot["RoutingProfiles"] += [{"Id": f"rp-{i:02d}", "Name": f"Profile {i}"} for i in range(N)]
    snapshot["UserHierarchyGroups"] += [
        {"Id": f"hg-{i:02d}", "Name": f"Group {i}"} for i in range(N)
    ]
    start = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    snapshot["Contacts"] = [
        {"Id": f"c-{i:02d}", "Arn": f"{INSTANCE_ARN}/contact/c-{i:02d}", "Channel": "VOICE", "InitiationMethod": "INBOUND",
         "InitiationTimestamp": (start + dt.timedelta(minutes=i)).isoformat()}
        for i in range(N)
    ]  # fmt: skip
    return snapshot


@pytest.fixture
def paged(connect):
    emulator, client = connect
    emulator.reset(backend_from_snapshot(big_snapshot()))
    return emulator, client


WINDOW = {
    "Type": "INITIATION_TIMESTAMP",
    "StartTime": dt.datetime(2026, 11, 19, tzinfo=dt.UTC),
    "EndTime": dt.datetime(2026, 11, 21, tzinfo=dt.UTC),
}

CASES = [
    ("list_users", {}, "UserSummaryList", "Username", 3 + N + 1),
    ("search_users", {}, "Users", "Username", 3 + N + 1),
    ("list_user_proficiencies", {"UserId": "id-many"}, "UserProficiencyList", "AttributeName", N),
    ("list_predefined_attributes", {}, "PredefinedAttributeSummaryList", "Name", 3 + N),
    ("search_predefined_attributes", {}, "PredefinedAttributes", "Name", 3 + N),
    ("list_routing_profiles", {}, "RoutingProfileSummaryList", "Id", 2 + N),
    ("list_user_hierarchy_groups", {}, "UserHierarchyGroupSummaryList", "Id", 2 + N),
    ("search_contacts", {"TimeRange": WINDOW}, "Contacts", "Id", N),
]


@pytest.mark.parametrize(
    ("method", "params", "key", "field", "total"), CASES, ids=[c[0] for c in CASES]
)
def test_paginator_walks_every_page_once(paged, method, params, key, field, total) -> None:
    emulator, client = paged
    operation = client.meta.method_to_api_mapping[method]
    pages = list(
        client.get_paginator(method).paginate(**IN, **params, PaginationConfig={"PageSize": 5})
    )
    items = [item[field] for page in pages for item in page[key]]
    assert len(items) == len(set(items)) == total
    assert len(pages) == -(-total // 5)
    assert emulator.stats.calls(operation) == len(pages)


def test_list_instances_paginates(paged) -> None:
    _, client = paged
    pages = list(client.get_paginator("list_instances").paginate())
    assert [i["Id"] for p in pages for i in p["InstanceSummaryList"]] == [INSTANCE_ID]


def test_default_page_size_and_max(paged) -> None:
    _, client = paged
    assert len(client.list_users(**IN)["UserSummaryList"]) == 3 + N + 1  # under the default of 100
    assert len(client.list_users(**IN, MaxResults=1000)["UserSummaryList"]) == 3 + N + 1


@pytest.mark.parametrize("token", ["garbage", "bGlzdDo1OmFiYw=="])
def test_forged_token_is_refused(paged, token) -> None:
    _, client = paged
    with pytest.raises(ClientError) as raised:
        client.list_users(**IN, NextToken=token)
    assert raised.value.response["Error"]["Code"] == "InvalidParameterException"


def test_token_from_another_operation_is_refused(paged) -> None:
    _, client = paged
    token = client.list_users(**IN, MaxResults=2)["NextToken"]
    with pytest.raises(ClientError):
        client.list_routing_profiles(**IN, NextToken=token)
