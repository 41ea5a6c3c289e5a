"""The pure diff: change kinds, ordering rules, and a property test that the
plan always reaches the desired state in a safe order."""

from __future__ import annotations

import json
from dataclasses import fields

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.plan.changes import (
    AttributeChange,
    ChangeKind,
    Phase,
    ProficiencyEntry,
    UserProficiencyChange,
    change_from_data,
)
from reconciler.plan.diff import DiffPolicy, apply_changes, diff
from reconciler.state import Attribute, RoutingState, UserState


def state(attributes: dict[str, tuple[str, ...]], users: dict[str, dict]) -> RoutingState:
    return RoutingState(
        {n: Attribute(n, v) for n, v in attributes.items()},
        {u: UserState(u, dict(p), user_id=f"id-{u}") for u, p in users.items()},
    )


def test_in_sync_is_no_change() -> None:
    same = state({"Language": ("English",)}, {"jane": {("Language", "English"): 4}})
    assert diff(same, same, DiffPolicy()) == []


def test_value_order_is_not_a_change() -> None:
    live = state({"Language": ("English", "Spanish")}, {})
    desired = state({"Language": ("Spanish", "English")}, {})
    assert diff(desired, live, DiffPolicy()) == []


def test_create_and_value_changes_split_around_users() -> None:
    live = state({"Skill": ("Billing", "Collections")}, {"jane": {("Skill", "Collections"): 2}})
    desired = state(
        {"Skill": ("Billing", "Payments"), "Tier": ("Gold",)},
        {"jane": {("Skill", "Payments"): 3, ("Tier", "Gold"): 1}},
    )
    changes = diff(desired, live, DiffPolicy())
    assert [
        (c.kind, getattr(c, "name", getattr(c, "username", None)), c.phase) for c in changes
    ] == [
        ("create_attribute", "Tier", Phase.ADD),
        ("update_attribute", "Skill", Phase.ADD),
        ("user_proficiencies", "jane", 2),
        ("update_attribute", "Skill", Phase.REMOVE),
    ]
    widen, narrow = changes[1], changes[3]
    assert widen.after.values == ("Billing", "Collections", "Payments")
    assert narrow.before == widen.after and narrow.after.values == ("Billing", "Payments")


def test_user_lists_and_default_order() -> None:
    live = state({"L": ("a", "b", "c")}, {"jane": {("L", "a"): 1, ("L", "b"): 2}})
    desired = state({"L": ("a", "b", "c")}, {"jane": {("L", "b"): 5, ("L", "c"): 3}})
    (change,) = diff(desired, live, DiffPolicy())
    assert [e.value for e in change.associate] == ["c"]
    assert [(e.value, e.before, e.level) for e in change.update] == [("b", 2, 5)]
    assert [(e.value, e.level) for e in change.disassociate] == [("a", 1)]
    assert [name for name, _ in change.steps] == ["associate", "update", "disassociate"]


def test_user_at_the_cap_disassociates_first() -> None:
    values = tuple(str(i) for i in range(12))
    held = {("L", str(i)): 1 for i in range(10)}
    wanted = {("L", str(i)): 1 for i in range(2, 12)}
    live = state({"L": values}, {"jane": held})
    desired = state({"L": values}, {"jane": wanted})
    (change,) = diff(desired, live, DiffPolicy(max_proficiencies_per_user=10))
    assert change.disassociate_first
    assert [name for name, _ in change.steps] == ["disassociate", "associate"]
    (roomy,) = diff(desired, live, DiffPolicy(max_proficiencies_per_user=12))
    assert not roomy.disassociate_first


def test_prune_deletes_undeclared_but_never_reserved_or_kept() -> None:
    live = state(
        {"Language": (), "Legacy": ("x",), "connect:Subtype": ("connect:Chat",), "Ext": ()}, {}
    )
    desired = state({"Language": ()}, {})
    assert diff(desired, live, DiffPolicy()) == []
    pruned = diff(
        desired, live, DiffPolicy(prune_attributes=True, keep_attributes=frozenset({"Ext"}))
    )
    assert [(c.kind, c.name, c.phase) for c in pruned] == [
        ("delete_attribute", "Legacy", Phase.REMOVE)
    ]


def test_attribute_names_match_case_insensitively_using_the_live_spelling() -> None:
    live = state({"language": ("English",)}, {})
    desired = state({"Language": ("English", "French")}, {})
    (change,) = diff(desired, live, DiffPolicy())
    assert (change.kind, change.name) == ("update_attribute", "language")


def test_purposes_and_validation_flag_changes() -> None:
    live = RoutingState({"Region": Attribute("Region", ("EMEA",), ("routing",), False)}, {})
    desired = RoutingState({"Region": Attribute("Region", ("EMEA",), (), True)}, {})
    (change,) = diff(desired, live, DiffPolicy())
    assert change.phase == Phase.ADD and change.after == desired.attributes["Region"]


