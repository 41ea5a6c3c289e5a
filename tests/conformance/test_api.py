"""The Connect API behaviours connect-reconciler relies on, as boto3 calls alone.

Each test names its source. Tests marked `undocumented` check a choice no AWS
page states: on the emulator they assert the emulator's choice (see
docs/emulator-fidelity.md); against AWS they record what AWS does and the
session ends with a report of it.
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests.conformance.conftest import Endpoint

API = "https://docs.aws.amazon.com/connect/latest/APIReference"
ADMIN = "https://docs.aws.amazon.com/connect/latest/adminguide"


def first_user(endpoint: Endpoint) -> tuple[str, str]:
    username = next(iter(endpoint.users))
    return username, endpoint.users[username]


def held(endpoint: Endpoint, level: float, values: list[str] | None = None) -> tuple[str, str, str]:
    """(attribute, username, user id): a new attribute (values `a`, or
    `values`) whose value `a` the first user holds at `level`."""
    name = endpoint.new_attribute(values or ["a"])
    username, user_id = first_user(endpoint)
    endpoint.call(
        "AssociateUserProficiencies", UserId=user_id, UserProficiencies=[entry(name, "a", level)]
    )
    return name, username, user_id


def entry(name: str, value: str, level: float | None = None) -> dict:
    return {
        "AttributeName": name,
        "AttributeValue": value,
        **({"Level": level} if level is not None else {}),
    }


def choice(endpoint: Endpoint, behaviour: str, outcome: tuple[str, int], emulated: str) -> None:
    """Assert the emulator's choice; against AWS, record the one AWS makes."""
    code = outcome[0] or "accepted"
    if endpoint.on_aws:
        endpoint.observe(behaviour, f"{code} (emulator: {emulated})")
    else:
        assert code == emulated, behaviour


# -- predefined attributes ------------------------------------------------------


def test_create_then_describe_returns_values_purposes_and_configuration(endpoint) -> None:
    # API_CreatePredefinedAttribute, API_DescribePredefinedAttribute
    name = endpoint.new_attribute(
        ["a", "b"],
        Purposes=["routing"],
        AttributeConfiguration={"EnableValueValidationOnAssociation": True},
    )
    described = endpoint.call("DescribePredefinedAttribute", Name=name)["PredefinedAttribute"]
    assert described["Name"] == name
    assert described["Values"]["StringList"] == ["a", "b"]
    assert described["Purposes"] == ["routing"]
    assert described["AttributeConfiguration"]["EnableValueValidationOnAssociation"] is True


def test_names_differing_only_in_case_are_duplicates(endpoint) -> None:
    # predefined-attributes.html: "case-sensitivity doesn't allow duplicate names";
    # API_CreatePredefinedAttribute lists DuplicateResourceException.
    name = endpoint.new_attribute(["a"])
    code, status = endpoint.error(
        "CreatePredefinedAttribute", Name=name.upper(), Values={"StringList": ["a"]}
    )
    if not code:  # created after all: delete it with the rest
        endpoint.created.append(name.upper())
    assert (code, status) == ("DuplicateResourceException", 409)


def test_update_replaces_the_whole_value_list(endpoint) -> None:
    # API_UpdatePredefinedAttribute: Values is "the values of a predefined attribute".
    name = endpoint.new_attribute(["a", "b"])
    endpoint.call("UpdatePredefinedAttribute", Name=name, Values={"StringList": ["b", "c"]})
    described = endpoint.call("DescribePredefinedAttribute", Name=name)["PredefinedAttribute"]
    assert sorted(described["Values"]["StringList"]) == ["b", "c"]


def test_search_predefined_attributes_by_name(endpoint) -> None:
    # API_SearchPredefinedAttributes; FieldName `name` (PredefinedAttributeSearchCriteria).
    name = endpoint.new_attribute(["a"])
    condition = {"FieldName": "name", "Value": name, "ComparisonType": "EXACT"}

    def found() -> bool:
        page = endpoint.call(
            "SearchPredefinedAttributes",
            SearchCriteria={"OrConditions": [{"StringCondition": condition}]},
        )
        listed = page["PredefinedAttributes"]
        # The reader relies on values coming with the search (no Describe each).
        return [(a["Name"], a["Values"]["StringList"]) for a in listed] == [(name, ["a"])]

    assert endpoint.eventually(found)


def test_deleting_an_attribute_someone_holds_is_refused(endpoint) -> None:
    # predefined-attributes.html: "You can only delete an attribute if it's not
    # associated with any agent"; API_DeletePredefinedAttribute: ResourceInUseException.
    name, _, _ = held(endpoint, 1)
    assert endpoint.error("DeletePredefinedAttribute", Name=name)[0] == "ResourceInUseException"


