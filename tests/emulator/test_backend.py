"""Every emulated operation through a real boto3 client: happy paths and the
documented errors (codes and HTTP statuses)."""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.exceptions import ClientError

from tests.conftest import INSTANCE_ARN, INSTANCE_ID, small_snapshot

IN = {"InstanceId": INSTANCE_ID}


def error_of(call, **kwargs) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    response = raised.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )


def proficiencies(client, user_id: str) -> dict[tuple[str, str], float]:
    listed = client.list_user_proficiencies(**IN, UserId=user_id)["UserProficiencyList"]
    return {(p["AttributeName"], p["AttributeValue"]): p["Level"] for p in listed}


# -- instance -----------------------------------------------------------------


def test_describe_and_list_instances(connect) -> None:
    _, client = connect
    instance = client.describe_instance(InstanceId=INSTANCE_ID)["Instance"]
    assert (instance["Id"], instance["Arn"]) == (INSTANCE_ID, INSTANCE_ARN)
    assert instance["CreatedTime"] == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert [i["Id"] for i in client.list_instances()["InstanceSummaryList"]] == [INSTANCE_ID]


def test_instance_arn_is_accepted_as_instance_id(connect) -> None:
    _, client = connect
    assert (
        client.describe_user(InstanceId=INSTANCE_ARN, UserId="id-jane")["User"]["Username"]
        == "jane"
    )


def test_unknown_instance_is_resource_not_found(connect) -> None:
    _, client = connect
    assert error_of(client.list_users, InstanceId="nope")[:2] == ("ResourceNotFoundException", 404)


# -- users --------------------------------------------------------------------


def test_create_describe_list_delete_user(connect) -> None:
    _, client = connect
    listed = {u["Username"] for u in client.list_users(**IN)["UserSummaryList"]}
    created = client.create_user(
        **IN, Username="kim", SecurityProfileIds=["sp-agent"], RoutingProfileId="rp-basic",
        PhoneConfig={"PhoneType": "SOFT_PHONE"}, HierarchyGroupId="hg-emea",
    )  # fmt: skip
    user = client.describe_user(**IN, UserId=created["UserId"])["User"]
    assert (user["Username"], user["Arn"], user["HierarchyGroupId"]) == (
        "kim",
        created["UserArn"],
        "hg-emea",
    )
    # ListUsers keeps its order between pages: a user who came or went shows
    assert {u["Username"] for u in client.list_users(**IN)["UserSummaryList"]} == listed | {"kim"}
    client.delete_user(**IN, UserId=created["UserId"])
    assert {u["Username"] for u in client.list_users(**IN)["UserSummaryList"]} == listed
    assert error_of(client.describe_user, **IN, UserId=created["UserId"])[:2] == (
        "ResourceNotFoundException",
        404,
    )


@pytest.mark.parametrize(
    ("changes", "code", "status"),
    [
        ({"Username": "jane"}, "DuplicateResourceException", 409),
        ({"RoutingProfileId": "rp-missing"}, "ResourceNotFoundException", 404),
        ({"HierarchyGroupId": "hg-missing"}, "ResourceNotFoundException", 404),
    ],
)
def test_create_user_errors(connect, changes, code, status) -> None:
    _, client = connect
    request = {
        "Username": "kim",
        "SecurityProfileIds": ["sp"],
        "RoutingProfileId": "rp-basic",
        "PhoneConfig": {"PhoneType": "SOFT_PHONE"},
    }
    assert error_of(client.create_user, **IN, **{**request, **changes})[:2] == (code, status)


def test_unknown_user_is_resource_not_found(connect) -> None:
    _, client = connect
    for call in (client.describe_user, client.list_user_proficiencies, client.delete_user):
        assert error_of(call, **IN, UserId="id-nobody")[:2] == ("ResourceNotFoundException", 404)


def search(client, criteria: dict) -> list[str]:
    return sorted(
        u["Username"] for u in client.search_users(**IN, SearchCriteria=criteria)["Users"]
    )


def test_search_users_string_conditions(connect) -> None:
    _, client = connect
    assert search(
        client,
        {
            "StringCondition": {
                "FieldName": "Username",
                "Value": "ja",
                "ComparisonType": "STARTS_WITH",
            }
        },
    ) == ["jane"]
    assert search(
        client,
        {
            "StringCondition": {
                "FieldName": "resourceId",
                "Value": "id-joe",
                "ComparisonType": "EXACT",
            }
        },
    ) == ["joe"]
    assert search(
        client,
        {
            "StringCondition": {
                "FieldName": "RoutingProfileId",
                "Value": "rp-basic",
                "ComparisonType": "EXACT",
            }
        },
    ) == ["ann", "joe"]
    assert search(
        client,
        {"StringCondition": {"FieldName": "Username", "Value": "N", "ComparisonType": "CONTAINS"}},
    ) == ["ann", "jane"]


