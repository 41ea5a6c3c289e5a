"""Renderers: text for terminals, JSON per docs/plan.schema.json, Markdown for PRs."""

from __future__ import annotations

import json
from dataclasses import fields

import jsonschema

from reconciler.connect.read_choice import ReadChoice
from reconciler.plan.causes import Cause, NoLongerManaged, Why
from reconciler.plan.changes import OwnerTag
from reconciler.plan.diff import DiffPolicy, diff
from reconciler.plan.guards import GuardFinding
from reconciler.plan.narrowing import Narrowing
from reconciler.plan.plan import Plan
from reconciler.plan.render import JsonRenderer, MarkdownRenderer, TextRenderer
from reconciler.routing.coverage import CoverageRow
from reconciler.state import Attribute, RoutingState, UserState
from tests.conftest import ROOT

SCHEMA = json.loads((ROOT / "docs" / "plan.schema.json").read_text())


def sample_plan(users: int = 2) -> Plan:
    live = RoutingState(
        {"Skill": Attribute("Skill", ("Billing", "Collections"))},
        {
            f"user{i}|x": UserState(f"user{i}|x", {("Skill", "Collections"): 2.0}, user_id=f"id{i}")
            for i in range(users)
        },
    )
    desired = RoutingState(
        {
            "Skill": Attribute("Skill", ("Billing", "Payments")),
            "Tier": Attribute("Tier", ("Gold",), ("routing",)),
        },
        {
            f"user{i}|x": UserState(
                f"user{i}|x", {("Skill", "Payments"): 3.0, ("Tier", "Gold"): 1.0}
            )
            for i in range(users)
        },
    )
    return Plan(
        "inst-1", "us-east-1", "0" * 64, diff(desired, live, DiffPolicy()), unchanged_users=4
    )


def test_text_lists_changes_in_order_with_a_summary() -> None:
    text = TextRenderer().render(sample_plan(1))
    lines = [line.strip() for line in text.splitlines()]
    assert (
        lines.index("+ create attribute Tier")
        < lines.index("~ update attribute Skill")
        < lines.index("~ user user0|x")
    )
    assert lines.index("~ user user0|x") < lines.index("~ update attribute Skill (after users)")
    assert "+ Skill/Payments = 3" in lines and "- Skill/Collections (was 2)" in lines
    assert lines[-1] == (
        "Plan: 1 attribute to create, 2 to update, 0 to delete; 1 user to change "
        "(2 associations, 0 level updates, 1 disassociation), 4 unchanged."
    )
    assert "\x1b[" not in text


def test_text_colours_only_when_asked() -> None:
    coloured = TextRenderer(color=True).render(sample_plan(1))
    assert "\x1b[32m  + create attribute Tier" in coloured
    assert "\x1b[31m      - Skill/Collections" in coloured


def test_text_for_an_empty_plan_with_guards_and_errors() -> None:
    plan = Plan(
        "inst-1", None, "0" * 64, [], errors=["boom"], guards=[GuardFinding("g", "too much")]
    )
    text = TextRenderer().render(plan)
    assert "! g: too much" in text and "✗ boom" in text
    assert "No changes" not in text  # a plan with errors never says Connect matches


def test_json_validates_against_the_documented_schema() -> None:
    plan = sample_plan(3)
    plan.guards = [GuardFinding("max_change_percent", "x")]
    document = json.loads(JsonRenderer().render(plan))
    jsonschema.validate(document, SCHEMA)
    assert document["summary"]["associations"] == 6
    jsonschema.validate(plan.to_data(with_fingerprints=True), SCHEMA)


def test_json_schema_rejects_a_wrong_document() -> None:
    document = json.loads(JsonRenderer().render(sample_plan(1)))
    document["changes"][0]["kind"] = "rename_attribute"
    try:
        jsonschema.validate(document, SCHEMA)
    except jsonschema.ValidationError:
        return
    raise AssertionError("the schema accepted an unknown change kind")