@pytest.mark.undocumented
def test_lookup_by_name_ignores_case(endpoint) -> None:
    name = endpoint.new_attribute(["a"])
    outcome = endpoint.error("DescribePredefinedAttribute", Name=name.upper())
    choice(endpoint, "DescribePredefinedAttribute with the name in other case", outcome, "accepted")


@pytest.mark.undocumented
def test_removing_a_value_someone_holds(endpoint) -> None:
    name, _, _ = held(endpoint, 2, ["a", "b"])
    outcome = endpoint.error("UpdatePredefinedAttribute", Name=name, Values={"StringList": ["b"]})
    choice(
        endpoint,
        "UpdatePredefinedAttribute removing a held value",
        outcome,
        "InvalidRequestException",
    )


@pytest.mark.undocumented
def test_system_attribute_subtype_cannot_change(endpoint) -> None:
    # system-predefined-attributes.html: connect:Subtype "cannot be changed"
    # (documented); the error code is not.
    outcome = endpoint.error(
        "UpdatePredefinedAttribute", Name="connect:Subtype", Values={"StringList": ["connect:Chat"]}
    )
    assert outcome[0] != ""
    choice(
        endpoint,
        "UpdatePredefinedAttribute of connect:Subtype",
        outcome,
        "InvalidParameterException",
    )


# -- proficiencies --------------------------------------------------------------


def test_associate_update_disassociate_round_trip(endpoint) -> None:
    # API_AssociateUserProficiencies, API_UpdateUserProficiencies,
    # API_DisassociateUserProficiencies, API_ListUserProficiencies
    name = endpoint.new_attribute(["a", "b"])
    username, user_id = first_user(endpoint)
    endpoint.call("AssociateUserProficiencies", UserId=user_id,
                  UserProficiencies=[entry(name, "a", 1), entry(name, "b", 5)])  # fmt: skip
    assert {k: v for k, v in endpoint.proficiencies(username).items() if k[0] == name} == {
        (name, "a"): 1.0,
        (name, "b"): 5.0,
    }
    endpoint.call(
        "UpdateUserProficiencies", UserId=user_id, UserProficiencies=[entry(name, "a", 3)]
    )
    endpoint.call(
        "DisassociateUserProficiencies", UserId=user_id, UserProficiencies=[entry(name, "b")]
    )
    assert {k: v for k, v in endpoint.proficiencies(username).items() if k[0] == name} == {
        (name, "a"): 3.0
    }


def test_a_fractional_level_is_refused(endpoint) -> None:
    # API_UserProficiency: "The valid values are 1, 2, 3, 4 and 5." (The model's
    # range 1.0-5.0 makes boto3 refuse 0 and 6 before sending.)
    name = endpoint.new_attribute(["a"])
    _, user_id = first_user(endpoint)
    code, _ = endpoint.error(
        "AssociateUserProficiencies", UserId=user_id, UserProficiencies=[entry(name, "a", 2.5)]
    )
    assert code != ""


def test_a_value_not_in_the_attribute_is_refused(endpoint) -> None:
    # predefined-attributes.html: proficiencies take the attribute's predefined values.
    name = endpoint.new_attribute(["a"])
    _, user_id = first_user(endpoint)
    code, _ = endpoint.error(
        "AssociateUserProficiencies", UserId=user_id, UserProficiencies=[entry(name, "zz", 1)]
    )
    assert code != ""


@pytest.mark.undocumented
def test_associating_a_held_proficiency_again(endpoint) -> None:
    name, _, user_id = held(endpoint, 1)
    outcome = endpoint.error(
        "AssociateUserProficiencies", UserId=user_id, UserProficiencies=[entry(name, "a", 4)]
    )
    choice(
        endpoint,
        "AssociateUserProficiencies of a held proficiency",
        outcome,
        "InvalidParameterException",
    )


@pytest.mark.undocumented
def test_updating_a_proficiency_not_held(endpoint) -> None:
    name = endpoint.new_attribute(["a"])
    _, user_id = first_user(endpoint)
    outcome = endpoint.error(
        "UpdateUserProficiencies", UserId=user_id, UserProficiencies=[entry(name, "a", 2)]
    )
    choice(
        endpoint,
        "UpdateUserProficiencies of a proficiency not held",
        outcome,
        "InvalidParameterException",
    )