def test_search_users_hierarchy_group_exact_and_with_children(connect) -> None:
    _, client = connect
    exact = {"HierarchyGroupCondition": {"Value": "hg-emea", "HierarchyGroupMatchType": "EXACT"}}
    children = {
        "HierarchyGroupCondition": {
            "Value": "hg-emea",
            "HierarchyGroupMatchType": "WITH_CHILD_GROUPS",
        }
    }
    assert search(client, exact) == ["joe"]
    assert search(client, children) == ["ann", "jane", "joe"]


def string_is(field: str, value: str, kind: str = "EXACT") -> dict:
    return {"StringCondition": {"FieldName": field, "Value": value, "ComparisonType": kind}}


def proficiency_condition(
    name: str, value: str | None = None, level: tuple[str, int | None, int | None] | None = None
) -> dict:
    """Written out here with the documented field names (API_Condition,
    API_NumberCondition), independently of the reader's own helper."""
    conditions = [string_is("name", name)]
    if value is not None:
        conditions.append(string_is("value", value))
    if level is not None:
        kind, low, high = level
        number = {"FieldName": "limit"}
        if kind is not None:
            number["ComparisonType"] = kind
        if low is not None:
            number["MinValue"] = low
        if high is not None:
            number["MaxValue"] = high
        conditions.append({"NumberCondition": number})
    return {"ListCondition": {"TargetListType": "PROFICIENCIES", "Conditions": conditions}}


def test_search_users_by_proficiency(connect) -> None:
    _, client = connect
    assert search(client, proficiency_condition("Language")) == ["jane", "joe"]
    assert search(client, proficiency_condition("Language", "Spanish")) == ["jane"]
    assert search(client, proficiency_condition("language", "spanish")) == ["jane"]
    # one proficiency must meet every condition: jane's Skill is 3, not Language
    assert search(client, proficiency_condition("Skill", level=("GREATER", 3, None))) == []


# jane: Language/Spanish 4, Skill/Billing 3; joe: Language/English 5.
@pytest.mark.parametrize(
    ("kind", "low", "high", "expected"),
    [
        ("GREATER_OR_EQUAL", 4, None, ["jane", "joe"]),
        ("GREATER_OR_EQUAL", 5, None, ["joe"]),
        ("GREATER", 4, None, ["joe"]),
        ("LESSER_OR_EQUAL", None, 4, ["jane"]),
        ("LESSER", None, 4, []),
        ("LESSER", None, 5, ["jane"]),
        ("EQUAL", 4, None, ["jane"]),
        ("EQUAL", None, 5, ["joe"]),
        ("EQUAL", 5, 5, ["joe"]),
        ("NOT_EQUAL", 4, None, ["joe"]),
        ("RANGE", 3, 4, ["jane"]),
        ("RANGE", 4, 5, ["jane", "joe"]),
    ],
)
def test_search_users_every_number_comparison(connect, kind, low, high, expected) -> None:
    _, client = connect
    assert search(client, proficiency_condition("Language", level=(kind, low, high))) == expected


