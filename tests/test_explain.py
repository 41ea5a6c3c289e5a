"""`explain` against the demo: a step with no eligible agent, the same step
after a manifest change, contacts of every API version, and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from reconciler.cli import cli
from tests.conftest import ROOT

DEMO = ROOT / "examples" / "demo-snapshot.json"
SCHEMA = json.loads((ROOT / "docs" / "explain.schema.json").read_text())
PORTUGUESE = "e1655d3d-a277-51d7-b5e5-e7875bcfbd80"  # Portuguese >= 5 AND Billing >= 4
BEFORE_2024 = "f77c02e7-2363-5541-aa0b-935688938266"  # no RoutingCriteria


@pytest.fixture
def demo(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    shutil.copy(DEMO, tmp_path / "snapshot.json")
    shutil.copytree(ROOT / "config", tmp_path / "config")
    return tmp_path


def explain(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["explain", *args, "--target", "emulator:snapshot.json"])
    return result.exit_code, result.stdout, result.output


def test_a_step_with_no_agent_names_what_limits_it_and_who_nearly_fits(demo: Path) -> None:
    code, stdout, _ = explain(PORTUGUESE, "--format", "json")
    assert code == 0
    document = json.loads(stdout)
    jsonschema.validate(document, SCHEMA)
    (step,) = document["steps"]
    assert (step["eligible_now"], step["eligible_after"]) == (0, 0)
    assert step["limiting_condition"] == "Language = Portuguese >= 5"
    carlos = {
        "username": "carlos.mendez@example.com",
        "lacks": "Language/Portuguese at 4, needs >= 5",
    }
    assert step["near_misses"][0] == carlos
    assert document["reads"]["DescribeContact"] == 1
    # the manifests raise carlos's Portuguese: the plan lets him take the step
    billing = demo / "config" / "teams" / "billing.yaml"
    billing.write_text(
        billing.read_text().replace(
            "      Skill: {Billing: 4, Payments: 4}",
            "      Skill: {Billing: 4, Payments: 4}\n      Language: {Portuguese: 5}",
        )
    )
    code, stdout, _ = explain(PORTUGUESE, "--format", "json")
    (step,) = json.loads(stdout)["steps"]
    assert (step["eligible_now"], step["eligible_after"]) == (0, 1)
    code, stdout, _ = explain(PORTUGUESE)
    assert "0 eligible now → 1 after the plan" in stdout
    assert "limiting condition: Language = Portuguese >= 5" in stdout
    code, markdown, _ = explain(PORTUGUESE, "--format", "markdown")
    assert (
        markdown.startswith("### connect-reconciler explain: contact")
        and "| 1 | JOINED |" in markdown
    )


def test_a_contact_from_before_routing_criteria_has_nothing_to_explain(demo: Path) -> None:
    code, stdout, _ = explain(BEFORE_2024)
    assert code == 0 and "no routing criteria recorded" in stdout
    code, stdout, _ = explain(BEFORE_2024, "--format", "json")
    assert json.loads(stdout)["steps"] == []


def test_an_expression_not_yet_on_a_contact(demo: Path) -> None:
    code, stdout, _ = explain(
        "--expression", "Language = Spanish >= 5 AND Skill = Billing >= 4", "--near-misses", "2"
    )
    assert code == 0
    assert "Step 1: Language = Spanish >= 5 AND Skill = Billing >= 4" in stdout
    assert stdout.count("needs >= 4") == 2


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (
            ["no-such-contact"],
            "no contact no-such-contact in instance 11111111-2222-3333-4444-555555555555",
        ),
        (["--expression", "Language = = Spanish"], "--expression: column 12"),
        (
            [PORTUGUESE, "--expression", "Skill = Billing"],
            "give a CONTACT_ID or --expression, not both",
        ),
    ],
)
def test_bad_input_is_one_line(demo: Path, args: list[str], fragment: str) -> None:
    code, _, output = explain(*args)
    assert code == 1 and fragment in output, output
    assert "Traceback" not in output


def test_a_contact_of_another_instance_is_refused(demo: Path) -> None:
    snapshot = json.loads((demo / "snapshot.json").read_text())
    contact = next(c for c in snapshot["Contacts"] if c["Id"] == PORTUGUESE)
    contact["Arn"] = contact["Arn"].replace(
        "11111111-2222-3333-4444-555555555555", "99999999-2222-3333-4444-555555555555"
    )
    (demo / "snapshot.json").write_text(json.dumps(snapshot))
    code, _, output = explain(PORTUGUESE)
    assert code == 1 and "belongs to instance 99999999-2222-3333-4444-555555555555" in output