@pytest.mark.undocumented
def test_disassociating_a_proficiency_not_held(endpoint) -> None:
    name = endpoint.new_attribute(["a"])
    _, user_id = first_user(endpoint)
    outcome = endpoint.error(
        "DisassociateUserProficiencies", UserId=user_id, UserProficiencies=[entry(name, "a")]
    )
    choice(
        endpoint,
        "DisassociateUserProficiencies of a proficiency not held",
        outcome,
        "InvalidParameterException",
    )


@pytest.mark.undocumented
def test_a_batch_with_one_bad_entry_changes_nothing(endpoint) -> None:
    name = endpoint.new_attribute(["a"])
    username, user_id = first_user(endpoint)
    outcome = endpoint.error(
        "AssociateUserProficiencies",
        UserId=user_id,
        UserProficiencies=[entry(name, "a", 1), entry(name, "missing", 1)],
    )
    assert outcome[0] != ""
    kept = (name, "a") in endpoint.proficiencies(username)
    choice(
        endpoint,
        "a failed AssociateUserProficiencies batch",
        ("partially applied" if kept else "atomic", 0),
        "atomic",
    )


@pytest.mark.undocumented
def test_the_per_user_cap(endpoint) -> None:
    # The cap is documented (amazon-connect-service-limits.html: "Proficiencies
    # per agent", 10, adjustable); the error code for passing it is not.
    values = [f"v{n}" for n in range(11)]
    name = endpoint.new_attribute(values)
    username, user_id = first_user(endpoint)
    room = 10 - len(endpoint.proficiencies(username))
    outcome = endpoint.error(
        "AssociateUserProficiencies",
        UserId=user_id,
        UserProficiencies=[entry(name, v, 1) for v in values[: room + 1]],
    )
    assert outcome[0] != "" or endpoint.on_aws  # an account may have a raised quota
    choice(
        endpoint,
        "AssociateUserProficiencies past the per-user cap",
        outcome,
        "InvalidParameterException",
    )


# -- searching users by proficiency ---------------------------------------------


def proficiency_search(name: str, value: str, minimum: int) -> dict:
    # API_Condition / API_StringCondition / API_NumberCondition: FieldName is
    # `name` or `value` for strings and `limit` for numbers.
    return {
        "ListCondition": {
            "TargetListType": "PROFICIENCIES",
            "Conditions": [
                {"StringCondition": {"FieldName": "name", "Value": name, "ComparisonType": "EXACT"}},
                {"StringCondition": {"FieldName": "value", "Value": value, "ComparisonType": "EXACT"}},
                {"NumberCondition": {"FieldName": "limit", "MinValue": minimum, "ComparisonType": "GREATER_OR_EQUAL"}},
            ],
        }
    }  # fmt: skip


def test_search_users_by_proficiency_name_value_and_limit(endpoint) -> None:
    # API_SearchUsers with a ListCondition; the index may trail writes (eventually).
    name, username, _ = held(endpoint, 4)

    def holders(minimum: int) -> set[str]:
        found = endpoint.call("SearchUsers", SearchCriteria=proficiency_search(name, "a", minimum))
        return {u["Username"] for u in found["Users"]}

    assert endpoint.eventually(lambda: holders(4) == {username})
    assert holders(5) == set()


@pytest.mark.undocumented
def test_search_users_equal_on_limit_reads_which_bound(endpoint) -> None:
    # The search read asks, per value, for holders at levels {4, 5} (bit 2) as
    # an OR of EQUAL conditions carrying MinValue = MaxValue, right whichever
    # bound EQUAL reads; which one it reads is not documented (API_NumberCondition
    # names both): record it.
    name, username, _ = held(endpoint, 4)

    def at_levels(levels: tuple[int, ...], **bounds: bool) -> set[str] | str:
        def limit(level: int) -> dict:
            given = {k: level for k, wanted in (("MinValue", bounds.get("low", True)),
                                                  ("MaxValue", bounds.get("high", True))) if wanted}  # fmt: skip
            return {"NumberCondition": {"FieldName": "limit", "ComparisonType": "EQUAL", **given}}

        criteria = {"OrConditions": [{"ListCondition": {"TargetListType": "PROFICIENCIES", "Conditions": [
            {"StringCondition": {"FieldName": "name", "Value": name, "ComparisonType": "EXACT"}},
            {"StringCondition": {"FieldName": "value", "Value": "a", "ComparisonType": "EXACT"}},
            limit(level),
        ]}} for level in levels]}  # fmt: skip
        code, _ = endpoint.error("SearchUsers", SearchCriteria=criteria)
        if code:
            return code
        return {
            u["Username"] for u in endpoint.call("SearchUsers", SearchCriteria=criteria)["Users"]
        }

    assert endpoint.eventually(lambda: at_levels((4, 5)) == {username})
    assert at_levels((1, 3, 5)) == set() and at_levels((2, 3)) == set()
    alone = {side: at_levels((4,), low=side == "MinValue", high=side == "MaxValue")
             for side in ("MinValue", "MaxValue")}  # fmt: skip
    read = [side for side, found in alone.items() if found == {username}]
    answer = {("MinValue", "MaxValue"): "either-bound", ("MinValue",): "min-value",
              ("MaxValue",): "max-value", (): "both-bounds"}[tuple(read)]  # fmt: skip
    choice(endpoint, "behaviour number-equal", (answer, 0), "either-bound")


