"""Every undocumented choice answered each way, over HTTP; and eventual
consistency: a write reaches each read path after its own delay."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from reconciler.emulator import SnapshotError, backend_from_snapshot
from reconciler.emulator.behaviour import CHOICES, Behaviour, BehaviourError
from tests.conftest import INSTANCE_ID, small_snapshot

IN = {"InstanceId": INSTANCE_ID}


@pytest.fixture
def served(emulator_server, connect_session_client):
    """A function that serves the small instance under some behaviours (and
    a clock), returning the boto3 client."""

    def serve(*behaviour: str, clock=None):
        options = {"clock": clock} if clock else {}
        backend = backend_from_snapshot(small_snapshot(), behaviour=behaviour, **options)
        emulator_server.reset(backend)
        return connect_session_client

    return serve


def string(field: str, value: str) -> dict:
    return {"StringCondition": {"FieldName": field, "Value": value, "ComparisonType": "EXACT"}}


def listed(*conditions: dict) -> dict:
    return {"ListCondition": {"TargetListType": "PROFICIENCIES", "Conditions": list(conditions)}}


def limit(kind: str, **bounds: int) -> dict:
    return {"NumberCondition": {"FieldName": "limit", "ComparisonType": kind, **bounds}}


def found(client, criteria: dict) -> list[str]:
    return sorted(
        u["Username"] for u in client.search_users(**IN, SearchCriteria=criteria)["Users"]
    )


def code_of(call, **kwargs) -> str:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    return str(raised.value.response["Error"]["Code"])


# jane holds Language/Spanish at 4 and Skill/Billing at 3.
SPANISH_AT_3 = listed(
    string("name", "Language"), string("value", "Spanish"), limit("GREATER_OR_EQUAL", MinValue=3)
)
SPANISH_EQUAL_3 = listed(
    string("name", "Language"), string("value", "Spanish"), limit("EQUAL", MinValue=3, MaxValue=3)
)


@pytest.mark.parametrize(
    ("choice", "matched"), [("one-proficiency", []), ("any-proficiency", ["jane"])]
)
def test_list_condition_per_proficiency_or_across_the_list(served, choice, matched) -> None:
    client = served(f"list-condition={choice}")
    assert found(client, SPANISH_EQUAL_3) == matched  # her 3 is Billing's
    assert found(client, SPANISH_AT_3) == ["jane"]


@pytest.mark.parametrize(
    ("choice", "min_only", "max_only", "both"),
    [
        ("either-bound", ["jane"], ["jane"], ["jane"]),
        ("min-value", ["jane"], "InvalidParameterException", ["jane"]),
        ("max-value", "InvalidParameterException", ["jane"], ["jane"]),
        ("both-bounds", "InvalidParameterException", "InvalidParameterException", ["jane"]),
    ],
)
def test_which_bound_equal_reads(served, choice, min_only, max_only, both) -> None:
    client = served(f"number-equal={choice}")
    base = (string("name", "Language"), string("value", "Spanish"))
    for bounds, expected in (({"MinValue": 4}, min_only), ({"MaxValue": 4}, max_only),
                             ({"MinValue": 4, "MaxValue": 4}, both)):  # fmt: skip
        criteria = listed(*base, limit("EQUAL", **bounds))
        if isinstance(expected, str):
            assert code_of(client.search_users, **IN, SearchCriteria=criteria) == expected
        else:
            assert found(client, criteria) == expected


@pytest.mark.parametrize(("choice", "matched"), [("insensitive", ["jane"]), ("sensitive", [])])
def test_string_case(served, choice, matched) -> None:
    client = served(f"string-case={choice}")
    assert found(client, listed(string("name", "Language"), string("value", "SPANISH"))) == matched
    assert found(client, string("Username", "JANE")) == matched
    assert found(client, string("Username", "jane")) == ["jane"]


@pytest.mark.parametrize(
    ("choice", "outcome"),
    [("matched", ["jane"]), ("unmatched", []), ("refused", "InvalidParameterException")],
)
def test_short_values(served, choice, outcome) -> None:
    client = served(f"short-values={choice}")
    client.update_predefined_attribute(
        **IN, Name="Skill", Values={"StringList": ["Billing", "Payments", "A"]}
    )
    client.associate_user_proficiencies(**IN, UserId="id-jane", UserProficiencies=[
        {"AttributeName": "Skill", "AttributeValue": "A", "Level": 2}])  # fmt: skip
    criteria = listed(string("name", "Skill"), string("value", "A"))
    if isinstance(outcome, str):
        assert code_of(client.search_users, **IN, SearchCriteria=criteria) == outcome
    else:
        assert found(client, criteria) == outcome


def test_associating_a_held_proficiency(served) -> None:
    again = [{"AttributeName": "Language", "AttributeValue": "Spanish", "Level": 2}]
    client = served("associate-held=refused")
    assert (
        code_of(
            client.associate_user_proficiencies, **IN, UserId="id-jane", UserProficiencies=again
        )
        == "InvalidParameterException"
    )
    client = served("associate-held=updates-level")
    client.associate_user_proficiencies(**IN, UserId="id-jane", UserProficiencies=again)
    held = client.list_user_proficiencies(**IN, UserId="id-jane")["UserProficiencyList"]
    assert {(p["AttributeValue"], p["Level"]) for p in held} == {("Spanish", 2.0), ("Billing", 3.0)}


def test_removing_a_held_value(served) -> None:
    only_english = {"StringList": ["English", "French"]}
    client = served("remove-held-value=refused")
    assert (
        code_of(client.update_predefined_attribute, **IN, Name="Language", Values=only_english)
        == "InvalidRequestException"
    )
    client = served("remove-held-value=allowed")
    client.update_predefined_attribute(**IN, Name="Language", Values=only_english)
    described = client.describe_predefined_attribute(**IN, Name="Language")["PredefinedAttribute"]
    assert described["Values"]["StringList"] == ["English", "French"]


def test_max_or_conditions(served) -> None:
    three = {"OrConditions": [string("Username", n) for n in ("jane", "joe", "ann")]}
    client = served("max-or-conditions=2")
    assert code_of(client.search_users, **IN, SearchCriteria=three) == "InvalidParameterException"
    names = {
        "OrConditions": [
            {"StringCondition": {"FieldName": "name", "Value": n, "ComparisonType": "EXACT"}}
            for n in ("a1", "b2", "c3")
        ]
    }
    assert (
        code_of(client.search_predefined_attributes, **IN, SearchCriteria=names)
        == "InvalidParameterException"
    )
    client = served("max-or-conditions=3")
    assert found(client, three) == ["ann", "jane", "joe"]


@pytest.mark.parametrize(
    ("choice", "first"), [("newest-first", "c-new"), ("oldest-first", "c-old")]
)
def test_contact_order_without_a_sort(
    emulator_server, connect_session_client, choice, first
) -> None:
    snapshot = small_snapshot()
    snapshot["Contacts"] = [
        {"Id": "c-old", "InitiationTimestamp": "2026-01-01T00:00:00Z", "Channel": "VOICE"},
        {"Id": "c-new", "InitiationTimestamp": "2026-01-02T00:00:00Z", "Channel": "VOICE"},
    ]
    emulator_server.reset(backend_from_snapshot(snapshot, behaviour=(f"contact-order={choice}",)))
    window = {"Type": "INITIATION_TIMESTAMP", "StartTime": 0, "EndTime": 2_000_000_000}
    unsorted = connect_session_client.search_contacts(**IN, TimeRange=window)["Contacts"]
    assert unsorted[0]["Id"] == first
    newest = {"FieldName": "INITIATION_TIMESTAMP", "Order": "DESCENDING"}
    sorted_ = connect_session_client.search_contacts(**IN, TimeRange=window, Sort=newest)[
        "Contacts"
    ]
    assert sorted_[0]["Id"] == "c-new"


def test_every_switch_is_a_documented_row() -> None:
    from tests.conftest import ROOT

    fidelity = (ROOT / "docs" / "emulator-fidelity.md").read_text(encoding="utf-8")
    for key, (choices, default) in CHOICES.items():
        assert f"`{key}`" in fidelity and f"`{default}`" in fidelity, key
        assert all(f"`{choice}`" in fidelity for choice in choices), key
    assert "`max-or-conditions`" in fidelity and "`consistency-lag`" in fidelity


@pytest.mark.parametrize(
    ("specs", "fragment"),
    [
        (["list-condition=sometimes"], "not one of one-proficiency, any-proficiency"),
        (["colour=blue"], "unknown behaviour 'colour'; known: list-condition"),
        (["list-condition"], "write KEY=CHOICE"),
        (["max-or-conditions=0"], "a whole number from 1 to 10000"),
        (["consistency-lag=-1"], "seconds from 0 to"),
        (["consistency-lag=nan"], "finite"),
    ],
)
def test_bad_behaviours_name_the_valid_ones(specs, fragment) -> None:
    with pytest.raises(BehaviourError, match=fragment):
        Behaviour.parse(specs)


def test_a_snapshot_carries_its_behaviour_and_a_bad_one_is_named() -> None:
    snapshot = small_snapshot()
    snapshot["Behaviour"] = {"list-condition": "any-proficiency", "max-or-conditions": 5}
    backend = backend_from_snapshot(snapshot, behaviour=("max-or-conditions=7",))
    assert backend.behaviour.list_condition == "any-proficiency"
    assert backend.behaviour.max_or_conditions == 7  # the command line wins
    snapshot["Behaviour"] = {"string-case": "loud"}
    with pytest.raises(SnapshotError, match=r"Behaviour: .*string-case.*insensitive, sensitive"):
        backend_from_snapshot(snapshot)


# -- eventual consistency ---------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_write_reaches_every_read_path_after_its_own_delay(served) -> None:
    clock = Clock()
    client = served("consistency-lag=10", "seed=3", clock=clock)
    client.create_predefined_attribute(**IN, Name="Tier", Values={"StringList": ["Gold"]})
    gold = [{"AttributeName": "Tier", "AttributeValue": "Gold", "Level": 3}]
    # Right after: the attribute is not there yet for Associate's checks, nor for the reads.
    # (API Reference, eventual-consistency.html: "such as a ResourceNotFoundException")
    assert code_of(client.associate_user_proficiencies, **IN, UserId="id-jane",
                   UserProficiencies=gold) == "ResourceNotFoundException"  # fmt: skip
    silver = [{"AttributeName": "Tier", "AttributeValue": "Silver", "Level": 3}]
    assert code_of(client.associate_user_proficiencies, **IN, UserId="id-jane",
                   UserProficiencies=silver) == "InvalidParameterException"  # never created  # fmt: skip
    assert (
        code_of(client.describe_predefined_attribute, **IN, Name="Tier")
        == "ResourceNotFoundException"
    )
    assert "Tier" not in names(client)
    clock.now += 10  # the lag has passed for every path
    assert "Tier" in names(client)
    client.associate_user_proficiencies(**IN, UserId="id-jane", UserProficiencies=gold)
    listed_now = client.list_user_proficiencies(**IN, UserId="id-jane")["UserProficiencyList"]
    assert ("Tier", "Gold") not in {(p["AttributeName"], p["AttributeValue"]) for p in listed_now}
    assert found(client, listed(string("name", "Tier"))) == []
    clock.now += 10
    listed_later = client.list_user_proficiencies(**IN, UserId="id-jane")["UserProficiencyList"]
    assert ("Tier", "Gold") in {(p["AttributeName"], p["AttributeValue"]) for p in listed_later}
    assert found(client, listed(string("name", "Tier"))) == ["jane"]


def test_read_paths_disagree_while_a_write_travels(served) -> None:
    clock = Clock()
    client = served("consistency-lag=10", "seed=1", clock=clock)
    client.create_predefined_attribute(**IN, Name="Tier", Values={"StringList": ["Gold"]})
    seen_at = {}
    for step in range(1, 11):
        clock.now += 1
        for path, present in (
            ("describe", _present(lambda: client.describe_predefined_attribute(**IN, Name="Tier"))),
            ("search", "Tier" in names(client)),
            ("list", "Tier" in [a["Name"] for a in client.list_predefined_attributes(**IN)["PredefinedAttributeSummaryList"]]),
        ):  # fmt: skip
            if present:
                seen_at.setdefault(path, step)
    assert set(seen_at) == {"describe", "search", "list"}
    assert len(set(seen_at.values())) > 1  # not all at once


def names(client) -> list[str]:
    return [a["Name"] for a in client.search_predefined_attributes(**IN)["PredefinedAttributes"]]


def _present(call) -> bool:
    try:
        call()
    except ClientError:
        return False
    return True