@pytest.mark.parametrize(
    ("criteria", "fragment"),
    [
        (
            {
                "ListCondition": {
                    "TargetListType": "PROFICIENCIES",
                    "Conditions": [string_is("AttributeName", "Language")],
                }
            },
            "'AttributeName' is not supported; the supported values are name, value",
        ),
        (
            {
                "ListCondition": {
                    "TargetListType": "PROFICIENCIES",
                    "Conditions": [
                        {
                            "NumberCondition": {
                                "FieldName": "Level",
                                "ComparisonType": "GREATER",
                                "MinValue": 3,
                            }
                        }
                    ],
                }
            },
            "'Level' is not supported; the supported value is limit",
        ),
        (proficiency_condition("Language", level=("GREATER", None, 3)), "GREATER needs MinValue"),
        (proficiency_condition("Language", level=("LESSER", 3, None)), "LESSER needs MaxValue"),
        (proficiency_condition("Language", level=("RANGE", 3, None)), "RANGE needs MaxValue"),
        (proficiency_condition("Language", level=("EQUAL", None, None)), "EQUAL needs"),
        (proficiency_condition("Language", level=("NOT_EQUAL", 2, 3)), "NOT_EQUAL needs"),
        (proficiency_condition("Language", level=(None, 2, 3)), "needs a ComparisonType"),
        (
            {"ListCondition": {"TargetListType": "PROFICIENCIES", "Conditions": [{}]}},
            "exactly one of StringCondition and NumberCondition",
        ),
        ({"ListCondition": {"Conditions": [string_is("name", "L")]}}, "TargetListType"),
        (string_is("Name", "jane"), "'Name' is not supported; the supported values are Username"),
        (
            {"OrConditions": [string_is("Username", "jane"), string_is("username", "joe")]},
            "OrConditions[1].StringCondition.FieldName 'username' is not supported",
        ),
        (
            {"StringCondition": {"FieldName": "Username", "Value": "jane"}},
            "needs Value and ComparisonType",
        ),
        ({"HierarchyGroupCondition": {"Value": "hg-emea"}}, "HierarchyGroupMatchType"),
    ],
)
def test_search_users_refuses_what_it_does_not_implement(connect, criteria, fragment) -> None:
    _, client = connect
    code, status, message = error_of(client.search_users, **IN, SearchCriteria=criteria)
    assert (code, status) == ("InvalidParameterException", 400)
    assert fragment in message


def test_search_users_refuses_search_filter(connect) -> None:
    _, client = connect
    tag_filter = {"TagFilter": {"OrConditions": [[{"TagKey": "team", "TagValue": "a"}]]}}
    code, _, message = error_of(client.search_users, **IN, SearchFilter=tag_filter)
    assert (code, message) == (
        "InvalidParameterException",
        "This emulator does not implement SearchFilter of SearchUsers; it refuses rather than ignore it.",
    )


def test_search_users_every_documented_user_field(connect) -> None:
    _, client = connect
    assert search(client, string_is("FirstName", "Jane")) == ["jane"]
    assert search(client, string_is("LastName", "exam", "STARTS_WITH")) == ["ann", "jane", "joe"]
    assert search(client, string_is("SecurityProfileId", "sp-agent")) == ["ann", "jane", "joe"]
    assert search(client, string_is("SecurityProfileId", "sp-admin")) == []


def test_search_users_and_or_nesting(connect) -> None:
    _, client = connect
    spanish = proficiency_condition("Language", "Spanish")
    english = proficiency_condition("Language", "English")
    basic = {
        "StringCondition": {
            "FieldName": "RoutingProfileId",
            "Value": "rp-basic",
            "ComparisonType": "EXACT",
        }
    }
    assert search(client, {"OrConditions": [spanish, english]}) == ["jane", "joe"]
    assert search(client, {"AndConditions": [basic, {"OrConditions": [spanish, english]}]}) == [
        "joe"
    ]


def user_lists(client) -> tuple[dict, dict]:
    """(ListUsers, SearchUsers) users by username, as the wire carried them."""
    listed = client.list_users(**IN)["UserSummaryList"]
    searched = client.search_users(**IN)["Users"]
    return {u["Username"]: u for u in listed}, {u["Username"]: u for u in searched}


