"""SearchUsers through the index, over HTTP: it follows every write, and
with a search-index delay it trails writes by exactly that delay."""

from __future__ import annotations

from tests.conftest import INSTANCE_ID, small_snapshot

IN = {"InstanceId": INSTANCE_ID}


def holders(client, value: str, level: int | None = None) -> list[str]:
    conditions = [
        {"StringCondition": {"FieldName": "name", "Value": "Language", "ComparisonType": "EXACT"}},
        {"StringCondition": {"FieldName": "value", "Value": value, "ComparisonType": "EXACT"}},
    ]
    if level is not None:
        number = {"FieldName": "limit", "ComparisonType": "EQUAL", "MinValue": level}
        conditions.append({"NumberCondition": number})
    criteria = {"ListCondition": {"TargetListType": "PROFICIENCIES", "Conditions": conditions}}
    found = client.search_users(**IN, SearchCriteria=criteria)["Users"]
    return sorted(u["Username"] for u in found)


def french(level: int) -> list[dict]:
    return [{"AttributeName": "Language", "AttributeValue": "French", "Level": level}]


def test_search_follows_every_write(connect) -> None:
    _, client = connect
    client.associate_user_proficiencies(**IN, UserId="id-ann", UserProficiencies=french(2))
    client.associate_user_proficiencies(**IN, UserId="id-joe", UserProficiencies=french(3))
    assert holders(client, "French") == ["ann", "joe"]
    client.update_user_proficiencies(**IN, UserId="id-ann", UserProficiencies=french(3))
    assert holders(client, "French", 3) == ["ann", "joe"]
    assert holders(client, "French", 2) == []
    client.disassociate_user_proficiencies(
        **IN,
        UserId="id-joe",
        UserProficiencies=[{"AttributeName": "Language", "AttributeValue": "French"}],
    )
    assert holders(client, "French") == ["ann"]
    client.delete_user(**IN, UserId="id-ann")
    assert holders(client, "French") == []


def test_username_search_finds_a_created_user(connect) -> None:
    _, client = connect
    client.create_user(
        **IN, Username="Kim", SecurityProfileIds=["sp"], RoutingProfileId="rp-basic",
        PhoneConfig={"PhoneType": "SOFT_PHONE"},
    )  # fmt: skip
    criteria = {
        "StringCondition": {"FieldName": "Username", "Value": "kim", "ComparisonType": "EXACT"}
    }
    assert [u["Username"] for u in client.search_users(**IN, SearchCriteria=criteria)["Users"]] == [
        "Kim"
    ]


def test_search_index_delay_trails_writes(connect) -> None:
    from reconciler.emulator import backend_from_snapshot

    emulator, client = connect
    now = [1000.0]
    emulator.reset(
        backend_from_snapshot(small_snapshot(), clock=lambda: now[0], search_index_delay=5.0)
    )
    client.associate_user_proficiencies(**IN, UserId="id-ann", UserProficiencies=french(2))
    listed = client.list_user_proficiencies(**IN, UserId="id-ann")["UserProficiencyList"]
    assert [p["AttributeValue"] for p in listed] == ["French"]  # reads by id do not lag
    now[0] += 4.9
    assert holders(client, "French") == []
    now[0] += 0.1
    assert holders(client, "French") == ["ann"]


def test_search_shows_users_as_indexed_while_it_lags(connect) -> None:
    # A lagging index answers with the user as it was when indexed: a tag
    # shows in DescribeUser at once and in SearchUsers after the delay.
    from reconciler.emulator import backend_from_snapshot

    emulator, client = connect
    now = [1000.0]
    emulator.reset(
        backend_from_snapshot(small_snapshot(), clock=lambda: now[0], search_index_delay=5.0)
    )
    arn = client.describe_user(**IN, UserId="id-ann")["User"]["Arn"]
    client.tag_resource(resourceArn=arn, tags={"team": "billing"})

    def searched_tags() -> dict | None:
        (ann,) = [u for u in client.search_users(**IN)["Users"] if u["Username"] == "ann"]
        return ann.get("Tags")

    assert client.describe_user(**IN, UserId="id-ann")["User"]["Tags"] == {"team": "billing"}
    now[0] += 4.9
    assert searched_tags() is None
    now[0] += 0.1
    assert searched_tags() == {"team": "billing"}