def test_search_users_refuses_other_proficiency_field_names(endpoint) -> None:
    # API_Condition documents `name`/`value`; other names are not fields.
    criteria = {"ListCondition": {"TargetListType": "PROFICIENCIES", "Conditions": [
        {"StringCondition": {"FieldName": "AttributeName", "Value": "x", "ComparisonType": "EXACT"}}]}}  # fmt: skip
    assert endpoint.error("SearchUsers", SearchCriteria=criteria)[0] == "InvalidParameterException"


def test_search_users_by_usernames(endpoint) -> None:
    # API_SearchUsers; UserSearchCriteria documents the Username field and OrConditions.
    def username_is(name: str) -> dict:
        return {
            "StringCondition": {"FieldName": "Username", "Value": name, "ComparisonType": "EXACT"}
        }

    found = endpoint.call(
        "SearchUsers", SearchCriteria={"OrConditions": [username_is(u) for u in endpoint.users]}
    )
    assert {u["Username"]: u["Id"] for u in found["Users"]} == endpoint.users


@pytest.mark.undocumented
def test_search_contacts_default_order(endpoint) -> None:
    # The reader reads "newest first" without a Sort; the default order is not stated.
    now = dt.datetime.now(dt.UTC)
    window = {
        "Type": "INITIATION_TIMESTAMP",
        "StartTime": now - dt.timedelta(days=7),
        "EndTime": now,
    }
    contacts = endpoint.call("SearchContacts", TimeRange=window, MaxResults=100)["Contacts"]
    times = [c["InitiationTimestamp"] for c in contacts if "InitiationTimestamp" in c]
    if len(times) < 2:
        pytest.skip("fewer than two contacts in the last seven days")
    order = "newest first" if times == sorted(times, reverse=True) else (
        "oldest first" if times == sorted(times) else "neither")  # fmt: skip
    choice(endpoint, "SearchContacts order without Sort", (order, 0), "newest first")


# -- what the documentation leaves open, one switch each (docs/emulator-fidelity.md) --


@pytest.mark.undocumented
def test_a_list_condition_across_two_proficiencies(endpoint) -> None:
    # behaviour list-condition: the user holds a@4 of one attribute and b@2 of
    # another; does "first attribute, value a, level EQUAL 2" find them?
    name, username, user_id = held(endpoint, 4)
    other = endpoint.new_attribute(["b"])
    endpoint.call(
        "AssociateUserProficiencies", UserId=user_id, UserProficiencies=[entry(other, "b", 2)]
    )

    def finds(level: int) -> bool:
        criteria = {"ListCondition": {"TargetListType": "PROFICIENCIES", "Conditions": [
            {"StringCondition": {"FieldName": "name", "Value": name, "ComparisonType": "EXACT"}},
            {"StringCondition": {"FieldName": "value", "Value": "a", "ComparisonType": "EXACT"}},
            {"NumberCondition": {"FieldName": "limit", "ComparisonType": "EQUAL", "MinValue": level, "MaxValue": level}},
        ]}}  # fmt: skip
        found = endpoint.call("SearchUsers", SearchCriteria=criteria)["Users"]
        return any(u["Id"] == user_id for u in found)

    assert endpoint.eventually(lambda: finds(4))
    endpoint.eventually(lambda: (other, "b") in endpoint.proficiencies(username))
    answer = "any-proficiency" if finds(2) else "one-proficiency"
    choice(endpoint, "behaviour list-condition", (answer, 0), "one-proficiency")


@pytest.mark.undocumented
def test_associate_right_after_create(endpoint) -> None:
    # eventual-consistency.html: a change may not be visible at once. Associate
    # a value of an attribute created the moment before.
    name = endpoint.new_attribute(["a"])
    _, user_id = first_user(endpoint)
    outcome = endpoint.error(
        "AssociateUserProficiencies", UserId=user_id, UserProficiencies=[entry(name, "a", 2)]
    )
    choice(
        endpoint,
        "AssociateUserProficiencies right after CreatePredefinedAttribute",
        outcome,
        "accepted",
    )