def test_user_lists_follow_every_kind_of_write(connect) -> None:
    # The emulator keeps each user's list JSON and redoes it when a write
    # reaches the user: after each kind of write, failed ones included, both
    # lists must agree with DescribeUser (which reads the record itself).
    from reconciler.emulator import backend_from_snapshot

    emulator, client = connect
    now = [1000.0]
    emulator.reset(backend_from_snapshot(small_snapshot(), clock=lambda: now[0]))
    jane_arn = client.describe_user(**IN, UserId="id-jane")["User"]["Arn"]
    ann_arn = client.describe_user(**IN, UserId="id-ann")["User"]["Arn"]
    payments = [{"AttributeName": "Skill", "AttributeValue": "Payments", "Level": 2}]

    def agree() -> tuple[dict, dict]:
        listed, searched = user_lists(client)
        assert sorted(listed) == sorted(searched)
        for name, item in listed.items():
            user = client.describe_user(**IN, UserId=item["Id"])["User"]
            assert item.get("LastModifiedTime") == user.get("LastModifiedTime"), name
            assert searched[name].get("Tags") == user.get("Tags"), name
        return listed, searched

    listed, searched = agree()
    assert "LastModifiedTime" not in listed["jane"]  # the snapshot gave none
    writes = [
        lambda: client.tag_resource(resourceArn=jane_arn, tags={"team": "billing"}),
        lambda: client.associate_user_proficiencies(
            **IN, UserId="id-jane", UserProficiencies=payments
        ),
        lambda: client.update_user_proficiencies(
            **IN, UserId="id-jane", UserProficiencies=[{**payments[0], "Level": 3}]
        ),
        lambda: client.untag_resource(resourceArn=jane_arn, tagKeys=["team"]),
        lambda: client.disassociate_user_proficiencies(
            **IN, UserId="id-jane", UserProficiencies=[{"AttributeName": "Skill", "AttributeValue": "Payments"}]
        ),
        lambda: client.create_user(
            **IN, Username="kim", SecurityProfileIds=["sp"], RoutingProfileId="rp-basic",
            PhoneConfig={"PhoneType": "SOFT_PHONE"},
        ),
        lambda: client.delete_user(**IN, UserId="id-joe"),
        # ann now lists where joe was
        lambda: client.tag_resource(resourceArn=ann_arn, tags={"team": "support"}),
    ]  # fmt: skip
    for write in writes:
        now[0] += 100.0
        write()
        listed, searched = agree()
    assert listed["jane"]["LastModifiedTime"].timestamp() == 1500.0  # the disassociation
    assert "kim" in listed and "joe" not in listed
    assert searched["ann"]["Tags"] == {"team": "support"}
    spanish = [{"AttributeName": "Language", "AttributeValue": "Spanish", "Level": 1}]
    now[0] += 100.0
    with pytest.raises(ClientError):  # already associated: refused, nothing changes
        client.associate_user_proficiencies(**IN, UserId="id-jane", UserProficiencies=spanish)
    assert user_lists(client) == (listed, searched)


def test_user_lists_of_a_new_backend_are_its_own(connect) -> None:
    from reconciler.emulator import backend_from_snapshot

    emulator, client = connect
    user_lists(client)
    renamed = small_snapshot()
    renamed["Users"][0]["User"]["IdentityInfo"]["FirstName"] = "Renamed"
    user_id = renamed["Users"][0]["User"]["Id"]
    emulator.reset(backend_from_snapshot(renamed))
    _, searched = user_lists(client)
    assert {u["Id"]: u["IdentityInfo"]["FirstName"] for u in searched.values()}[
        user_id
    ] == "Renamed"


def test_list_routing_profiles_and_hierarchy_groups(connect) -> None:
    _, client = connect
    profiles = client.list_routing_profiles(**IN)["RoutingProfileSummaryList"]
    groups = client.list_user_hierarchy_groups(**IN)["UserHierarchyGroupSummaryList"]
    assert {p["Name"] for p in profiles} == {"Basic Routing Profile", "Spanish Support"}
    assert {g["Name"] for g in groups} == {"EMEA", "Dublin"}


# -- predefined attributes ----------------------------------------------------


def test_create_update_describe_delete_attribute(connect) -> None:
    _, client = connect
    client.create_predefined_attribute(
        **IN, Name="Tier", Values={"StringList": ["Gold", "Silver"]}, Purposes=["routing"],
        AttributeConfiguration={"EnableValueValidationOnAssociation": True},
    )  # fmt: skip
    described = client.describe_predefined_attribute(**IN, Name="Tier")["PredefinedAttribute"]
    assert described["Values"]["StringList"] == ["Gold", "Silver"]
    assert described["Purposes"] == ["routing"]
    assert described["AttributeConfiguration"]["EnableValueValidationOnAssociation"] is True
    client.update_predefined_attribute(
        **IN, Name="Tier", Values={"StringList": ["Gold", "Silver", "Bronze"]}
    )
    assert (
        client.describe_predefined_attribute(**IN, Name="Tier")["PredefinedAttribute"]["Values"][
            "StringList"
        ][-1]
        == "Bronze"
    )
    client.delete_predefined_attribute(**IN, Name="Tier")
    assert error_of(client.describe_predefined_attribute, **IN, Name="Tier")[:2] == (
        "ResourceNotFoundException",
        404,
    )


def test_attribute_names_are_case_insensitive(connect) -> None:
    _, client = connect
    assert error_of(
        client.create_predefined_attribute, **IN, Name="LANGUAGE", Values={"StringList": ["x"]}
    )[:2] == ("DuplicateResourceException", 409)
    assert (
        client.describe_predefined_attribute(**IN, Name="language")["PredefinedAttribute"]["Name"]
        == "Language"
    )


