"""--changed-since narrowing: what differs between two compilations of the
manifests, with group members resolved on the emulator (small snapshot:
jane is on "Spanish Support" in Dublin, joe in EMEA, ann in Dublin; Dublin is
a child of EMEA)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.synthetic import snapshot_of_state
from reconciler.connect.pacer import QuotaPacer
from reconciler.connect.reader import LiveStateReader
from reconciler.emulator import backend_from_snapshot
from reconciler.manifest import load_manifest
from reconciler.plan.narrowing import NotNarrowable, changed_narrowing
from reconciler.plan.planner import make_plan
from reconciler.state import Attribute, RoutingState, UserState
from tests.conftest import INSTANCE_ID, write_config

BASE = {
    "instance.yaml": f"instance:\n  id: {INSTANCE_ID}\n  region: us-east-1\n",
    "attributes.yaml": (
        "predefined_attributes:\n"
        "  Language: {values: [English, Spanish, French]}\n"
        "  Skill: {values: [Billing, Payments]}\n"
        "proficiency_sets:\n"
        "  bilingual: {Language: {English: 4, Spanish: 4}}\n"
        "  billing: {Skill: {Billing: 3}}\n"
    ),
    "users.yaml": (
        "users:\n"
        "  jane: {sets: [bilingual]}\n"
        "  joe: {sets: [bilingual, billing]}\n"
        "  ann: {sets: [billing], proficiencies: {Language: {French: 2}}}\n"
    ),
    "groups.yaml": "groups:\n  - match: {routing_profile: Spanish Support}\n    sets: [billing]\n",
}


@pytest.fixture
def narrow(connect, tmp_path: Path):
    emulator, client = connect
    reader = LiveStateReader(QuotaPacer(client, time_scale=1000), INSTANCE_ID)

    def narrowing(edits: dict[str, str]):
        before = load_manifest(write_config(tmp_path / "before", BASE, base=False))
        now = load_manifest(write_config(tmp_path / "now", {**BASE, **edits}, base=False))
        return changed_narrowing(before, now, "base", reader)

    narrowing.emulator = emulator
    return narrowing


def test_nothing_changed(narrow) -> None:
    narrowing = narrow({})
    assert narrowing.users == frozenset() and narrowing.declarations == frozenset()
    assert narrowing.reasons == ("nothing in the manifests changed since base",)
    assert narrow.emulator.stats.snapshot() == {}  # no group changed: nothing resolved


def test_an_edited_set_narrows_to_exactly_its_holders(narrow) -> None:
    narrowing = narrow(
        {"attributes.yaml": BASE["attributes.yaml"].replace("Billing: 3", "Billing: 4")}
    )
    # joe and ann use it themselves; jane through the Spanish Support group
    assert narrowing.users == {"jane", "joe", "ann"}
    assert narrowing.reasons == (
        "groups changed: 1 live member(s) resolved and compared, 1 changed",
        "declared users whose own entries or sets changed: ann, joe",
    )


def test_own_entries_and_declarations(narrow) -> None:
    narrowing = narrow({
        "attributes.yaml": BASE["attributes.yaml"].replace("Payments]", "Payments, Retention]"),
        "users.yaml": BASE["users.yaml"].replace("French: 2", "French: 3"),
    })  # fmt: skip
    assert narrowing.users == {"ann"} and narrowing.declarations == {"Skill"}
    assert narrowing.reasons[0] == "attribute declarations changed: Skill"


def test_an_edited_group_narrows_to_its_live_members(narrow) -> None:
    # jane (Spanish Support) is the group's only member; the others are untouched
    narrowing = narrow({"groups.yaml": BASE["groups.yaml"].replace("[billing]", "[bilingual]")})
    assert narrowing.users == {"jane"}
    assert narrowing.reasons == (
        "groups changed: 1 live member(s) resolved and compared, 1 changed",
    )
    assert narrow.emulator.stats.snapshot()["SearchUsers"]["calls"] == 2  # old and new selector


def test_a_changed_selector_compares_members_under_both(narrow) -> None:
    # EMEA (with Dublin below it) holds everyone; joe and ann already hold billing
    narrowing = narrow({"groups.yaml": BASE["groups.yaml"].replace("routing_profile: Spanish Support", "hierarchy_group: EMEA")})  # fmt: skip
    assert narrowing.users == frozenset()
    assert (
        narrowing.reasons[0] == "groups changed: 3 live member(s) resolved and compared, 0 changed"
    )


@pytest.mark.parametrize(
    ("file", "text", "reason"),
    [
        ("settings.yaml", "settings:\n  prune_attributes: true\n", "settings changed since base"),
        ("instance.yaml", f"instance:\n  id: {INSTANCE_ID}\n  region: eu-west-1\n", "the instance block changed since base"),
    ],
)  # fmt: skip
def test_changes_that_reach_everyone_are_not_narrowed(narrow, file, text, reason) -> None:
    with pytest.raises(NotNarrowable, match=reason):
        narrow({file: text})


def test_requirements_that_changed_are_named(narrow) -> None:
    routing = "routing_requirements:\n  - {name: es, expression: 'Language = Spanish >= 4', min_agents: 1}\n"
    narrowing = narrow({"routing.yaml": routing})
    assert narrowing.reasons == ("routing requirements changed: es (all are evaluated)",)


# -- property: a narrowed plan reports what the full plan reports -------------------------

KEYS = [("Language", "English"), ("Language", "Spanish"), ("Language", "French"),
        ("Skill", "Billing"), ("Skill", "Payments")]  # fmt: skip
MANAGED = [f"u{i}" for i in range(5)]
UNMANAGED = ["x0", "x1"]
ROUTING = (
    "routing_requirements:\n"
    "  - {{name: spanish, expression: 'Language = Spanish >= 3', min_agents: {0}}}\n"
    "  - {{name: not-billing, expression: 'NOT Skill = Billing', min_agents: {1}}}\n"
    "  - {{name: english-no-payments, expression: 'Language = English >= 4 AND NOT Skill = Payments', min_agents: {2}}}\n"
)  # fmt: skip

proficiency_maps = st.dictionaries(st.sampled_from(KEYS), st.integers(1, 5), max_size=3)


def yaml_map(proficiencies: dict) -> str:
    by_attribute: dict[str, list[str]] = {}
    for (attribute, value), level in sorted(proficiencies.items()):
        by_attribute.setdefault(attribute, []).append(f"{value}: {level}")
    return "{" + ", ".join(f"{a}: {{{', '.join(v)}}}" for a, v in by_attribute.items()) + "}"


@st.composite
def manifests(draw) -> dict:
    """One version of the manifests: a set, a group, users' sets and entries."""
    return {
        "values": draw(st.sampled_from(["English, Spanish, French", "English, Spanish, French, German"])),
        "shared": draw(proficiency_maps.filter(bool)),
        "group_sets": draw(st.sampled_from([[], ["shared"]])),
        "users": {u: (draw(st.booleans()), draw(proficiency_maps)) for u in MANAGED},
        "minimums": draw(st.tuples(*[st.integers(0, 5)] * 3)),
    }  # fmt: skip


