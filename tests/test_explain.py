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
from reconciler.connect.reader import CHECKED_USERS
from tests.conftest import INSTANCE_ID, ROOT, fast_demo_config

DEMO = ROOT / "examples" / "demo-snapshot.json"
SCHEMA = json.loads((ROOT / "docs" / "explain.schema.json").read_text())
PORTUGUESE = "e1655d3d-a277-51d7-b5e5-e7875bcfbd80"  # Portuguese >= 5 AND Billing >= 4
BEFORE_2024 = "f77c02e7-2363-5541-aa0b-935688938266"  # no RoutingCriteria
# Spanish >= 5 AND Retention >= 5 (expired), then Spanish >= 4; SegmentAttributes
# with ValueMap and ValueInteger
SPANISH = "5a1d0c3e-7b2f-5c44-9e61-0d2b8f3a9c17"
PCI = "401c487b-6a41-504f-9c35-d7cbe011f7b9"  # Certification = PCI >= 3: nobody holds it
NOT_TIER_1 = "5435c778-eac2-585c-b812-439063d1cf7c"  # Business Fiber >= 4 AND NOT Tier 1
FRENCH_OR_GERMAN = "d059f639-4424-5f8a-b9c2-d1da7fa674fe"  # French IN 3..5 OR German >= 4


@pytest.fixture
def demo(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    shutil.copy(DEMO, tmp_path / "snapshot.json")
    fast_demo_config(tmp_path / "config")
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
        and "| 1 | JOINED, expiry after 60 s |" in markdown
    )


def audited_steps(exit_code: int) -> list[dict]:
    """The contact steps `coverage --from-contacts` finds on the day of SPANISH."""
    result = CliRunner().invoke(cli, ["coverage", "--from-contacts", "1d", "--until",
                                      "2026-11-23T00:00:00Z", "--target", "emulator:snapshot.json",
                                      "--format", "json"])  # fmt: skip
    assert result.exit_code == exit_code, result.output
    return json.loads(result.stdout)["contacts"]["steps"]


def test_the_demos_expired_spanish_step_and_the_manifest_change_that_fills_it(
    demo: Path,
) -> None:
    code, stdout, _ = explain(SPANISH, "--format", "json")
    assert code == 0
    document = json.loads(stdout)
    jsonschema.validate(document, SCHEMA)
    first, second = document["steps"]
    assert (first["status"], first["expiry"]) == ("EXPIRED", "after 120 s")
    assert first["eligible_now"] == 0
    assert first["conditions"] == [
        {"condition": "Language = Spanish >= 5", "agents": 8},
        {"condition": "Skill = Retention >= 5", "agents": 0},
    ]
    assert first["limiting_condition"] == "Skill = Retention >= 5"
    assert first["near_misses"][:2] == [
        {"username": "isabel.moreno@example.com", "lacks": "Skill/Retention at 4, needs >= 5"},
        {"username": "rosa.alvarez@example.com", "lacks": "Skill/Retention at 4, needs >= 5"},
    ]
    assert second["eligible_now"] == 13
    # coverage audits the same steps: the first unmet, and not because of the plan
    assert [(s["now"], s["after"], s["cause"]) for s in audited_steps(2)] == [
        (0, 0, "already unmet"),
        (13, 13, None),
    ]
    billing = demo / "config" / "teams" / "billing.yaml"
    billing.write_text(
        billing.read_text().replace(
            "      Language: {Spanish: 5}      # native speaker",
            "      Skill: {Retention: 5}\n      Language: {Spanish: 5}      # native speaker",
        )
    )
    code, stdout, _ = explain(SPANISH)
    assert "Step 1 (EXPIRED, expiry after 120 s)" in stdout
    assert "0 eligible now → 1 after the plan" in stdout
    code, markdown, _ = explain(SPANISH, "--format", "markdown")
    assert "| 1 | EXPIRED, expiry after 120 s |" in markdown
    assert "8: Language = Spanish >= 5<br>0: Skill = Retention >= 5" in markdown
    # coverage audits the contact's steps: filled after the plan now
    assert [(s["now"], s["after"], s["cause"]) for s in audited_steps(0)] == [
        (0, 1, None),
        (13, 13, None),
    ]


def test_a_step_nobody_holds_lists_near_misses_from_every_user(demo: Path) -> None:
    shutil.rmtree(demo / "config")  # no manifests: now only
    code, stdout, _ = explain(
        PCI, "--instance-id", INSTANCE_ID, "--format", "json", "--near-misses", "3"
    )
    assert code == 0
    document = json.loads(stdout)
    (step,) = document["steps"]
    assert step["eligible_now"] == 0 and step["eligible_after"] is None
    assert step["limiting_condition"] == "Certification = PCI >= 3"
    assert [m["lacks"] for m in step["near_misses"]] == ["no Certification/PCI"] * 3
    # no after-state: proficiencies are listed only for the search's check (a
    # sample; a call the emulator throttles counts again when re-sent)
    assert document["reads"]["ListUsers"] >= 1
    assert CHECKED_USERS <= document["reads"]["ListUserProficiencies"] < 2 * CHECKED_USERS


def test_not_range_and_or_steps_are_explained(demo: Path) -> None:
    _, stdout, _ = explain(NOT_TIER_1)
    assert "Product = Business Fiber >= 4 AND NOT Tier = Tier 1" in stdout
    assert "0 eligible now → 2 after the plan" in stdout
    _, stdout, _ = explain(FRENCH_OR_GERMAN, "--format", "json")
    (step,) = json.loads(stdout)["steps"]
    assert step["expression"] == "Language = French IN 3..5 OR Language = German >= 4"
    assert step["eligible_now"] == 7 and step["limiting_condition"] is None  # an OR


def test_a_fractional_level_is_said_not_guessed(demo: Path) -> None:
    code, stdout, _ = explain("--expression", "Language = Spanish >= 3.5", "--format", "json")
    (step,) = json.loads(stdout)["steps"]
    assert code == 0 and step["eligible_now"] is None
    assert step["note"].startswith("level 3.5 is not a whole number")


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