@pytest.mark.parametrize("call", ["create", "update", "delete"])
def test_reserved_connect_attributes(connect, call) -> None:
    _, client = connect
    if call == "create":
        code = error_of(
            client.create_predefined_attribute,
            **IN,
            Name="connect:Custom",
            Values={"StringList": ["x"]},
        )
    elif call == "update":
        code = error_of(
            client.update_predefined_attribute,
            **IN,
            Name="connect:Subtype",
            Values={"StringList": ["x"]},
        )
    else:
        code = error_of(client.delete_predefined_attribute, **IN, Name="connect:Subtype")
    assert code[:2] == ("InvalidParameterException", 400)


def test_attribute_value_rules(connect) -> None:
    _, client = connect
    bad = [["a", "a"], ["Gold#1"]]
    for values in bad:
        assert (
            error_of(
                client.create_predefined_attribute, **IN, Name="Tier", Values={"StringList": values}
            )[0]
            == "InvalidParameterException"
        )


def test_attribute_count_limit(connect) -> None:
    emulator, client = connect
    emulator.backend.max_attributes = len(emulator.backend.attributes)
    assert error_of(
        client.create_predefined_attribute, **IN, Name="Tier", Values={"StringList": ["x"]}
    )[:2] == ("LimitExceededException", 429)


def test_delete_attribute_held_by_a_user_is_resource_in_use(connect) -> None:
    _, client = connect
    code, status, message = error_of(client.delete_predefined_attribute, **IN, Name="Skill")
    assert (code, status) == ("ResourceInUseException", 409)
    assert "1 user" in message


def test_removing_a_held_value_is_refused_but_an_unheld_one_is_not(connect) -> None:
    _, client = connect
    assert (
        error_of(
            client.update_predefined_attribute,
            **IN,
            Name="Language",
            Values={"StringList": ["English", "French"]},
        )[0]
        == "InvalidRequestException"
    )
    client.update_predefined_attribute(
        **IN, Name="Language", Values={"StringList": ["English", "Spanish"]}
    )


def test_list_and_search_attributes(connect) -> None:
    _, client = connect
    listed = {
        a["Name"] for a in client.list_predefined_attributes(**IN)["PredefinedAttributeSummaryList"]
    }
    assert listed == {"Language", "Skill", "connect:Subtype"}
    found = client.search_predefined_attributes(
        **IN,
        SearchCriteria={
            "StringCondition": {
                "FieldName": "name",
                "Value": "lang",
                "ComparisonType": "STARTS_WITH",
            }
        },
    )
    assert [a["Name"] for a in found["PredefinedAttributes"]] == ["Language"]
    assert found["PredefinedAttributes"][0]["Values"]["StringList"] == [
        "English",
        "Spanish",
        "French",
    ]
    assert found["ApproximateTotalCount"] == 1
    either = {"OrConditions": [
        {"StringCondition": {"FieldName": "name", "Value": "Skill", "ComparisonType": "EXACT"}},
        {"StringCondition": {"FieldName": "name", "Value": "conn", "ComparisonType": "CONTAINS"}},
    ]}  # fmt: skip
    assert {
        a["Name"]
        for a in client.search_predefined_attributes(**IN, SearchCriteria=either)[
            "PredefinedAttributes"
        ]
    } == {"Skill", "connect:Subtype"}


def test_unknown_attribute_is_resource_not_found(connect) -> None:
    _, client = connect
    for call in (client.describe_predefined_attribute, client.delete_predefined_attribute):
        assert error_of(call, **IN, Name="Nope")[:2] == ("ResourceNotFoundException", 404)
    assert error_of(
        client.update_predefined_attribute, **IN, Name="Nope", Values={"StringList": []}
    )[:2] == ("ResourceNotFoundException", 404)


# -- proficiencies --------------------------------------------------------------


def test_associate_update_disassociate(connect) -> None:
    _, client = connect
    client.associate_user_proficiencies(**IN, UserId="id-ann", UserProficiencies=[
        {"AttributeName": "Language", "AttributeValue": "French", "Level": 2},
        {"AttributeName": "skill", "AttributeValue": "Payments", "Level": 5},
    ])  # fmt: skip
    assert proficiencies(client, "id-ann") == {
        ("Language", "French"): 2.0,
        ("Skill", "Payments"): 5.0,
    }
    client.update_user_proficiencies(
        **IN,
        UserId="id-ann",
        UserProficiencies=[{"AttributeName": "Language", "AttributeValue": "French", "Level": 4}],
    )
    client.disassociate_user_proficiencies(
        **IN,
        UserId="id-ann",
        UserProficiencies=[{"AttributeName": "Skill", "AttributeValue": "Payments"}],
    )
    assert proficiencies(client, "id-ann") == {("Language", "French"): 4.0}


