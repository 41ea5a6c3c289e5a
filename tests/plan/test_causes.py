"""Causes against a base: the manifests' changes told from drift, and what
leaves management (live: the small snapshot of tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.connect.pacer import QuotaPacer
from reconciler.connect.reader import LiveStateReader
from reconciler.manifest import load_manifest
from reconciler.plan.causes import Base, Cause, cause_of, combined
from reconciler.plan.planner import make_plan
from reconciler.plan.render import DRIFT_HEADING, MarkdownRenderer, TextRenderer
from tests.conftest import INSTANCE_ID, write_config

INSTANCE = f"instance:\n  id: {INSTANCE_ID}\n  region: us-east-1\n"
BASE = {
    "instance.yaml": INSTANCE,
    "attributes.yaml": "predefined_attributes:\n"
    "  Language: {values: [English, Spanish, French]}\n"
    "  Skill: {values: [Billing, Payments]}\n"
    "  Tier: {values: [Gold]}\n",
    "users.yaml": "users:\n"
    "  jane: {proficiencies: {Language: {Spanish: 4}, Skill: {Billing: 3}}}\n"
    "  joe: {proficiencies: {Language: {English: 3}}}\n"
    "  ann: {proficiencies: {Skill: {Payments: 2}}}\n",
}
NOW = {
    "instance.yaml": INSTANCE,
    # Language now managed elsewhere; Skill gains Retention; Tier as the base had it
    "settings.yaml": "settings:\n  external_attributes: [Language]\n",
    "attributes.yaml": "predefined_attributes:\n"
    "  Skill: {values: [Billing, Payments, Retention]}\n"
    "  Tier: {values: [Gold]}\n",
    "sets.yaml": "proficiency_sets:\n  spanish: {Language: {Spanish: 5}}\n",
    # ann is no longer mentioned
    "users.yaml": "users:\n"
    "  jane: {sets: [spanish], proficiencies: {Skill: {Billing: 3}}}\n"
    "  joe: {proficiencies: {Language: {English: 4}}}\n",
}


@pytest.mark.parametrize(
    ("base", "now", "live", "cause"),
    [
        (4, 4, 5, Cause.DRIFT),
        (4, 5, 4, Cause.MANIFEST),
        (3, 4, 5, Cause.BOTH),
        (None, 4, None, Cause.MANIFEST),
    ],
)
def test_cause_of_one_key(base, now, live, cause) -> None:
    assert cause_of(base, now, live) is cause


def test_combined_causes_are_one_cause_or_both() -> None:
    assert combined([Cause.DRIFT, Cause.DRIFT]) is Cause.DRIFT
    assert combined([Cause.DRIFT, Cause.MANIFEST]) is Cause.BOTH


@pytest.fixture
def planned(connect, tmp_path: Path):
    _, client = connect
    reader = LiveStateReader(QuotaPacer(client, time_scale=1000), INSTANCE_ID)
    base = load_manifest(write_config(tmp_path / "base", BASE, base=False))
    now = load_manifest(write_config(tmp_path / "now", NOW, base=False))
    return make_plan(now, reader, base=Base.read("origin/main", base, reader))


def test_each_change_says_whether_the_manifests_or_drift_cause_it(planned) -> None:
    causes = {c.identity: planned.why_of(c).cause for c in planned.changes}
    assert causes == {
        "create_attribute Tier": Cause.DRIFT,  # the base wanted it too: deleted in the console
        "update_attribute Skill": Cause.MANIFEST,  # Retention is new in the manifests
        "user_proficiencies jane": Cause.MANIFEST,  # Spanish 4 -> 5 by the manifests
        "user_proficiencies joe": Cause.BOTH,  # base 3, console 5, manifests now 4
    }
    jane = next(c for c in planned.user_changes if c.username == "jane")
    assert planned.why_of(jane).sources == {"Language/Spanish": "set spanish"}
    assert planned.base == "origin/main"


def test_what_the_base_managed_and_the_manifests_dropped_is_left_and_said(planned) -> None:
    assert planned.no_longer_managed.users == ["ann"]
    assert planned.no_longer_managed.attributes == ["Language"]
    assert not any(c.identity == "user_proficiencies ann" for c in planned.changes)
    text = TextRenderer().render(planned)
    assert "No longer managed (left as is): users ann" in text
    assert "No longer managed (left as is): attributes Language" in text
    assert "1 no longer managed (left as is)" in text
    markdown = MarkdownRenderer().render(planned)
    assert "No longer managed (left as is): users ann" in markdown
    document = planned.to_data()
    assert document["no_longer_managed"] == {"users": ["ann"], "attributes": ["Language"]}
    assert document["summary"]["users_no_longer_managed"] == 1


def test_drift_is_listed_apart_in_text_and_markdown(planned) -> None:
    text = TextRenderer().render(planned).splitlines()
    heading = next(i for i, line in enumerate(text) if line.startswith(DRIFT_HEADING))
    assert text.index("  + create attribute Tier") > heading  # drift, below the heading
    assert text.index("  ~ update attribute Skill") < heading  # the manifests', above it
    assert "  ~ user joe (also changed outside connect-reconciler)" in text
    markdown = MarkdownRenderer().render(planned)
    assert f"<summary>{DRIFT_HEADING}: Attribute changes (1)</summary>" in markdown
    assert "<summary>Attribute changes (1)</summary>" in markdown


def test_without_a_base_every_cause_is_unknown(connect, tmp_path: Path) -> None:
    _, client = connect
    reader = LiveStateReader(QuotaPacer(client, time_scale=1000), INSTANCE_ID)
    plan = make_plan(load_manifest(write_config(tmp_path / "now", NOW, base=False)), reader)
    assert {plan.why_of(c).cause for c in plan.changes} == {Cause.UNKNOWN}
    assert all(c["cause"] == "unknown" for c in plan.to_data()["changes"])
    assert not plan.no_longer_managed and DRIFT_HEADING not in TextRenderer().render(plan)
