"""Routing coverage: evaluator semantics, both expression forms, the plan's
guard, and the contact audit."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from reconciler.cli import cli
from reconciler.cli.coverage import parse_since
from reconciler.connect.contacts import read_contacts
from reconciler.connect.criteria import search_criteria
from reconciler.connect.pacer import QuotaPacer
from reconciler.connect.reader import LiveStateReader
from reconciler.emulator import load_snapshot
from reconciler.manifest import ManifestInvalid, load_manifest
from reconciler.plan.planner import make_plan
from reconciler.routing.contacts import contact_steps
from reconciler.routing.eligibility import satisfies
from reconciler.routing.expression import (
    AllOf,
    AnyOf,
    Condition,
    ExpressionError,
    parse_structured,
    parse_text,
    to_text,
)
from reconciler.service.timestamps import to_epoch
from tests.conftest import INSTANCE_ID, ROOT, ManualClock, write_config

DEMO = ROOT / "examples" / "demo-snapshot.json"
JANE = {("Language", "Spanish"): 4.0, ("Skill", "Billing"): 3.0}


# -- evaluation, against hand-computed answers ----------------------------------


@pytest.mark.parametrize(
    ("text", "held", "expected"),
    [
        ("Language = Spanish >= 4", {("Language", "Spanish"): 4.0}, True),
        ("Language = Spanish >= 4", {("Language", "Spanish"): 3.0}, False),
        ("Language = Spanish >= 4", {}, False),
        ("Language = Spanish", {("Language", "Spanish"): 1.0}, True),  # any level
        ("Language = Spanish IN 2..4", {("Language", "Spanish"): 2.0}, True),  # bounds inclusive
        ("Language = Spanish IN 2..4", {("Language", "Spanish"): 4.0}, True),
        ("Language = Spanish IN 2..4", {("Language", "Spanish"): 5.0}, False),
        ("Language = Spanish IN 2..4", {("Language", "Spanish"): 1.0}, False),
        ("NOT Language = Spanish", {("Language", "Spanish"): 3.0}, False),
        ("NOT Language = Spanish", {}, True),
        ("NOT Language = Spanish >= 4", {("Language", "Spanish"): 3.0}, True),
        ("Language = Spanish >= 4 AND Skill = Billing >= 3", JANE, True),
        ("Language = Spanish >= 4 AND Skill = Billing >= 4", JANE, False),
        ("Skill = Payments OR Language = Spanish >= 4", JANE, True),
        ("Language = English AND (Skill = Billing OR Language = Spanish)", JANE, False),
        ("(Language = English OR Skill = Billing) AND Language = Spanish >= 4", JANE, True),
    ],
)
def test_evaluator(text: str, held: dict, expected: bool) -> None:
    assert satisfies(parse_text(text), held) is expected


def test_agents_criteria_matches_listed_agents() -> None:
    step = {
        "AttributeCondition": {
            "Name": "connect:AgentId",
            "Value": "x",
            "MatchCriteria": {"AgentsCriteria": {"AgentIds": ["u-1", "u-2"]}},
        }
    }
    expression = parse_structured(step)
    assert satisfies(expression, {}, "u-2") and not satisfies(expression, JANE, "u-3")
    assert search_criteria(expression) is None  # SearchUsers cannot ask it


# -- the text form ----------------------------------------------------------------


def test_parse_builds_the_expected_tree() -> None:
    assert parse_text('Language = Spanish >= 4 AND ("Tier (old)" = Gold OR Skill = Technical Support IN 3..5)') == AllOf((
        Condition("Language", "Spanish", 4.0),
        AnyOf((Condition("Tier (old)", "Gold"), Condition("Skill", "Technical Support", 3.0, 5.0))),
    ))  # fmt: skip


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ("Language = ", 12, "expected an attribute value"),
        ("Language Spanish >= 4", 18, "expected '=', found '>='"),
        ("(Language = Spanish", 20, "expected ')'"),
        ("Language = Spanish >= 7", 23, "levels are 1 to 5"),
        ("Language = Spanish >= high", 23, "expected a level"),
        ("Language = Spanish IN 4..2", 23, "range goes low..high"),
        ("NOT (A = b OR C = d)", 1, "NOT applies to a single condition"),
        ("NOT (NOT A = b)", 1, "NOT applies to a single condition"),
        ("A = b AND", 10, "expected an attribute name"),
        ("A = b < 3", 7, "unexpected '<'"),
        ("A = b c = d", 9, "expected the end"),
    ],
)
def test_text_errors_are_positioned(text: str, column: int, fragment: str) -> None:
    with pytest.raises(ExpressionError) as raised:
        parse_text(text)
    assert raised.value.column == column
    assert fragment in str(raised.value)


# The service's characters (letters, digits, spaces, _.:/=+-@') and ones the text form quotes.
names = (
    st.text(alphabet="AbcZ 19_.:/=+-@'()<>AND", min_size=1, max_size=12).map(str.strip).filter(bool)
)
conditions = st.builds(
    Condition,
    names,
    names,
    st.sampled_from([None, 1.0, 3.0]),
    st.just(None),
    st.just(None),
    st.booleans(),
) | st.builds(
    lambda n, v, low: Condition(n, v, low, 5.0), names, names, st.sampled_from([1.0, 2.0, 4.0])
)
expressions = st.recursive(
    conditions,
    lambda inner: (
        st.builds(AllOf, st.lists(inner, min_size=2, max_size=3).map(tuple))
        | st.builds(AnyOf, st.lists(inner, min_size=2, max_size=3).map(tuple))
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(expressions)
def test_text_form_round_trips(expression) -> None:
    # runs of spaces inside an unquoted name collapse; quoted ones keep them
    assume(not any(" " in n and n != " ".join(n.split()) for n in _names(expression)))
    assert parse_text(to_text(expression)) == expression


def _names(expression) -> list[str]:
    if isinstance(expression, AllOf | AnyOf):
        return [n for e in expression.items for n in _names(e)]
    return [expression.name or "", expression.value or ""]


# -- the structured form ------------------------------------------------------------


def test_structured_forms() -> None:
    step = {
        "Expression": {"AndExpression": [
            {"AttributeCondition": {"Name": "Language", "Value": "Spanish", "ProficiencyLevel": 4, "ComparisonOperator": "NumberGreaterOrEqualTo"}},
            {"OrExpression": [
                {"AttributeCondition": {"Name": "Skill", "Value": "Billing", "Range": {"MinProficiencyLevel": 2, "MaxProficiencyLevel": 4}}},
                {"NotAttributeCondition": {"Name": "Tier", "Value": "Tier 1"}},
            ]},
        ]},
        "Expiry": {"DurationInSeconds": 30},
        "Status": "EXPIRED",
    }  # fmt: skip
    assert parse_structured(step) == parse_text(
        "Language = Spanish >= 4 AND (Skill = Billing IN 2..4 OR NOT Tier = Tier 1)"
    )


def _nested(depth: int) -> dict:
    expression: dict = {"AttributeCondition": {"Name": "L", "Value": "v"}}
    for _ in range(depth):
        expression = {"AndExpression": [expression]}
    return expression


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (
            {"AttributeCondition": {"Name": "L", "Value": "v"}, "AndExpression": []},
            "exactly one of",
        ),
        ({"AttributeCondition": {"Name": "L", "Value": "v", "Level": 3}}, "unknown member"),
        (
            {
                "AttributeCondition": {
                    "Name": "L",
                    "Value": "v",
                    "ProficiencyLevel": 3,
                    "ComparisonOperator": "NumberLessThan",
                }
            },
            "is not NumberGreaterOrEqualTo",
        ),
        (
            {
                "AttributeCondition": {
                    "Name": "L",
                    "Value": "v",
                    "Range": {"MinProficiencyLevel": 2},
                }
            },
            "MaxProficiencyLevel are required",
        ),
        ({"AndExpression": []}, "non-empty list"),
        ({"AttributeCondition": {"Name": "L"}}, "Name and Value are required"),
        ("text", "expected a mapping"),
        ({"AttributeCondition": {"Name": "L", "Value": "v", "ProficiencyLevel": True}}, "got True"),
        ({"AttributeCondition": {"Name": "L", "Value": "v", "Range": [1, 2]}}, "Range: expected"),
        (
            {
                "AttributeCondition": {
                    "Name": "L",
                    "Value": "v",
                    "Range": {"MinProficiencyLevel": "1", "MaxProficiencyLevel": 2},
                }
            },
            "MinProficiencyLevel: expected a level",
        ),
        ({"AttributeCondition": {"MatchCriteria": {"AgentsCriteria": 3}}}, "AgentsCriteria: exp"),
        (
            {"AttributeCondition": {"MatchCriteria": {"AgentsCriteria": {"AgentIds": "a"}}}},
            "AgentIds: expected a list",
        ),
        (_nested(40), "nest more than 32 deep"),
    ],
)
def test_structured_errors(data, fragment) -> None:
    with pytest.raises(ExpressionError, match=fragment):
        parse_structured(data)


def test_unreadable_contact_steps_are_counted_not_raised() -> None:
    contacts = [{"Id": "1", "RoutingCriteria": {"Steps": ["not a step", {"Expression": 3}]}}]
    assert contact_steps(contacts).unreadable == 2


def test_search_criteria_translation() -> None:
    criteria = search_criteria(parse_text("Language = Spanish >= 4 OR Skill = Billing IN 2..3"))
    (first, second) = criteria["OrConditions"]
    # "at least" is a range to the top level: no reliance on which bound GREATER_OR_EQUAL reads
    assert first["ListCondition"]["Conditions"][2]["NumberCondition"] == {
        "FieldName": "limit",
        "ComparisonType": "RANGE",
        "MinValue": 4,
        "MaxValue": 5,
    }
    assert second["ListCondition"]["Conditions"][2]["NumberCondition"]["ComparisonType"] == "RANGE"
    assert search_criteria(parse_text("NOT Language = Spanish")) is None


def test_parse_since() -> None:
    assert [parse_since(t) for t in ("30m", "24h", "7d", "2w")] == [1800, 86400, 604800, 1209600]
    with pytest.raises(ValueError, match="not a duration"):
        parse_since("yesterday")


# -- manifests -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("'Language = Spanish >='", "column 22: expected a level"),
        (
            "'Language = Klingon >= 2'",
            "uses Language/Klingon, which the manifests do not declare",
        ),
        ("{AttributeCondition: {Name: Language}}", "Name and Value are required"),
        # hostile input (issue 14): positioned errors, never RecursionError and co
        ("'" + "(" * 400 + "L = S" + ")" * 400 + "'", "column 33: parentheses nest more than 32"),
        ("'" + "NOT " * 1000 + "L = S'", "column 5: NOT applies to a single condition"),
        (
            "{AttributeCondition: {Name: L, Value: S, ProficiencyLevel: abc}}",
            "ProficiencyLevel: expected a level 1 to 5, got 'abc'",
        ),
        (
            "{AttributeCondition: {Name: L, Value: S, MatchCriteria: x}}",
            "MatchCriteria: expected a mapping, got 'x'",
        ),
        ("'L = S >= " + "9" * 5000 + "'", "levels are 1 to 5"),
        ("'L = \"" + "x" * 10_000 + "'", "unexpected '\"'"),
    ],
)
def test_requirement_errors_in_manifests_are_positioned(
    config_dir: Path, expression: str, fragment: str
) -> None:
    write_config(
        config_dir,
        {"routing.yaml": f"routing_requirements:\n  - name: es\n    expression: {expression}\n"},
    )
    with pytest.raises(ManifestInvalid) as raised:
        load_manifest(config_dir)
    (error,) = raised.value.errors
    assert (error.file, error.line) == ("config/routing.yaml", 3)
    assert fragment in error.message
    assert len(error.message) < 300  # a bad value is quoted short


def test_structured_requirement_in_yaml(config_dir: Path) -> None:
    write_config(config_dir, {"routing.yaml": (
        "routing_requirements:\n  - name: es\n    min_agents: 2\n    expression:\n"
        "      AttributeCondition: {Name: Language, Value: Spanish, ProficiencyLevel: 4, ComparisonOperator: NumberGreaterOrEqualTo}\n"
    )})  # fmt: skip
    (requirement,) = load_manifest(config_dir).requirements
    assert requirement.expression == Condition("Language", "Spanish", 4.0)


# -- the guard on the shipped example change --------------------------------------------


@pytest.fixture
def reshuffle(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "config", tmp_path / "config")
    shutil.copy(
        ROOT / "examples" / "tier-reshuffle" / "support.yaml",
        tmp_path / "config" / "teams" / "support.yaml",
    )
    shutil.copy(DEMO, tmp_path / "snapshot.json")
    return tmp_path


def run(*args: str):
    return CliRunner().invoke(cli, [*args, "--target", "emulator:snapshot.json"])


def test_example_change_trips_the_coverage_guard(reshuffle: Path) -> None:
    plan = run("plan", "--format", "json")
    assert plan.exit_code == 3
    rows = {row["name"]: row for row in json.loads(plan.stdout)["coverage"]}
    assert (rows["tier3-escalations"]["now"], rows["tier3-escalations"]["after"]) == (2, 1)
    assert [g["guard"] for g in json.loads(plan.stdout)["guards"]] == ["routing_requirement"]
    text = run("plan")
    assert "tier3-escalations: 2 → 1 (min 2) LOWERED BELOW MINIMUM" in text.output
    refused = run("apply", "--auto-approve")
    assert refused.exit_code == 3
    assert run("apply", "--auto-approve", "--force").exit_code == 0
    assert (
        run("plan", "--detailed-exitcode").exit_code == 0
    )  # applied; 1 < 2 but no longer lowered by a plan


def test_markdown_shows_the_requirement_table(reshuffle: Path) -> None:
    markdown = run("plan", "--format", "markdown").stdout
    assert (
        "| `tier3-escalations` Skill = Technical Support >= 4 AND Tier = Tier 3 >= 4 | 2 | 1 | 2 | ⛔ lowered below minimum |"
        in markdown
    )


def test_unmanaged_agents_are_counted_by_the_service(connect, tmp_path: Path) -> None:
    _, client = connect
    config = write_config(tmp_path / "config", {
        "instance.yaml": f"instance:\n  id: {INSTANCE_ID}\n",
        "attributes.yaml": "predefined_attributes:\n  Language: {values: [English, Spanish, French]}\n  Skill: {values: [Billing, Payments]}\n",
        "users.yaml": "users:\n  joe: {proficiencies: {Language: {English: 5, Spanish: 4}}}\n",
        "routing.yaml": "routing_requirements:\n  - {name: es, expression: 'Language = Spanish >= 4', min_agents: 1}\n"
                        "  - {name: not-fr, expression: 'NOT Language = French', min_agents: 1}\n"
                        "  - {name: half, expression: 'Language = Spanish >= 3.5', min_agents: 1}\n",
    }, base=False)  # fmt: skip
    plan = make_plan(
        load_manifest(config), LiveStateReader(QuotaPacer(client, time_scale=1000), INSTANCE_ID)
    )
    rows = {row.name: row for row in plan.coverage}
    # jane (unmanaged) holds Spanish 4 and keeps it; joe gains it
    assert (rows["es"].now, rows["es"].after, rows["es"].counted) == (1, 2, "all users")
    # NOT is set algebra over the instance's users: nobody holds French
    assert (rows["not-fr"].now, rows["not-fr"].after, rows["not-fr"].counted) == (
        3,
        3,
        "all users",
    )
    # a fractional level cannot be searched: only the managed agents are counted
    assert (rows["half"].now, rows["half"].after, rows["half"].counted) == (0, 1, "managed users")


# -- the contact audit --------------------------------------------------------------------


def test_contact_audit_over_the_demo(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "config", tmp_path / "config")
    shutil.copy(DEMO, tmp_path / "snapshot.json")
    result = run("coverage", "--from-contacts", "7d", "--until", "2026-11-21T00:00:00Z")
    assert result.exit_code == 2  # a step that no agent satisfies
    assert (
        "Contacts: 320 read, 74 without routing criteria (older API versions; skipped)"
        in result.output
    )
    line = next(line for line in result.output.splitlines() if "Portuguese" in line)
    assert line.split()[:4] == ["6", "0", "→", "0"] and "NO AGENT AFTER THE PLAN" in line
    assert "already unmet before the plan" in line  # no agent before the plan either
    assert run("coverage").exit_code == 0  # the declared requirements alone are met
    # every unmet step of the demo says whether the plan causes it
    document = json.loads(run("coverage", "--from-contacts", "7d", "--until",
                              "2026-11-21T00:00:00Z", "--format", "json").stdout)  # fmt: skip
    unmet = [row for row in document["contacts"]["steps"] if not row["met"]]
    assert unmet and all(row["cause"] in ("plan", "worsened", "already unmet") for row in unmet)
    assert all(row["cause"] is None for row in document["contacts"]["steps"] if row["met"])


def test_contact_steps_grouping_and_skips() -> None:
    step = {"Expression": {"AttributeCondition": {"Name": "L", "Value": "v"}}}
    contacts = [
        {"Id": "1"},
        {"Id": "2", "RoutingCriteria": {"Steps": [step, step]}},  # counted once per contact
        {"Id": "3", "RoutingCriteria": {"Steps": [step, {"Expression": {"FutureExpression": {}}}]}},
    ]
    found = contact_steps(contacts)
    assert (found.contacts, found.without_criteria, found.unreadable) == (3, 1, 1)
    assert {text: count for text, (_, count) in found.steps.items()} == {"L = v": 2}


def test_contact_reads_take_criteria_from_summaries_paced(connect) -> None:
    emulator, client = connect
    scale = 10.0
    clock = ManualClock()
    emulator.reset(load_snapshot(DEMO), quota_scale=scale, clock=clock)
    pacer = QuotaPacer(client, time_scale=scale, clock=clock, sleep=clock.sleep)
    # One worker: on the shared clock, calls then reach the emulator in the
    # order they were paced, so load cannot bunch them (see test_pacer).
    reader = LiveStateReader(pacer, emulator.backend.instance["Id"], workers=1)
    end = to_epoch("2026-11-21T00:00:00Z")
    read = read_contacts(reader, end - 7 * 86400, end, 250)
    stats = emulator.stats.snapshot()
    # The snapshot itself says which of the newest 250 lack routing criteria.
    in_window = sorted(
        (c for c in json.loads(DEMO.read_text())["Contacts"]
         if end - 7 * 86400 <= to_epoch(c["InitiationTimestamp"]) <= end),
        key=lambda c: to_epoch(c["InitiationTimestamp"]), reverse=True,
    )  # fmt: skip
    lacking = [c["Id"] for c in in_window[:250] if "RoutingCriteria" not in c]
    assert 0 < len(lacking) < 250
    assert len(read.contacts) == 250 and read.total == len(in_window) and read.cut
    assert stats["SearchContacts"]["ok"] == math.ceil(250 / 100)
    assert stats["DescribeContact"]["ok"] == len(lacking)
    with_criteria = {c["Id"] for c in read.contacts if c.get("RoutingCriteria")}
    assert with_criteria == {c["Id"] for c in in_window[:250]} - set(lacking)
    assert emulator.stats.total("throttled") == 0


@pytest.fixture
def demo_dir(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "config", tmp_path / "config")
    shutil.copy(DEMO, tmp_path / "snapshot.json")
    return tmp_path


WEEK = ("--from-contacts", "7d", "--until", "2026-11-21T00:00:00Z")


def test_coverage_json_and_markdown(demo_dir: Path) -> None:
    result = run("coverage", "--format", "json", *WEEK)
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert [r["name"] for r in document["requirements"]] == [
        "spanish-billing", "tier3-escalations", "emea-french",
    ]  # fmt: skip
    assert all(r["met"] for r in document["requirements"])
    assert document["contacts"]["read"] == 320
    assert document["contacts"]["without_criteria"] == 74
    portuguese = [s for s in document["contacts"]["steps"] if "Portuguese" in s["name"]]
    assert portuguese and not portuguese[0]["met"] and portuguese[0]["contacts"] == 6
    markdown = run("coverage", "--format", "markdown")
    assert markdown.exit_code == 0
    assert "| `spanish-billing` " in markdown.stdout and "routing step" not in markdown.stdout


def test_max_contacts_says_when_it_cut_the_window(demo_dir: Path) -> None:
    cut = run("coverage", "--max-contacts", "50", *WEEK)
    assert "--max-contacts 50 cut the window: read the newest 50 of 320 contacts" in cut.stderr
    whole = run("coverage", *WEEK)
    assert "cut the window" not in whole.stderr


def test_contact_steps_show_agents_by_username() -> None:
    agents = {"MatchCriteria": {"AgentsCriteria": {"AgentIds": ["id-jane", "id-gone"]}}}
    step = {"Expression": {"AttributeCondition": agents}}
    found = contact_steps([{"Id": "1", "RoutingCriteria": {"Steps": [step]}}], {"id-jane": "jane"})
    # A user deleted since keeps their id: nothing better to show.
    assert list(found.steps) == ["agent is one of [jane, id-gone]"]