@pytest.mark.parametrize(
    ("operation", "proficiency", "fragment"),
    [
        (
            "associate",
            {"AttributeName": "Tier", "AttributeValue": "Gold", "Level": 1},
            "does not exist",
        ),
        (
            "associate",
            {"AttributeName": "Language", "AttributeValue": "Klingon", "Level": 1},
            "does not exist",
        ),
        (
            "associate",
            {"AttributeName": "Language", "AttributeValue": "Spanish", "Level": 2},
            "already associated",
        ),
        (
            "associate",
            {"AttributeName": "Language", "AttributeValue": "English", "Level": 2.5},
            "valid values are 1, 2, 3, 4 and 5",
        ),
        (
            "update",
            {"AttributeName": "Language", "AttributeValue": "English", "Level": 2},
            "not associated",
        ),
        (
            "disassociate",
            {"AttributeName": "Language", "AttributeValue": "English"},
            "not associated",
        ),
    ],
)
def test_proficiency_errors_change_nothing(connect, operation, proficiency, fragment) -> None:
    _, client = connect
    before = proficiencies(client, "id-jane")
    call = getattr(client, f"{operation}_user_proficiencies")
    code, status, message = error_of(call, **IN, UserId="id-jane", UserProficiencies=[proficiency])
    assert (code, status) == ("InvalidParameterException", 400)
    assert fragment in message
    assert proficiencies(client, "id-jane") == before


def test_a_call_with_one_bad_entry_applies_none(connect) -> None:
    _, client = connect
    error_of(client.associate_user_proficiencies, **IN, UserId="id-ann", UserProficiencies=[
        {"AttributeName": "Language", "AttributeValue": "French", "Level": 2},
        {"AttributeName": "Language", "AttributeValue": "Klingon", "Level": 2},
    ])  # fmt: skip
    assert proficiencies(client, "id-ann") == {}


def test_per_user_proficiency_cap(connect) -> None:
    emulator, client = connect
    emulator.backend.max_proficiencies_per_user = 3
    many = [
        {"AttributeName": "Language", "AttributeValue": v, "Level": 1}
        for v in ("English", "French")
    ]
    code, _, message = error_of(
        client.associate_user_proficiencies, **IN, UserId="id-jane", UserProficiencies=many
    )
    assert code == "InvalidParameterException"
    assert "at most 3" in message
    client.associate_user_proficiencies(**IN, UserId="id-jane", UserProficiencies=many[:1])
    assert len(proficiencies(client, "id-jane")) == 3


# -- contacts -------------------------------------------------------------------


@pytest.fixture
def contacts(connect):
    emulator, client = connect
    from reconciler.emulator import backend_from_snapshot
    from tests.conftest import small_snapshot

    snapshot = small_snapshot()
    step = {
        "Expression": {
            "AttributeCondition": {
                "Name": "Language",
                "Value": "Spanish",
                "ProficiencyLevel": 4,
                "ComparisonOperator": "NumberGreaterOrEqualTo",
            }
        },
        "Status": "EXPIRED",
    }
    snapshot["Contacts"] = [
        {"Id": "c-1", "Channel": "VOICE", "InitiationMethod": "INBOUND", "InitiationTimestamp": "2026-11-20T10:00:00+00:00",
         "AgentInfo": {"Id": "id-jane"}, "QueueInfo": {"Id": "q-es"}, "RoutingCriteria": {"Steps": [step], "Index": 0}},
        {"Id": "c-2", "Channel": "CHAT", "InitiationMethod": "API", "InitiationTimestamp": "2026-11-20T11:00:00+00:00"},
        {"Id": "c-3", "Channel": "VOICE", "InitiationMethod": "INBOUND", "InitiationTimestamp": "2026-11-18T09:00:00+00:00"},
    ]  # fmt: skip
    emulator.reset(backend_from_snapshot(snapshot))
    return client


WINDOW = {
    "Type": "INITIATION_TIMESTAMP",
    "StartTime": dt.datetime(2026, 11, 19, tzinfo=dt.UTC),
    "EndTime": dt.datetime(2026, 11, 21, tzinfo=dt.UTC),
}


