"""Parity of two live states, by name: every kind of difference, and none."""

from __future__ import annotations

import json

from reconciler.plan.parity import parity, parity_json, parity_text
from reconciler.state import Attribute, RoutingState, UserState


def state(attributes: list[Attribute], users: dict[str, dict[tuple[str, str], float]]):
    return RoutingState(
        {a.name: a for a in attributes},
        {name: UserState(name, held, user_id=f"id-{name}") for name, held in users.items()},
    )


LANGUAGE = Attribute("Language", ("English", "Spanish"))


def test_the_same_state_under_other_user_ids_has_no_difference() -> None:
    a = state([LANGUAGE], {"jane": {("Language", "Spanish"): 4}})
    b = state([LANGUAGE], {"jane": {("Language", "Spanish"): 4}})
    b.users["jane"].user_id = "another-id"
    assert parity("prod", a, "dr", b) == []
    assert parity_text("prod", "dr", []).startswith("prod and dr are the same")
    assert json.loads(parity_json({}, []))["same"] is True


def test_every_kind_of_difference_is_found_and_named() -> None:
    a = state(
        [LANGUAGE, Attribute("Skill", ("Billing",)), Attribute("Tier", ("1",), ("routing",))],
        {"jane": {("Language", "Spanish"): 4, ("Skill", "Billing"): 3}, "joe": {}},
    )
    b = state(
        [Attribute("Language", ("English", "French")), Attribute("Tier", ("1",)),
         Attribute("Region", ("EMEA",))],
        {"jane": {("Language", "Spanish"): 5, ("Language", "English"): 2}, "ann": {}},
    )  # fmt: skip
    found = [d.data for d in parity("prod", a, "dr", b)]
    assert found == [
        {"kind": "attribute_values", "attribute": "Language",
         "only_in": {"prod": ["Spanish"], "dr": ["French"]}},
        {"kind": "attribute", "attribute": "Region", "only_in": "dr"},
        {"kind": "attribute", "attribute": "Skill", "only_in": "prod"},
        {"kind": "attribute_settings", "attribute": "Tier",
         "purposes": {"prod": ["routing"], "dr": []},
         "enable_value_validation_on_association": {"prod": False, "dr": False}},
        {"kind": "user", "username": "ann", "only_in": "dr"},
        {"kind": "proficiency", "username": "jane", "attribute": "Language", "value": "English",
         "levels": {"prod": None, "dr": 2}},
        {"kind": "proficiency", "username": "jane", "attribute": "Language", "value": "Spanish",
         "levels": {"prod": 4, "dr": 5}},
        {"kind": "proficiency", "username": "jane", "attribute": "Skill", "value": "Billing",
         "levels": {"prod": 3, "dr": None}},
        {"kind": "user", "username": "joe", "only_in": "prod"},
    ]  # fmt: skip
    text = parity_text("prod", "dr", parity("prod", a, "dr", b))
    assert "differ in 9 place(s)" in text
    assert "user jane Language/English: prod -, dr 2" in text


def test_purposes_in_another_order_are_the_same() -> None:
    a = state([Attribute("Tier", ("1",), ("routing", "reporting"))], {})
    b = state([Attribute("Tier", ("1",), ("reporting", "routing"))], {})
    assert parity("prod", a, "dr", b) == []