def test_every_member_of_every_change_kind_round_trips_through_json() -> None:
    tier = Attribute("Tier", ("Gold", "Silver"), ("routing",), True)
    user = UserProficiencyChange(
        "jane",
        "id-jane",
        associate=(ProficiencyEntry("Tier", "Gold", 4.0),),
        update=(ProficiencyEntry("Tier", "Silver", 3.0, before=2.0),),
        disassociate=(ProficiencyEntry("Skill", "Billing", 1.0),),
        disassociate_first=True,
        before={("Tier", "Silver"): 2.0, ("Skill", "Billing"): 1.0},
        after={("Tier", "Gold"): 4.0, ("Tier", "Silver"): 3.0},
    )
    defaults = UserProficiencyChange("", "")
    assert [
        f.name for f in fields(user) if getattr(user, f.name) == getattr(defaults, f.name)
    ] == []
    changes = [
        AttributeChange(ChangeKind.CREATE_ATTRIBUTE, "Tier", None, tier, Phase.ADD),
        AttributeChange(
            ChangeKind.UPDATE_ATTRIBUTE, "Tier", Attribute("Tier", ("Gold",)), tier, Phase.ADD
        ),
        AttributeChange(ChangeKind.DELETE_ATTRIBUTE, "Tier", tier, None, Phase.REMOVE),
        user,
    ]
    document = json.loads(json.dumps([change.data for change in changes]))
    assert [change_from_data(data) for data in document] == changes


def test_changes_round_trip_through_data() -> None:
    live = state({"L": ("a", "b")}, {"jane": {("L", "a"): 1}})
    desired = state({"L": ("b", "c")}, {"jane": {("L", "b"): 2}})
    changes = diff(desired, live, DiffPolicy())
    assert [change_from_data(c.data) for c in changes] == changes


# -- property: plans reach the desired state, in a safe order ------------------

VALUES = ["v0", "v1", "v2", "v3"]
ATTRIBUTES = ["A", "B", "C"]
USERS = ["u0", "u1", "u2"]
CAP = 4


@st.composite
def states(draw) -> RoutingState:
    attributes = {
        name: Attribute(name, tuple(draw(st.lists(st.sampled_from(VALUES), unique=True))))
        for name in draw(st.lists(st.sampled_from(ATTRIBUTES), unique=True))
    }
    keys = [(a.name, v) for a in attributes.values() for v in a.values]
    users = {}
    for username in USERS:
        held = draw(st.lists(st.sampled_from(keys), unique=True, max_size=CAP)) if keys else []
        users[username] = UserState(
            username, {k: float(draw(st.integers(1, 5))) for k in held}, user_id=username
        )
    return RoutingState(attributes, users)


@settings(max_examples=300, deadline=None)
@given(states(), states(), st.booleans())
def test_plan_reaches_desired_state_safely(
    desired: RoutingState, live: RoutingState, prune: bool
) -> None:
    policy = DiffPolicy(prune_attributes=prune, max_proficiencies_per_user=CAP)
    changes = diff(desired, live, policy)
    result = apply_changes(live, changes)

    # users end exactly as desired; declared attributes have exactly the desired values
    assert {u: s.proficiencies for u, s in result.users.items()} == {
        u: s.proficiencies for u, s in desired.users.items()
    }
    by_folded = {n.casefold(): a for n, a in result.attributes.items()}
    for name, attribute in desired.attributes.items():
        assert set(by_folded[name.casefold()].values) == set(attribute.values)
    if prune:
        assert {n.casefold() for n in result.attributes} == {
            n.casefold() for n in desired.attributes
        }
    else:
        assert {n.casefold() for n in live.attributes} <= {n.casefold() for n in result.attributes}
    assert diff(desired, result, policy) == []

    # ordering: nothing references a value before it exists or after it is gone
    assert [c.phase for c in changes] == sorted(c.phase for c in changes)
    after_adds = apply_changes(live, [c for c in changes if c.phase == Phase.ADD])
    available = {(n, v) for n, a in after_adds.attributes.items() for v in a.values}
    for change in changes:
        if isinstance(change, UserProficiencyChange):
            for entry in (*change.associate, *change.update):
                assert (entry.attribute, entry.value) in available
            # calls in their order never pass the cap when there is a way not to
            held = len(change.before)
            for name, entries in change.steps:
                held += (
                    len(entries)
                    if name == "associate"
                    else -len(entries)
                    if name == "disassociate"
                    else 0
                )
                assert held <= max(CAP, len(change.before), len(change.after))
    after_users = apply_changes(live, [c for c in changes if c.phase <= 2])
    for change in changes:
        if isinstance(change, AttributeChange) and change.phase == Phase.REMOVE:
            gone = set(change.removed_values) if change.after else None
            for user in after_users.users.values():
                for attribute, value in user.proficiencies:
                    if attribute.casefold() == change.name.casefold():
                        assert gone is not None and value not in gone


def test_connect_language_only_gains_declared_custom_values() -> None:
    # predefined-attributes.html, System predefined attributes: custom values
    # of connect:Language are the only connect: change; nothing is removed.
    system = Attribute("connect:Language", ("en-US", "fr-CA"), (), False)
    live = RoutingState({"connect:Language": system}, {})
    desired = state({"connect:Language": ("nl-NL", "en-US")}, {})
    (change,) = diff(desired, live, DiffPolicy(prune_attributes=True))
    assert (change.kind, change.phase) == ("update_attribute", Phase.ADD)
    assert change.after == Attribute("connect:Language", ("en-US", "fr-CA", "nl-NL"), (), False)
    assert diff(state({"connect:Language": ("en-US",)}, {}), live, DiffPolicy()) == []


def test_system_attributes_are_never_created() -> None:
    desired = state({"connect:Language": ("nl-NL",)}, {})
    assert diff(desired, state({}, {}), DiffPolicy()) == []