def manifest_files(version: dict) -> dict[str, str]:
    users = "users:\n" + "".join(
        f"  {u}: {{sets: [{'shared' if uses else ''}], proficiencies: {yaml_map(own)}}}\n"
        for u, (uses, own) in version["users"].items()
    )
    group = "groups: []\n"
    if version["group_sets"]:
        group = "groups:\n  - match: {username: 'u[01]'}\n    sets: [shared]\n"
    return {
        "instance.yaml": f"instance:\n  id: {INSTANCE_ID}\n  region: us-east-1\n"
        "settings:\n  max_change_percent: 50\n  min_existing_objects: 1\n",
        "attributes.yaml": (
            f"predefined_attributes:\n  Language: {{values: [{version['values']}]}}\n"
            "  Skill: {values: [Billing, Payments]}\n"
            f"proficiency_sets:\n  shared: {yaml_map(version['shared'])}\n"
        ),
        "users.yaml": users + group,
        "routing.yaml": ROUTING.format(*version["minimums"]),
    }


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(base=manifests(), edit=manifests(), unmanaged=st.tuples(proficiency_maps, proficiency_maps),
       drift=st.booleans())  # fmt: skip
def test_a_narrowed_plan_reports_what_the_full_plan_reports(
    connect, tmp_path_factory, base, edit, unmanaged, drift
) -> None:
    emulator, client = connect
    directory = tmp_path_factory.mktemp("versions")
    before = load_manifest(write_config(directory / "before", manifest_files(base), base=False))
    now = load_manifest(write_config(directory / "now", manifest_files(edit), base=False))
    # Connect holds the base manifests exactly (group members u0, u1 by glob),
    # or, with drift, the edited ones for u0 already (a console edit that
    # anticipated the change); unmanaged agents hold what they hold.
    live = {}
    for username in MANAGED:
        members = [{username} & {"u0", "u1"}] if before.groups else []
        live[username] = before.proficiencies_of(username, members)
    if drift:
        live["u0"] = now.proficiencies_of("u0", [{"u0"}] if now.groups else [])
    live.update(dict(zip(UNMANAGED, (
        {key: float(level) for key, level in held.items()} for held in unmanaged), strict=True)))  # fmt: skip
    attributes = {"Language": Attribute("Language", ("English", "Spanish", "French")),
                  "Skill": Attribute("Skill", ("Billing", "Payments"))}  # fmt: skip
    if "German" in base["values"]:
        attributes["Language"] = Attribute("Language", ("English", "Spanish", "French", "German"))
    state = RoutingState(
        attributes, {u: UserState(u, p, user_id=f"id-{u}") for u, p in live.items()}
    )
    emulator.reset(backend_from_snapshot(snapshot_of_state(state, INSTANCE_ID)))
    reader = LiveStateReader(QuotaPacer(client, time_scale=1000), INSTANCE_ID)

    full = make_plan(now, reader)
    narrowed = make_plan(now, reader, changed_narrowing(before, now, "base", reader))

    def reported(plan) -> tuple:
        summary = {k: v for k, v in plan.summary.items() if k != "no_op_users"}
        return summary, [row.data for row in plan.coverage], plan.guards, plan.errors

    assert reported(narrowed) == reported(full)
    assert narrowed.narrowing is not None and narrowed.deferred == []