def test_describe_contact_returns_routing_criteria(contacts) -> None:
    contact = contacts.describe_contact(**IN, ContactId="c-1")["Contact"]
    condition = contact["RoutingCriteria"]["Steps"][0]["Expression"]["AttributeCondition"]
    assert (condition["Name"], condition["ProficiencyLevel"]) == ("Language", 4.0)
    assert contact["InitiationTimestamp"] == dt.datetime(2026, 11, 20, 10, tzinfo=dt.UTC)
    assert error_of(contacts.describe_contact, **IN, ContactId="c-404")[:2] == (
        "ResourceNotFoundException",
        404,
    )


def test_search_contacts_by_time_range_newest_first(contacts) -> None:
    found = contacts.search_contacts(**IN, TimeRange=WINDOW)
    assert [c["Id"] for c in found["Contacts"]] == ["c-2", "c-1"]
    assert found["TotalCount"] == 2
    ascending = contacts.search_contacts(
        **IN, TimeRange=WINDOW, Sort={"FieldName": "INITIATION_TIMESTAMP", "Order": "ASCENDING"}
    )
    assert [c["Id"] for c in ascending["Contacts"]] == ["c-1", "c-2"]


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ({"Channels": ["VOICE"]}, ["c-1"]),
        ({"InitiationMethods": ["API"]}, ["c-2"]),
        ({"AgentIds": ["id-jane"]}, ["c-1"]),
        ({"QueueIds": ["q-es"], "Channels": ["CHAT"]}, []),
    ],
)
def test_search_contacts_criteria(contacts, criteria, expected) -> None:
    found = contacts.search_contacts(**IN, TimeRange=WINDOW, SearchCriteria=criteria)
    assert [c["Id"] for c in found["Contacts"]] == expected


def test_search_contacts_rejects_an_inverted_range(contacts) -> None:
    inverted = {**WINDOW, "StartTime": WINDOW["EndTime"], "EndTime": WINDOW["StartTime"]}
    assert (
        error_of(contacts.search_contacts, **IN, TimeRange=inverted)[0]
        == "InvalidParameterException"
    )


# -- members the emulator does not implement ------------------------------------


@pytest.mark.parametrize(
    ("criteria", "named"),
    [
        ({"Name": {"SearchText": ["x"], "MatchType": "MATCH_ANY"}}, "SearchCriteria.Name"),
        ({"AgentHierarchyGroups": {"L1Ids": ["hg-emea"]}}, "SearchCriteria.AgentHierarchyGroups"),
        (
            {"RoutingCriteria": {"Steps": [{"AgentCriteria": {"AgentIds": ["id-jane"]}}]}},
            "SearchCriteria.RoutingCriteria",
        ),
        (
            {"SearchableContactAttributes": {"Criteria": [{"Key": "k", "Values": ["v"]}]}},
            "SearchCriteria.SearchableContactAttributes",
        ),
        (
            {"SearchableSegmentAttributes": {"Criteria": [{"Key": "k", "Values": ["v"]}]}},
            "SearchCriteria.SearchableSegmentAttributes",
        ),
    ],
)
def test_search_contacts_refuses_criteria_it_does_not_implement(contacts, criteria, named) -> None:
    code, status, message = error_of(
        contacts.search_contacts, **IN, TimeRange=WINDOW, SearchCriteria=criteria
    )
    assert (code, status) == ("InvalidParameterException", 400)
    assert named in message


def test_search_contacts_refuses_a_sort_field_contacts_lack(contacts) -> None:
    code, _, message = error_of(
        contacts.search_contacts,
        **IN,
        TimeRange=WINDOW,
        Sort={"FieldName": "EXPIRY_TIMESTAMP", "Order": "ASCENDING"},
    )
    assert code == "InvalidParameterException"
    assert "EXPIRY_TIMESTAMP" in message


@pytest.mark.parametrize("field", ["CHANNEL", "INITIATION_METHOD"])
def test_search_contacts_sorts_by_text_fields(contacts, field) -> None:
    found = contacts.search_contacts(
        **IN, TimeRange=WINDOW, Sort={"FieldName": field, "Order": "ASCENDING"}
    )
    # c-2 is CHAT/API, c-1 VOICE/INBOUND: ascending puts c-2 first either way.
    assert [c["Id"] for c in found["Contacts"]] == ["c-2", "c-1"]


