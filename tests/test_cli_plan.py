"""plan and drift through the CLI against an embedded emulator: output and exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from reconciler.cli import cli
from reconciler.plan.saved import load_plan
from tests.conftest import INSTANCE_ID, ROOT, small_snapshot, write_config

SCHEMA = json.loads((ROOT / "docs" / "plan.schema.json").read_text())
IN_SYNC = (
    "users:\n"
    "  jane: {proficiencies: {Language: {Spanish: 4}, Skill: {Billing: 3}}}\n"
    "  joe: {proficiencies: {Language: {English: 5}}}\n"
)


@pytest.fixture
def demo(tmp_path: Path, monkeypatch) -> Path:
    """A working copy of the demo: config/ and a snapshot to plan against."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "config", tmp_path / "config")
    shutil.copy(ROOT / "examples" / "demo-snapshot.json", tmp_path / "snapshot.json")
    return tmp_path


@pytest.fixture
def small(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "snapshot.json").write_text(json.dumps(small_snapshot()))
    write_config(tmp_path / "config", {
        "instance.yaml": f"instance:\n  id: {INSTANCE_ID}\n  region: us-east-1\n",
        "attributes.yaml": "predefined_attributes:\n  Language: {values: [English, Spanish, French]}\n  Skill: {values: [Billing, Payments]}\n",
        "users.yaml": IN_SYNC,
    }, base=False)  # fmt: skip
    return tmp_path


def run(*args: str):
    return CliRunner().invoke(cli, [*args, "--target", "emulator:snapshot.json"])


def test_demo_plan_text_and_exit_codes(demo: Path) -> None:
    result = run("plan")
    assert result.exit_code == 0, result.output
    assert "+ create attribute Certification" in result.output
    assert "Plan: 1 attribute(s) to create" in result.output
    assert run("plan", "--detailed-exitcode").exit_code == 2


def test_demo_plan_json_validates_and_exits_2(demo: Path) -> None:
    result = run("plan", "--format", "json", "--detailed-exitcode")
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    jsonschema.validate(document, SCHEMA)
    assert document["summary"]["creates"] == 1


def test_in_sync_plan_and_drift(small: Path) -> None:
    assert run("plan", "--detailed-exitcode").exit_code == 0
    drift = run("drift")
    assert drift.exit_code == 0 and json.loads(drift.stdout)["in_sync"] is True
    (small / "config" / "users.yaml").write_text(IN_SYNC.replace("Spanish: 4", "Spanish: 5"))
    drift = run("drift")
    report = json.loads(drift.stdout)
    assert drift.exit_code == 2 and report["in_sync"] is False
    assert report["changes"][0]["update"] == [
        {"attribute": "Language", "value": "Spanish", "level": 5.0, "before": 4.0}
    ]


def test_guard_exits_3(small: Path) -> None:
    (small / "config" / "settings.yaml").write_text(
        "settings:\n  max_change_percent: 10\n  min_existing_objects: 1\n"
    )
    (small / "config" / "users.yaml").write_text(IN_SYNC.replace("Spanish: 4", "Spanish: 5"))
    result = run("plan")
    assert result.exit_code == 3
    assert "max_change_percent" in result.output


def test_plan_errors_exit_1_and_are_not_saved(small: Path) -> None:
    (small / "config" / "users.yaml").write_text(IN_SYNC + "  ghost: {}\n")
    result = run("plan", "--out", "plan.json")
    assert result.exit_code == 1
    assert "do not exist in Connect" in result.output and "not saved" in result.output
    assert not (small / "plan.json").exists()


def test_out_saves_a_loadable_plan(small: Path) -> None:
    (small / "config" / "users.yaml").write_text(IN_SYNC.replace("English: 5", "English: 3"))
    result = run("plan", "--out", "plan.json")
    assert result.exit_code == 0
    saved = load_plan(small / "plan.json")
    assert [c.username for c in saved.user_changes] == ["joe"]
    assert set(saved.fingerprints["users"]) == {"joe"}


def test_narrowing_options(small: Path) -> None:
    (small / "config" / "users.yaml").write_text(
        IN_SYNC.replace("English: 5", "English: 3").replace("Spanish: 4", "Spanish: 5")
    )
    result = run("plan", "--user", "joe")
    assert "~ user joe" in result.output and "user jane" not in result.output
    result = run("plan", "--attribute", "Skill")
    assert "No changes." in result.output


@pytest.mark.parametrize(
    ("target", "message"),
    [("mars", "unknown target 'mars'"), ("emulator:missing.json", "missing.json")],
)
def test_bad_targets_exit_1(small: Path, target: str, message: str) -> None:
    result = CliRunner().invoke(cli, ["plan", "--target", target])
    assert result.exit_code == 1 and message in result.output


def test_snapshot_of_another_instance_is_refused(small: Path) -> None:
    snapshot = small_snapshot()
    snapshot["Instance"]["Id"] = "other"
    snapshot["Instance"].pop("Arn")
    (small / "snapshot.json").write_text(json.dumps(snapshot))
    result = run("plan")
    assert result.exit_code == 1 and "snapshot of instance other" in result.output


def test_drift_on_a_guard_tripping_change_exits_2_with_the_guard_in_the_report(
    small: Path,
) -> None:
    (small / "config" / "settings.yaml").write_text(
        "settings:\n  max_change_percent: 10\n  min_existing_objects: 1\n"
    )
    (small / "config" / "users.yaml").write_text(IN_SYNC.replace("Spanish: 4", "Spanish: 5"))
    assert run("plan").exit_code == 3  # the same change: plan says a guard would refuse
    drift = run("drift")
    report = json.loads(drift.stdout)
    assert drift.exit_code == 2 and report["in_sync"] is False
    assert [g["guard"] for g in report["guards"]] == ["max_change_percent"]


def test_drift_with_plan_errors_exits_1(small: Path) -> None:
    (small / "config" / "users.yaml").write_text(IN_SYNC + "  ghost: {}\n")
    drift = run("drift")
    assert drift.exit_code == 1 and json.loads(drift.stdout)["errors"]
