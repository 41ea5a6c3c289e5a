"""Planning scenarios against the emulator (small snapshot in tests/conftest.py:
jane on Spanish Support in Dublin holds Language/Spanish 4 and Skill/Billing 3;
joe in EMEA holds Language/English 5; ann in Dublin holds nothing; Dublin is
a child of EMEA)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from reconciler.connect.pacer import QuotaPacer
from reconciler.connect.reader import LiveStateReader
from reconciler.manifest import load_manifest
from reconciler.plan.narrowing import Narrowing
from reconciler.plan.planner import make_plan, unknown_name_errors
from reconciler.plan.render import TextRenderer
from tests.conftest import INSTANCE_ID, write_config

INSTANCE = f"instance:\n  id: {INSTANCE_ID}\n  region: us-east-1\n"
ATTRIBUTES = (
    "predefined_attributes:\n"
    "  Language: {values: [English, Spanish, French]}\n"
    "  Skill: {values: [Billing, Payments]}\n"
)
IN_SYNC_USERS = (
    "users:\n"
    "  jane: {proficiencies: {Language: {Spanish: 4}, Skill: {Billing: 3}}}\n"
    "  joe: {proficiencies: {Language: {English: 5}}}\n"
    "  ann:\n"
)


@pytest.fixture
def planner(connect, tmp_path: Path):
    emulator, client = connect
    pacer = QuotaPacer(client, time_scale=1000)

    def plan(files: dict[str, str], narrowing: Narrowing | None = None):
        config = write_config(tmp_path / "config", {"instance.yaml": INSTANCE, **files}, base=False)
        return make_plan(load_manifest(config), LiveStateReader(pacer, INSTANCE_ID), narrowing)

    plan.emulator = emulator
    return plan


def summary(plan) -> list[tuple]:
    return [
        (c.kind, c.name, c.phase) if c.kind != "user_proficiencies"
        else (c.username, [e.value for e in c.associate], [e.value for e in c.update], [e.value for e in c.disassociate])
        for c in plan.changes
    ]  # fmt: skip


def test_in_sync_is_empty_with_minimal_calls(planner) -> None:
    plan = planner({"attributes.yaml": ATTRIBUTES, "users.yaml": IN_SYNC_USERS})
    assert plan.changes == [] and plan.errors == [] and plan.guards == []
    assert plan.unchanged_users == 3
    stats = planner.emulator.stats.snapshot()
    assert {op: s["calls"] for op, s in stats.items()} == {
        "SearchPredefinedAttributes": 1,
        "ListUsers": 1,
        "ListUserProficiencies": 3,
    }


def test_every_change_kind(planner) -> None:
    plan = planner({
        "attributes.yaml": "predefined_attributes:\n  Language: {values: [English, Spanish, German]}\n"
                           "  Skill: {values: [Billing, Payments]}\n  Tier: {values: [Gold]}\n",
        "users.yaml": "users:\n  jane: {proficiencies: {Language: {Spanish: 5, German: 2}, Tier: {Gold: 1}}}\n"
                      "  joe: {proficiencies: {Language: {English: 5}}}\n",
    })  # fmt: skip
    assert summary(plan) == [
        ("create_attribute", "Tier", 1),
        ("update_attribute", "Language", 1),
        ("jane", ["German", "Gold"], ["Spanish"], ["Billing"]),
        ("update_attribute", "Language", 3),
    ]
    assert plan.unmanaged_attributes == []
    assert plan.changes[1].added_values == ["German"] and plan.changes[3].removed_values == [
        "French"
    ]


def test_prune_on_and_off(planner) -> None:
    files = {"attributes.yaml": "predefined_attributes:\n  Language: {values: [English, Spanish, French]}\n",
             "users.yaml": "users:\n  joe: {proficiencies: {Language: {English: 5}}}\n"}  # fmt: skip
    kept = planner(files)
    assert kept.changes == [] and kept.unmanaged_attributes == ["Skill"]
    pruned = planner({**files, "settings.yaml": "settings:\n  prune_attributes: true\n"})
    # jane (unmanaged) holds Skill/Billing: deleting Skill is refused, naming her
    assert summary(pruned) == [("delete_attribute", "Skill", 3)]
    assert pruned.errors == [
        "cannot remove Skill: still held by users these manifests do not manage: jane"
    ]


def test_removing_a_value_an_unmanaged_user_holds_is_an_error(planner) -> None:
    plan = planner({
        "attributes.yaml": "predefined_attributes:\n  Language: {values: [English, French]}\n  Skill: {values: [Billing, Payments]}\n",
        "users.yaml": "users:\n  joe: {proficiencies: {Language: {English: 5}}}\n",
    })  # fmt: skip
    assert plan.errors == [
        "cannot remove Language/Spanish: still held by users these manifests do not manage: jane"
    ]
    assert planner.emulator.stats.calls("SearchUsers") == 1


def test_removing_a_value_only_managed_users_hold_is_fine(planner) -> None:
    plan = planner({
        "attributes.yaml": "predefined_attributes:\n  Language: {values: [English, French]}\n  Skill: {values: [Billing, Payments]}\n",
        "users.yaml": "users:\n  jane: {proficiencies: {Skill: {Billing: 3}}}\n",
    })  # fmt: skip
    assert plan.errors == []
    assert summary(plan) == [("jane", [], [], ["Spanish"]), ("update_attribute", "Language", 3)]


@pytest.mark.parametrize("users", ["declared", "all"])
def test_a_declared_user_connect_lacks_is_an_error_with_the_closest_names(
    planner, users: str
) -> None:
    plan = planner({
        "attributes.yaml": ATTRIBUTES,
        "settings.yaml": f"settings:\n  users: {users}\n  max_change_percent: 100\n",
        "users.yaml": IN_SYNC_USERS + "  jame: {}\n  JOE: {}\n",
    })  # fmt: skip
    assert plan.errors == [
        "user 'JOE' does not exist in Connect, which has 'joe': usernames differ only in case; "
        "write the name as Connect has it",
        "user 'jame' declared in the manifests does not exist in Connect (this tool does not "
        "create users); closest: jane",
    ]
    assert planner.emulator.stats.calls("AssociateUserProficiencies") == 0


def test_a_group_that_matches_nobody_is_an_error(planner) -> None:
    plan = planner({
        "attributes.yaml": ATTRIBUTES,
        "settings.yaml": "settings:\n  users: all\n  max_change_percent: 100\n",
        "sets.yaml": "proficiency_sets:\n  s: {Language: {French: 2}}\n",
        "groups.yaml": "groups:\n  - match: {username: '*@emea.example.com'}\n    sets: [s]\n",
    })  # fmt: skip
    assert plan.errors == [
        "group (username=*@emea.example.com) matches no user in Connect: fix the selector, or "
        "remove the group (its agents would lose what only it gives)"
    ]


@pytest.mark.parametrize(
    ("match", "members"),
    [
        ("{routing_profile: Spanish Support}", ["jane"]),
        ("{hierarchy_group: EMEA}", ["ann", "jane", "joe"]),  # Dublin is under EMEA
        ("{hierarchy_group: Dublin}", ["ann", "jane"]),
        ("{username: 'j*'}", ["jane", "joe"]),
        ("{routing_profile: Basic Routing Profile, username: 'a*'}", ["ann"]),
    ],
)
def test_groups_select_live_users(planner, match, members) -> None:
    plan = planner({
        "attributes.yaml": ATTRIBUTES,
        "sets.yaml": "proficiency_sets:\n  french: {Language: {French: 2}}\n",
        "groups.yaml": f"groups:\n  - match: {match}\n    sets: [french]\n",
    })  # fmt: skip
    given_french = sorted(
        c.username for c in plan.user_changes if any(e.value == "French" for e in c.associate)
    )
    assert given_french == members
    assert plan.errors == []


def test_group_then_explicit_entries_win(planner) -> None:
    plan = planner({
        "attributes.yaml": ATTRIBUTES,
        "sets.yaml": "proficiency_sets:\n  spanish: {Language: {Spanish: 2}, Skill: {Billing: 3}}\n",
        "groups.yaml": "groups:\n  - match: {routing_profile: Spanish Support}\n    sets: [spanish]\n",
        "users.yaml": "users:\n  jane: {proficiencies: {Language: {Spanish: 4}}}\n",
    })  # fmt: skip
    assert plan.changes == []


def test_unknown_routing_profile_is_an_error(planner) -> None:
    plan = planner({
        "attributes.yaml": ATTRIBUTES,
        "sets.yaml": "proficiency_sets:\n  s: {Language: {French: 2}}\n",
        "groups.yaml": "groups:\n  - match: {routing_profile: Nope}\n    sets: [s]\n",
    })  # fmt: skip
    assert plan.errors == ["group selector: routing profile 'Nope' does not exist"]


def test_users_all_manages_every_live_user(planner) -> None:
    plan = planner({
        "attributes.yaml": ATTRIBUTES,
        "settings.yaml": "settings:\n  users: all\n  max_change_percent: 100\n",
        "users.yaml": "users:\n  joe: {proficiencies: {Language: {English: 5}}}\n",
    })  # fmt: skip
    assert summary(plan) == [("jane", [], [], ["Spanish", "Billing"])]
    assert plan.unchanged_users == 2


def test_change_share_guard(planner) -> None:
    users = "users:\n  jane: {}\n  joe: {}\n  ann: {}\n"
    settings = "settings:\n  max_change_percent: 30\n  min_existing_objects: 2\n"
    plan = planner({"attributes.yaml": ATTRIBUTES, "users.yaml": users, "settings.yaml": settings})
    (guard,) = plan.guards
    assert guard.guard == "max_change_percent"
    assert "2 of 5 managed objects (40%)" in guard.message
    quiet = planner(
        {
            "attributes.yaml": ATTRIBUTES,
            "users.yaml": users,
            "settings.yaml": "settings:\n  min_existing_objects: 6\n",
        }
    )
    assert quiet.guards == []


def test_narrowing_to_users_reads_only_them(planner) -> None:
    files = {
        "attributes.yaml": ATTRIBUTES,
        "users.yaml": "users:\n  jane: {}\n  joe: {}\n  ann: {}\n",
    }
    plan = planner(files, Narrowing(users=frozenset({"jane"})))
    assert summary(plan) == [("jane", [], [], ["Spanish", "Billing"])]
    calls = {op: s["calls"] for op, s in planner.emulator.stats.snapshot().items()}
    assert calls == {"SearchPredefinedAttributes": 1, "SearchUsers": 1, "ListUserProficiencies": 1}


def test_unknown_narrowing_names_are_errors_before_any_user_state_is_read(
    connect, tmp_path: Path
) -> None:
    emulator, client = connect
    files = {
        "instance.yaml": INSTANCE,
        "attributes.yaml": ATTRIBUTES,
        "users.yaml": "users:\n  joe: {}\n",
        "groups.yaml": "groups:\n  - match: {hierarchy_group: Dublin}\n    sets: [french]\n",
        "sets.yaml": "proficiency_sets:\n  french: {Language: {French: 2}}\n",
    }
    manifest = load_manifest(write_config(tmp_path / "config", files, base=False))
    reader = LiveStateReader(QuotaPacer(client, time_scale=1000), INSTANCE_ID)
    narrowing = Narrowing(users=frozenset({"jane", "joe", "jon"}), attributes=frozenset({"Skil"}))
    errors = unknown_name_errors(manifest, reader, narrowing)
    assert (
        errors[0]
        == "--attribute 'Skil': no such attribute; closest: Skill, Language, connect:Subtype"
    )
    assert errors[1].startswith("--user 'jon': these manifests manage no such user; closest: joe")
    assert len(errors) == 2  # jane is in the Dublin group, joe is declared
    assert emulator.stats.calls("ListUserProficiencies") == 0
    assert emulator.stats.calls("SearchUsers") + emulator.stats.calls("ListUsers") > 0


def test_narrowing_to_attributes(planner) -> None:
    plan = planner(
        {
            "attributes.yaml": ATTRIBUTES.replace("Payments", "Payments, Retention"),
            "users.yaml": "users:\n  jane: {}\n",
        },
        Narrowing(attributes=frozenset({"Skill"})),
    )
    assert summary(plan) == [("update_attribute", "Skill", 1), ("jane", [], [], ["Billing"])]


def test_cap_with_groups_is_an_error(planner) -> None:
    plan = planner({
        "attributes.yaml": ATTRIBUTES,
        "settings.yaml": "settings:\n  max_proficiencies_per_user: 3\n",
        "sets.yaml": "proficiency_sets:\n  two: {Language: {French: 2, English: 2}}\n",
        "groups.yaml": "groups:\n  - match: {username: jane}\n    sets: [two]\n",
        "users.yaml": "users:\n  jane: {proficiencies: {Language: {Spanish: 4}, Skill: {Billing: 3}}}\n",
    })  # fmt: skip
    assert plan.errors == [
        "user jane would hold 4 proficiencies with groups applied; the limit is 3"
    ]


def test_declared_spelling_must_match_live(planner) -> None:
    plan = planner(
        {
            "attributes.yaml": ATTRIBUTES.replace("Language", "language"),
            "users.yaml": "users:\n  joe: {proficiencies: {language: {English: 5}}}\n",
        }
    )
    assert any("exists in Connect as 'Language'" in e for e in plan.errors)


def test_external_attributes_must_exist_live(planner) -> None:
    files = {
        "attributes.yaml": "predefined_attributes:\n  Skill: {values: [Billing, Payments]}\n",
        "settings.yaml": "settings:\n  external_attributes: [Language, Certification]\n",
        "users.yaml": "users:\n  joe: {proficiencies: {Language: {English: 5, Dutch: 1}, Certification: {PCI: 2}}}\n",
    }
    plan = planner(files)
    assert plan.errors == [
        "Certification/PCI does not exist in Connect but is given to: joe",
        "Language/Dutch does not exist in Connect but is given to: joe",
    ]
    assert plan.unmanaged_attributes == []


def test_fingerprints_cover_touched_objects_only(planner) -> None:
    plan = planner(
        {
            "attributes.yaml": ATTRIBUTES.replace("Payments", "Payments, Retention"),
            "users.yaml": IN_SYNC_USERS.replace("Spanish: 4", "Spanish: 5"),
        }
    )
    assert set(plan.fingerprints["attributes"]) == {"Skill", "Language"}
    assert set(plan.fingerprints["users"]) == {"jane"}


# -- narrowing keeps every guard (docs/design.md §3, "Narrowing") -------------------------------

NO_SPANISH = "predefined_attributes:\n  Language: {values: [English, French]}\n  Skill: {values: [Billing, Payments]}\n"  # fmt: skip
FRENCH_JANE = (
    "users:\n"
    "  jane: {proficiencies: {Language: {French: 2}, Skill: {Billing: 3}}}\n"
    "  joe: {proficiencies: {Language: {English: 5}}}\n"
)


def test_user_narrowing_defers_a_removal_another_managed_user_needs(planner) -> None:
    files = {"attributes.yaml": NO_SPANISH, "users.yaml": FRENCH_JANE + "  ann:\n"}
    plan = planner(files, Narrowing(users=frozenset({"joe"})))
    assert plan.errors == [] and plan.changes == []
    assert plan.deferred == ["remove value(s) Spanish from Language"]
    in_scope = planner(files, Narrowing(users=frozenset({"joe"}), declarations=frozenset({"Language"})))  # fmt: skip
    assert in_scope.changes == [] and in_scope.deferred == [
        "remove value(s) Spanish from Language (still held by managed users outside the "
        "narrowing: jane)"
    ]


def test_removal_is_kept_when_every_holder_is_narrowed(planner) -> None:
    files = {"attributes.yaml": NO_SPANISH, "users.yaml": FRENCH_JANE}
    for narrowing in (
        Narrowing(users=frozenset({"jane"}), declarations=frozenset({"Language"})),
        Narrowing(attributes=frozenset({"Language"})),
    ):
        plan = planner(files, narrowing)
        assert summary(plan) == [
            ("jane", ["French"], [], ["Spanish"]),
            ("update_attribute", "Language", 3),
        ], narrowing
        assert plan.deferred == []


def test_narrowed_removal_held_by_an_unmanaged_user_is_an_error(planner) -> None:
    files = {"attributes.yaml": NO_SPANISH, "users.yaml": "users:\n  joe: {}\n"}
    plan = planner(files, Narrowing(users=frozenset({"joe"}), declarations=frozenset({"Language"})))
    assert plan.errors == [
        "cannot remove Language/Spanish: still held by users these manifests do not manage: jane"
    ]


def test_change_share_counts_the_whole_instance(planner) -> None:
    settings = "settings:\n  max_change_percent: 30\n  min_existing_objects: 2\n"
    users = IN_SYNC_USERS.replace("Spanish: 4", "Spanish: 5").replace("English: 5", "English: 4")
    files = {"attributes.yaml": ATTRIBUTES, "users.yaml": users, "settings.yaml": settings}
    full = planner(files)
    narrowed = planner(files, Narrowing(users=frozenset({"jane", "joe"})))
    assert [g.message for g in narrowed.guards] == [g.message for g in full.guards]
    assert "2 of 5 managed objects (40%)" in narrowed.guards[0].message
    assert planner(files, Narrowing(users=frozenset({"jane"}))).guards == []  # 1 of 5


def test_not_and_agent_lists_are_counted_for_the_whole_instance_when_narrowed(planner) -> None:
    routing = (
        "routing_requirements:\n"
        "  - {name: spanish-not-payments, expression: 'Language = Spanish AND NOT Skill = Payments', min_agents: 1}\n"
        "  - {name: not-spanish, expression: 'NOT Language = Spanish', min_agents: 1}\n"
        "  - name: preferred\n"
        "    expression: {AttributeCondition: {MatchCriteria: {AgentsCriteria: {AgentIds: [id-jane, id-ann]}}}}\n"
        "    min_agents: 1\n"
    )  # fmt: skip
    users = "users:\n  jane: {proficiencies: {Language: {Spanish: 4}, Skill: {Billing: 3, Payments: 2}}}\n  joe: {}\n"  # fmt: skip
    files = {"attributes.yaml": ATTRIBUTES, "users.yaml": users, "routing.yaml": routing}
    full = planner(files)
    narrowed = planner(files, Narrowing(users=frozenset({"jane"})))
    rows = [(r.name, r.now, r.after, r.counted) for r in narrowed.coverage]
    assert rows == [(r.name, r.now, r.after, r.counted) for r in full.coverage]
    assert rows[:2] == [
        ("spanish-not-payments", 1, 0, "all users"),
        ("not-spanish", 2, 2, "all users"),  # joe loses English but never held Spanish
    ]
    assert [g.guard for g in narrowed.guards] == ["routing_requirement"]


def test_full_plan_reads_proficiencies_from_the_first_page_of_users(connect, tmp_path) -> None:
    from bench.synthetic import Shape, snapshot_of_state, synthetic_state, write_manifests
    from reconciler.connect.client import connect_client
    from reconciler.emulator import backend_from_snapshot

    emulator, _ = connect
    state = synthetic_state(Shape(users=1_100, attributes=2, values=3, proficiencies=2))
    emulator.reset(backend_from_snapshot(snapshot_of_state(state, INSTANCE_ID)))
    write_manifests(state, tmp_path / "config", INSTANCE_ID)
    client = connect_client(endpoint_url=emulator.url, emulator=True)
    seen_before_second_page: list[int] = []

    def second_page_waits_for_a_proficiency_read(params, **kwargs) -> None:
        if "NextToken" not in params:
            return
        # A serial reader reads no proficiencies until this page returns:
        # wait (bounded) for one to arrive while this page is held back.
        deadline = time.monotonic() + 5
        while emulator.stats.calls("ListUserProficiencies") == 0 and time.monotonic() < deadline:
            threading.Event().wait(0.01)
        seen_before_second_page.append(emulator.stats.calls("ListUserProficiencies"))

    client.meta.events.register(
        "provide-client-params.connect.ListUsers", second_page_waits_for_a_proficiency_read
    )
    plan = make_plan(
        load_manifest(tmp_path / "config"),
        LiveStateReader(QuotaPacer(client, time_scale=1000), INSTANCE_ID, strategy="list"),
    )
    assert plan.errors == [] and plan.changes == [] and plan.unchanged_users == 1_100
    assert len(seen_before_second_page) == 1 and seen_before_second_page[0] > 0


def test_username_chunks_are_searched_concurrently(connect, tmp_path) -> None:
    from reconciler.connect.client import connect_client

    emulator, _ = connect
    client = connect_client(endpoint_url=emulator.url, emulator=True)
    # Three chunks of usernames: each search waits until all three are in
    # flight, which only happens when they are sent concurrently.
    in_flight = threading.Barrier(3, timeout=5)

    def wait_for_the_others(params, **kwargs) -> None:
        in_flight.wait()

    client.meta.events.register("provide-client-params.connect.SearchUsers", wait_for_the_others)
    names = ["jane", "joe", "ann", *(f"nobody{i:02d}" for i in range(57))]
    files = {"attributes.yaml": ATTRIBUTES, "users.yaml": IN_SYNC_USERS}
    config = write_config(tmp_path / "config", {"instance.yaml": INSTANCE, **files}, base=False)
    plan = make_plan(
        load_manifest(config),
        LiveStateReader(QuotaPacer(client, time_scale=1000), INSTANCE_ID),
        Narrowing(users=frozenset(names)),
    )
    assert plan.unchanged_users == 3
    assert emulator.stats.calls("SearchUsers") == 3


def test_saved_narrowing_round_trips() -> None:
    narrowing = Narrowing(
        users=frozenset({"jane"}),
        declarations=frozenset({"Skill"}),
        changed_since="main",
        reasons=("declared users whose own entries or sets changed: jane",),
    )
    assert Narrowing.from_data(narrowing.data(["delete attribute Legacy"])) == narrowing
    attributes = Narrowing(attributes=frozenset({"Language"}))
    assert Narrowing.from_data(attributes.data([])) == attributes


def test_the_instances_users_are_listed_once_however_many_ask(connect) -> None:
    from reconciler.connect.eligibility import InstanceEligibility
    from reconciler.routing.expression import parse_text

    emulator, client = connect
    reader = LiveStateReader(QuotaPacer(client, time_scale=1000), INSTANCE_ID)
    eligibility = InstanceEligibility(reader)
    assert eligibility.eligible(parse_text("NOT Language = Spanish")) == {"joe", "ann"}
    assert eligibility.eligible(parse_text("NOT Skill = Billing")) == {"joe", "ann"}
    assert set(reader.usernames_by_id().values()) == {"jane", "joe", "ann"}
    assert emulator.stats.calls("ListUsers") == 1


def test_counts_the_service_gives_otherwise_than_known_users_are_not_trusted(planner) -> None:
    # Every user holds Tier/Gold and Skill/Billing at levels that differ; a
    # service meeting a ListCondition across the list counts some of them
    # for "Tier = Gold >= 4" by their Skill level.
    from reconciler.emulator import backend_from_snapshot
    from tests.connect.test_reader import two_proficiency_snapshot

    files = {
        "attributes.yaml": "predefined_attributes:\n  Tier: {values: [Gold, Silver]}\n  Skill: {values: [Billing]}\n",
        "users.yaml": "users:\n"
        + "".join(
            f"  agent{n}: {{proficiencies: {{Tier: {{Gold: {n % 5 + 1}}}, Skill: {{Billing: {(n + 2) % 5 + 1}}}}}}}\n"
            for n in range(30)
        ),
        "requirements.yaml": "routing_requirements:\n  - {name: gold, expression: 'Tier = Gold >= 4', min_agents: 1}\n",
    }
    for answer, trusted in (("one-proficiency", True), ("any-proficiency", False)):
        planner.emulator.reset(
            backend_from_snapshot(
                two_proficiency_snapshot(40), behaviour=(f"list-condition={answer}",)
            )
        )
        plan = planner(files)
        assert plan.errors == [] and plan.changes == []
        assert plan.read.verification is not None and plan.read.verification.counts_checked == 1
        guards = [g for g in plan.guards if g.guard == "coverage_not_checked"]
        assert (guards == []) == trusted, plan.guards
        assert (plan.coverage[0].counted == "all users") == trusted
        if not trusted:
            assert "connect-reconciler doctor" in guards[0].message


def test_under_users_all_an_agent_left_with_nothing_trips_the_guard_and_is_listed(
    planner,
) -> None:
    plan = planner({
        "attributes.yaml": ATTRIBUTES,
        "settings.yaml": "settings:\n  users: all\n  max_change_percent: 100\n",
        "users.yaml": "users:\n  jane: {proficiencies: {Language: {Spanish: 4}, Skill: {Billing: 3}}}\n",
    })  # fmt: skip
    assert plan.errors == []
    (guard,) = plan.guards
    assert guard.guard == "max_change_percent"
    assert guard.message.startswith("1 agent would lose every proficiency: joe")
    assert "Users losing every proficiency: joe" in TextRenderer().render(plan)