def test_search_users_refuses_a_search_filter(connect) -> None:
    _, client = connect
    code, _, message = error_of(
        client.search_users,
        **IN,
        SearchFilter={"TagFilter": {"TagCondition": {"TagKey": "team", "TagValue": "a"}}},
    )
    assert code == "InvalidParameterException"
    assert "SearchFilter" in message


@pytest.mark.parametrize("field", ["description", "Name", "AttributeName"])
def test_search_predefined_attributes_refuses_other_field_names(connect, field) -> None:
    _, client = connect
    condition = {
        "StringCondition": {"FieldName": field, "Value": "Skill", "ComparisonType": "EXACT"}
    }
    code, _, message = error_of(
        client.search_predefined_attributes, **IN, SearchCriteria={"OrConditions": [condition]}
    )
    assert code == "InvalidParameterException"
    assert repr(field) in message


def test_search_predefined_attributes_by_name(connect) -> None:
    _, client = connect
    condition = {
        "StringCondition": {"FieldName": "name", "Value": "skill", "ComparisonType": "EXACT"}
    }
    found = client.search_predefined_attributes(**IN, SearchCriteria={"AndConditions": [condition]})
    assert [a["Name"] for a in found["PredefinedAttributes"]] == ["Skill"]


def test_every_emulated_operation_declares_what_it_implements() -> None:
    from reconciler.emulator import ConnectBackend
    from reconciler.emulator.backend import IMPLEMENTED_MEMBERS
    from tests.conftest import small_snapshot

    backend = ConnectBackend(small_snapshot()["Instance"])
    assert set(backend._handlers) <= set(IMPLEMENTED_MEMBERS)


# -- system attributes ------------------------------------------------------------


@pytest.fixture
def with_language(connect):
    """The small snapshot plus connect:Language with two system values."""
    from reconciler.emulator import backend_from_snapshot
    from tests.conftest import small_snapshot

    emulator, client = connect
    snapshot = small_snapshot()
    snapshot["PredefinedAttributes"].append({
        "Name": "connect:Language", "Values": {"StringList": ["en-US", "fr-CA"]},
        "AttributeConfiguration": {"EnableValueValidationOnAssociation": False, "IsReadOnly": True},
    })  # fmt: skip
    emulator.reset(backend_from_snapshot(snapshot))
    return client


def language_values(client) -> list[str]:
    described = client.describe_predefined_attribute(**IN, Name="connect:Language")
    return described["PredefinedAttribute"]["Values"]["StringList"]


def test_connect_language_takes_custom_values(with_language) -> None:
    # predefined-attributes.html: "You can add 500 custom values to connect:Language".
    client = with_language
    client.update_predefined_attribute(
        **IN, Name="connect:Language", Values={"StringList": ["en-US", "fr-CA", "nl-NL"]},
        Purposes=[], AttributeConfiguration={"EnableValueValidationOnAssociation": False},
    )  # fmt: skip
    assert language_values(client) == ["en-US", "fr-CA", "nl-NL"]
    client.associate_user_proficiencies(
        **IN, UserId="id-ann", UserProficiencies=[{"AttributeName": "connect:Language", "AttributeValue": "nl-NL", "Level": 2}]
    )  # fmt: skip
    client.update_predefined_attribute(
        **IN, Name="connect:Language", Values={"StringList": ["en-US", "fr-CA", "nl-NL", "de-DE"]}
    )


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"Values": {"StringList": ["en-US", "nl-NL"]}}, "System values of connect:Language cannot be removed: fr-CA"),
        ({"Values": {"StringList": ["en-US", "fr-CA", "connect:x"]}}, "reserved by Amazon Connect"),
        ({"Purposes": ["routing"]}, "The Purposes of system attribute connect:Language cannot be changed"),
        ({"AttributeConfiguration": {"EnableValueValidationOnAssociation": True}}, "AttributeConfiguration"),
    ],
)  # fmt: skip
def test_connect_language_keeps_its_system_values_and_settings(
    with_language, update, message
) -> None:
    code, _, text = error_of(
        with_language.update_predefined_attribute, **IN, Name="connect:Language", **update
    )
    assert code == "InvalidParameterException"
    assert message in text
    assert language_values(with_language) == ["en-US", "fr-CA"]


def test_connect_language_settings_resent_unchanged_are_accepted(with_language) -> None:
    with_language.update_predefined_attribute(
        **IN, Name="connect:Language", Purposes=[],
        AttributeConfiguration={"EnableValueValidationOnAssociation": False},
    )  # fmt: skip
    assert language_values(with_language) == ["en-US", "fr-CA"]