@pytest.mark.undocumented
def test_search_predefined_attributes_right_after_create(endpoint) -> None:
    # eventual-consistency.html, for SearchPredefinedAttributes.
    name = endpoint.new_attribute(["a"])
    condition = {"StringCondition": {"FieldName": "name", "Value": name, "ComparisonType": "EXACT"}}
    found = endpoint.call("SearchPredefinedAttributes", SearchCriteria=condition)[
        "PredefinedAttributes"
    ]
    choice(
        endpoint,
        "SearchPredefinedAttributes right after create",
        ("found" if found else "not yet", 0),
        "found",
    )


@pytest.mark.undocumented
def test_long_or_lists(endpoint) -> None:
    # behaviour max-or-conditions: no limit is documented; the tool sends 20.
    taken = 0
    for size in (20, 50, 100):
        alternatives = [{"StringCondition": {"FieldName": "Username", "Value": f"probe-{n}", "ComparisonType": "EXACT"}}
                        for n in range(size)]  # fmt: skip
        if endpoint.error("SearchUsers", SearchCriteria={"OrConditions": alternatives})[0]:
            break
        taken = size
    choice(
        endpoint,
        "behaviour max-or-conditions (largest of 20, 50, 100 taken)",
        (str(taken), 0),
        "100",
    )


@pytest.mark.undocumented
def test_one_character_values(endpoint) -> None:
    # behaviour short-values: UserSearchCriteria says "contains" queries need 2
    # characters; does an EXACT value of 1 character match?
    name, _, user_id = held(endpoint, 3, values=["a", "B"])
    del name
    criteria = {"ListCondition": {"TargetListType": "PROFICIENCIES", "Conditions": [
        {"StringCondition": {"FieldName": "value", "Value": "a", "ComparisonType": "EXACT"}}]}}  # fmt: skip
    code, _ = endpoint.error("SearchUsers", SearchCriteria=criteria)
    if code:
        answer = "refused"
    else:
        found = endpoint.eventually(lambda: any(
            u["Id"] == user_id for u in endpoint.call("SearchUsers", SearchCriteria=criteria)["Users"]))  # fmt: skip
        answer = "matched" if found else "unmatched"
    choice(endpoint, "behaviour short-values", (answer, 0), "matched")


@pytest.mark.undocumented
def test_an_empty_value_list(endpoint) -> None:
    # API_CreatePredefinedAttribute: Values is optional; is an empty StringList one?
    name = f"{endpoint.prefix}empty"
    outcome = endpoint.error("CreatePredefinedAttribute", Name=name, Values={"StringList": []})
    if not outcome[0]:
        endpoint.created.append(name)
    choice(endpoint, "CreatePredefinedAttribute with an empty StringList", outcome, "accepted")


@pytest.mark.undocumented
def test_custom_values_of_connect_language(endpoint) -> None:
    # predefined-attributes.html: "you can add 500 custom values to connect:Language";
    # the tool only ever adds (UpdatePredefinedAttribute with the whole list).
    language = endpoint.call("DescribePredefinedAttribute", Name="connect:Language")[
        "PredefinedAttribute"
    ]
    values = language["Values"]["StringList"]
    custom = f"{endpoint.prefix}xx"
    outcome = endpoint.error("UpdatePredefinedAttribute", Name="connect:Language",
                             Values={"StringList": [*values, custom]})  # fmt: skip
    if not outcome[0]:
        endpoint.call(
            "UpdatePredefinedAttribute", Name="connect:Language", Values={"StringList": values}
        )
    choice(
        endpoint,
        "UpdatePredefinedAttribute adding a custom value to connect:Language",
        outcome,
        "accepted",
    )


@pytest.mark.read_only
def test_doctor_probes_answer(endpoint_session) -> None:
    # What `connect-reconciler doctor` probes, with data the instance holds
    # and no write: safe against production (pytest tests/conformance --read-only).
    from reconciler.connect.doctor import FAIL, Doctor
    from reconciler.connect.pacer import QuotaPacer
    from reconciler.connect.reader import LiveStateReader

    reader = LiveStateReader(QuotaPacer(endpoint_session.client), endpoint_session.instance_id)
    checks = Doctor(reader, identity=None).checks()
    for check in checks:
        endpoint_session.observe(f"doctor {check.name}", f"{check.status}: {check.detail}")
    assert [c.name for c in checks if c.status == FAIL] == []
