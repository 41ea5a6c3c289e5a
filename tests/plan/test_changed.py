"""--changed-since narrowing: what differs between two compilations of the
manifests, with group members resolved on the emulator (small snapshot:
jane is on "Spanish Support" in Dublin, joe in EMEA, ann in Dublin; Dublin is
a child of EMEA)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.connect.pacer import QuotaPacer
from reconciler.connect.reader import LiveStateReader
from reconciler.manifest import load_manifest
from reconciler.plan.changed import NotNarrowable, changed_narrowing
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