def full_plan() -> Plan:
    """A plan with every member set to something other than its default."""
    plan = sample_plan(2)
    plan.errors = ["an error"]
    plan.guards = [GuardFinding("max_change_percent", "too much")]
    plan.unmanaged_attributes = ["Legacy"]
    plan.coverage = [CoverageRow("spanish", "Language = Spanish", 2, 3, 1, "all users")]
    plan.fingerprints = {"attributes": {"Skill": "ab12"}, "users": {"user0|x": None}}
    plan.read = ReadChoice("search", "auto", 500.0, 40.0)
    plan.narrowing = Narrowing(
        users=frozenset({"user0|x"}),
        attributes=frozenset({"Skill"}),
        declarations=frozenset({"Tier"}),
        changed_since="origin/main",
        reasons=("because",),
    )
    plan.deferred = ["delete attribute Legacy"]
    plan.owner_tags = [OwnerTag("user0|x", "id0", "arn:aws:connect:x", "team", "other")]
    plan.why = {
        plan.attribute_changes[0].key: Why(Cause.DRIFT),
        plan.user_changes[0].key: Why(Cause.BOTH, {"Skill/Payments": "set billing"}),
    }
    plan.base = "origin/main"
    plan.no_longer_managed = NoLongerManaged(["gone@example.com"], ["Old"])
    plan.environment = "staging"
    return plan


def test_plan_round_trips_through_json_member_by_member() -> None:
    plan = full_plan()
    defaults = Plan("", None, "", [])
    unset = [f.name for f in fields(Plan) if getattr(plan, f.name) == getattr(defaults, f.name)]
    assert unset == ["saved_digest"]  # set only by a saved file; see test_saved
    document = json.loads(json.dumps(plan.to_data(with_fingerprints=True)))
    assert Plan.from_data(document) == plan


def test_markdown_puts_the_summary_first_and_escapes_tables() -> None:
    markdown = MarkdownRenderer().render(sample_plan(1))
    # A hidden marker line first: the CI job finds its sticky comment by it.
    assert markdown.splitlines()[0] == "<!-- connect-reconciler-plan -->"
    assert markdown.splitlines()[3].startswith("**1 attribute to create")
    assert "<details><summary>User changes (1)</summary>" in markdown
    assert "| user0\\|x |" in markdown


def test_markdown_is_capped_with_a_note_of_what_was_cut() -> None:
    markdown = MarkdownRenderer(limit=5_000).render(sample_plan(500))
    assert len(markdown) <= 5_000
    shown = sum(
        1 for line in markdown.splitlines() if line.startswith("| user") and line[6].isdigit()
    )
    assert 0 < shown < 500
    assert f"_{500 - shown} more user changes not shown" in markdown
    assert markdown.rstrip().endswith("</details>")


def test_markdown_errors_and_guards_are_callouts() -> None:
    plan = Plan("inst-1", None, "0" * 64, [], errors=["a|b"], guards=[GuardFinding("g", "m")])
    markdown = MarkdownRenderer().render(plan)
    assert "> [!CAUTION]" in markdown and "> - a\\|b" in markdown and "> - `g`: m" in markdown


def test_every_renderer_says_how_proficiencies_were_read() -> None:
    plan = sample_plan(1)
    plan.read = ReadChoice("search", "auto", 5000.0, 310.4)
    said = "proficiencies read by SearchUsers (auto: ~5000 s by list, ~310 s by search)"
    assert f"Live state: {said}." in TextRenderer().render(plan)
    assert f"Live state: {said}." in MarkdownRenderer().render(plan)
    document = json.loads(JsonRenderer().render(plan))
    jsonschema.validate(document, SCHEMA)
    assert document["read"] == {
        "strategy": "search",
        "requested": "auto",
        "estimated_seconds": {"list": 5000.0, "search": 310.4},
    }
    assert Plan.from_data(document).read == plan.read
    forced = ReadChoice("list", "list")
    assert forced.describe() == "proficiencies read by ListUserProficiencies (--read list)"
    unestimated = ReadChoice("list", "auto", 2.0)
    assert unestimated.describe().endswith("(auto: search cannot be cheaper)")
