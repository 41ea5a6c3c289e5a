"""Environments through the command line, on the shipped two-environment
example: validate, one plan of both at shared quotas, apply staging while dr
refuses, parity, and the choices and bad input around them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from reconciler.cli import cli
from reconciler.plan.render import MARKDOWN_MARKER
from tests.conftest import ROOT, git

EXAMPLE = ROOT / "examples" / "environments"
SCHEMA = json.loads((ROOT / "docs" / "plan.schema.json").read_text())
TARGETS = (
    "--target", "staging=emulator:staging-snapshot.json",
    "--target", "dr=emulator:dr-snapshot.json",
)  # fmt: skip


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working copy of examples/environments: its config and snapshots."""
    shutil.copytree(EXAMPLE, tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str):
    return CliRunner().invoke(cli, [*args, "--config", "config"])


def test_validate_checks_every_environment(example: Path) -> None:
    result = run("validate")
    assert result.exit_code == 0, result.output
    assert "config environment staging: valid" in result.stdout
    assert "config environment dr: valid" in result.stdout


def test_one_plan_of_both_environments_shares_the_account_pacer(example: Path) -> None:
    result = run("plan", "--all-envs", "--format", "json", "--out", "plans", *TARGETS)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["format_version"] == "1"
    assert list(document["environments"]) == ["staging", "dr"]
    for name, plan in document["environments"].items():
        jsonschema.validate(plan, SCHEMA)
        assert plan["environment"] == name
    staging, dr = document["environments"]["staging"], document["environments"]["dr"]
    assert staging["instance"]["id"].startswith("2222") and dr["instance"]["id"].startswith("3333")
    assert [c["username"] for c in staging["changes"]] == ["david.kim@example.com"]
    assert [c["username"] for c in dr["changes"]] == ["rosa.alvarez@example.com"]
    # both instances are in account 123456789012, us-east-1: one pacer per API
    [group] = document["quota_groups"]
    assert (group["account"], group["region"]) == ("123456789012", "us-east-1")
    assert group["environments"] == ["staging", "dr"]
    # a handful of users each: one ListUsers page per instance, both on the one pacer
    assert {n: c["ListUsers"] for n, c in group["calls_by_environment"].items()} == {
        "staging": 1,
        "dr": 1,
    }
    assert group["calls"]["ListUsers"] == 2
    assert "staging, dr share one pacer per API" in result.stderr
    assert sorted(p.name for p in (example / "plans").iterdir()) == ["dr.json", "staging.json"]
    assert "dr is verify-only: apply refuses it" in result.stderr


def test_instances_in_different_accounts_get_a_pacer_each(example: Path) -> None:
    snapshot = json.loads((example / "dr-snapshot.json").read_text())
    snapshot["Instance"]["Arn"] = snapshot["Instance"]["Arn"].replace(
        "123456789012", "999988887777"
    )
    (example / "dr-snapshot.json").write_text(json.dumps(snapshot))
    result = run("plan", "--all-envs", "--format", "json", *TARGETS)
    assert result.exit_code == 0, result.output
    groups = json.loads(result.stdout)["quota_groups"]
    assert sorted((g["account"], tuple(g["environments"])) for g in groups) == [
        ("123456789012", ("staging",)),
        ("999988887777", ("dr",)),
    ]


def test_apply_writes_staging_and_dr_refuses(example: Path) -> None:
    before = (example / "dr-snapshot.json").read_bytes()
    assert run("plan", "--all-envs", "--out", "plans", *TARGETS).exit_code == 0
    applied = run("apply", "plans/staging.json", *TARGETS)
    assert applied.exit_code == 0, applied.output
    assert "Applied 1 change(s)" in applied.stdout
    for refused in (
        run("apply", "plans/dr.json", *TARGETS),
        run("apply", "--env", "dr", "--auto-approve", *TARGETS),
    ):
        assert refused.exit_code == 1, refused.output
        assert "environment 'dr' is verify-only (`apply: false`, declared at" in refused.stderr
    assert (example / "dr-snapshot.json").read_bytes() == before  # never opened for writing
    again = run("plan", "--env", "staging", "--detailed-exitcode", *TARGETS)
    assert again.exit_code == 0, again.output  # staging converged


def test_a_saved_plan_of_one_environment_is_refused_for_another(example: Path) -> None:
    assert run("plan", "--all-envs", "--out", "plans", *TARGETS).exit_code == 0
    result = run("apply", "plans/staging.json", "--env", "dr", *TARGETS)
    assert result.exit_code == 1  # dr is verify-only: refused before anything is read
    (example / "config" / "environments.yaml").write_text(
        "environments:\n  staging: {layers: [base, staging]}\n  dr: {layers: [base, dr]}\n"
    )
    result = run("apply", "plans/staging.json", "--env", "dr", *TARGETS)
    assert result.exit_code == 4, result.output
    assert "it is for another environment" in result.stderr


def test_parity_reports_the_one_level_that_differs(example: Path) -> None:
    result = run("parity", "staging", "dr", "--format", "json", *TARGETS)
    assert result.exit_code == 2, result.output
    document = json.loads(result.stdout)
    assert document["same"] is False
    assert document["differences"] == [
        {
            "kind": "proficiency",
            "username": "rosa.alvarez@example.com",
            "attribute": "Skill",
            "value": "Retention",
            "levels": {"staging": 4.0, "dr": 3.0},
        }
    ]
    text = run("parity", "staging", "dr", *TARGETS)
    assert "rosa.alvarez@example.com Skill/Retention: staging 4, dr 3" in text.stdout
    same = run(
        "parity", "staging", "dr", "--target", "staging=emulator:staging-snapshot.json",
        "--target", "dr=emulator:staging-copy.json",
    )  # fmt: skip
    assert same.exit_code == 1  # a snapshot of another instance is refused, not compared
    shutil.copy(example / "dr-snapshot.json", example / "dr-copy.json")
    identical = run(
        "parity", "dr", "staging", "--target", "dr=emulator:dr-snapshot.json",
        "--target", "staging=emulator:dr-copy.json",
    )  # fmt: skip
    assert identical.exit_code == 1, identical.output  # the copy is dr's instance, not staging's


def test_parity_of_equal_instances_exits_0(example: Path) -> None:
    snapshot = json.loads((example / "dr-snapshot.json").read_text())
    [rosa] = [u for u in snapshot["Users"] if u["User"]["Username"] == "rosa.alvarez@example.com"]
    for proficiency in rosa["Proficiencies"]:
        if proficiency["AttributeValue"] == "Retention":
            proficiency["Level"] = 4.0
    (example / "dr-snapshot.json").write_text(json.dumps(snapshot))
    result = run("parity", "staging", "dr", *TARGETS)
    assert result.exit_code == 0, result.output
    assert "staging and dr are the same" in result.stdout


def test_markdown_of_several_environments_is_one_comment(example: Path) -> None:
    result = run("plan", "--all-envs", "--format", "markdown", *TARGETS)
    assert result.exit_code == 0, result.output
    assert result.stdout.count(MARKDOWN_MARKER) == 1
    assert result.stdout.startswith(MARKDOWN_MARKER)
    assert "<b>staging</b>" in result.stdout and "<b>dr</b>" in result.stdout


def test_drift_and_coverage_of_every_environment(example: Path) -> None:
    drift = run("drift", "--all-envs", *TARGETS)
    assert drift.exit_code == 2, drift.output  # both differ from their manifests
    report = json.loads(drift.stdout)
    assert {n: r["in_sync"] for n, r in report["environments"].items()} == {
        "staging": False,
        "dr": False,
    }
    coverage = run("coverage", "--all-envs", "--format", "json", *TARGETS)
    assert coverage.exit_code == 0, coverage.output
    assert set(json.loads(coverage.stdout)["environments"]) == {"staging", "dr"}


def test_the_exit_code_is_the_most_severe(example: Path) -> None:
    # staging's one change is more than it allows (a guard, 3); dr only changes (2)
    (example / "config" / "staging" / "strict.yaml").write_text(
        "settings: {max_change_percent: 1, min_existing_objects: 1}\n"
    )
    result = run("plan", "--all-envs", "--detailed-exitcode", *TARGETS)
    assert result.exit_code == 3, result.output
    (example / "staging-snapshot.json").write_text("{}")  # staging cannot be read: an error
    result = run("plan", "--all-envs", "--detailed-exitcode", *TARGETS)
    assert result.exit_code == 1, result.output
    assert "── environment dr (verify only" in result.stdout  # dr was still planned
    assert "error: staging:" in result.stderr


def test_environment_choices_are_checked_before_any_call(example: Path) -> None:
    missing = run("plan", *TARGETS)
    assert missing.exit_code == 1
    assert "declares environments (staging, dr): choose with --env NAME or --all-envs" in (
        missing.stderr
    )
    typo = run("plan", "--env", "stagin", *TARGETS)
    assert typo.exit_code == 1 and "'stagin' (did you mean staging?)" in typo.stderr
    target = run("plan", "--env", "staging", "--target", "prod=aws")
    assert target.exit_code == 1 and "--target: no environment named 'prod'" in target.stderr
    one = run("explain", "--expression", "Skill = Billing >= 3", "--all-envs", *TARGETS)
    assert one.exit_code == 1 and "runs against one instance" in one.stderr
    plain = CliRunner().invoke(cli, ["plan", "--env", "prod", "--config", str(ROOT / "config")])
    assert plain.exit_code == 1 and "environments.yaml does not exist" in plain.stderr


def test_single_instance_commands_take_one_environment(example: Path) -> None:
    explained = run(
        "explain", "--expression", "Skill = Billing >= 3", "--env", "dr", "--format", "json",
        "--target", "emulator:dr-snapshot.json",
    )  # fmt: skip
    assert explained.exit_code == 0, explained.output
    exported = run("export", "--env", "staging", "--out", "exported", *TARGETS)
    assert exported.exit_code == 0, exported.output
    assert (example / "exported").is_dir()
    update = run("export", "--env", "staging", "--update", "config", *TARGETS)
    assert update.exit_code == 1
    assert "export --update edits one directory's manifests" in update.stderr


def test_changed_since_narrows_each_environment_to_its_layers(example: Path) -> None:
    git(example, "init", "-q")
    git(example, "add", "-A")
    git(example, "commit", "-qm", "base")
    staging = example / "config" / "staging" / "instance.yaml"
    staging.write_text(staging.read_text().replace("Technical Support: 3", "Technical Support: 4"))
    result = run("plan", "--all-envs", "--changed-since", "HEAD", "--format", "json", *TARGETS)
    assert result.exit_code == 0, result.output
    plans = json.loads(result.stdout)["environments"]
    assert plans["staging"]["narrowing"]["users"] == ["david.kim@example.com"]
    assert plans["dr"]["narrowing"]["users"] == []  # its layers did not change
    assert plans["dr"]["changes"] == []
    base = example / "config" / "base" / "attributes.yaml"
    base.write_text(base.read_text().replace("Skill: {Retention: 4}", "Skill: {Retention: 5}"))
    result = run("plan", "--all-envs", "--changed-since", "HEAD", "--format", "json", *TARGETS)
    plans = json.loads(result.stdout)["environments"]
    # a shared layer's change reaches every environment that uses it
    assert "rosa.alvarez@example.com" in plans["staging"]["narrowing"]["users"]
    assert plans["dr"]["narrowing"]["users"] == ["rosa.alvarez@example.com"]


def test_two_environments_applying_to_one_instance_stop_before_any_call(example: Path) -> None:
    dr = example / "config" / "dr" / "instance.yaml"
    dr.write_text(dr.read_text().replace("33333333-4444-5555-6666-777777777777",
                                         "22222222-3333-4444-5555-666666666666"))  # fmt: skip
    (example / "config" / "environments.yaml").write_text(
        "environments:\n  staging: {layers: [base, staging]}\n  dr: {layers: [base, dr]}\n"
    )
    for command in (("validate",), ("plan", "--all-envs", "--target", "aws")):
        result = run(*command)  # aws without credentials: any call would fail otherwise
        assert result.exit_code == 1, result.output
        assert "config/environments.yaml:3:3: environments 'staging'" in result.stderr
        assert "both apply to instance 22222222-3333-4444-5555-666666666666" in result.stderr
        assert "credentials" not in result.stderr
    # an apply of one of them also refuses, having loaded the other
    applied = run("apply", "--env", "staging", "--auto-approve", "--target", "aws")
    assert applied.exit_code == 1 and "both apply to instance" in applied.stderr
    assert run("plan", "--env", "staging", *TARGETS).exit_code == 0  # reading one is fine
    as_json = run("validate", "--format", "json")
    [error] = json.loads(as_json.stdout)["errors"]
    assert (error["file"], error["line"]) == ("config/environments.yaml", 3)


def test_a_plan_of_an_environment_says_which(example: Path) -> None:
    text = run("plan", "--env", "dr", *TARGETS)
    assert text.stdout.startswith("Environment dr: Instance 33333333-4444-5555-6666-777777777777")
    markdown = run("plan", "--env", "dr", "--format", "markdown", *TARGETS)
    assert "(environment `dr`)" in markdown.stdout
    assert run("plan", "--env", "dr", "--out", "dr.json", *TARGETS).exit_code == 0
    shown = CliRunner().invoke(cli, ["show", "dr.json"])
    assert shown.exit_code == 0 and shown.stdout.startswith("Environment dr: Instance")


def test_a_failing_environment_leaves_one_parsable_document(example: Path) -> None:
    # dr's plan has an error (an external attribute that does not exist live)
    (example / "config" / "dr" / "ghost.yaml").write_text(
        "settings: {external_attributes: [Ghost]}\n"
        "users:\n  jane.doe@example.com: {proficiencies: {Ghost: {Boo: 1}}}\n"
    )
    for command in ("coverage", "plan", "drift"):
        result = run(command, "--all-envs", "--format", "json", *TARGETS)
        assert result.exit_code == 1, result.output
        document = json.loads(result.stdout)  # one document, whatever failed
        assert "error" not in document["environments"]["staging"]
        failed = document["environments"]["dr"]
        if command == "coverage":
            assert failed["exit_code"] == 1
        else:  # a plan with errors is still a plan document
            assert failed["errors"]


def test_manifests_that_do_not_load_at_the_ref_stay_off_the_document(example: Path) -> None:
    git(example, "init", "-q")
    broken = example / "config" / "dr" / "instance.yaml"
    text = broken.read_text()
    broken.write_text(text + "users: [not, a, mapping]\n")
    git(example, "add", "-A")
    git(example, "commit", "-qm", "broken dr")
    broken.write_text(text)
    result = run("plan", "--all-envs", "--changed-since", "HEAD", "--format", "json", *TARGETS)
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["environments"]["dr"] == {"error": document["environments"]["dr"]["error"],
                                              "exit_code": 1}  # fmt: skip
    assert "narrowing" in document["environments"]["staging"]
    assert "error: dr: the manifests at HEAD do not load:" in result.stderr


def test_one_environment_failing_on_its_own_stops_no_other(example: Path) -> None:
    (example / "plans").write_text("a file, not a directory")
    result = run("plan", "--all-envs", "--out", "plans/here", *TARGETS)
    assert result.exit_code == 1
    assert "── environment staging ──" in result.stdout and "── environment dr" in result.stdout
    assert "error: staging: " in result.stderr and "error: dr: " in result.stderr


def test_environments_sharing_a_quota_must_agree_on_it(example: Path) -> None:
    (example / "config" / "dr" / "quotas.yaml").write_text(
        "settings: {quotas: {ListUsers: {rate: 1, burst: 1}}}\n"
    )
    result = run("plan", "--all-envs", *TARGETS)
    assert result.exit_code == 1
    assert "whose quotas they share, but their settings.quotas differ" in result.stderr


def test_an_error_of_one_environment_says_which(example: Path) -> None:
    (example / "config" / "dr" / "typo.yaml").write_text(
        "users:\n  ann: {sets: [spanish_biling]}\n"
    )
    (example / "config" / "base" / "more.yaml").write_text("users:\n  zed: {sets: [nope]}\n")
    result = run("validate")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if ": " in line and "hint" not in line]
    assert any("typo.yaml:2:16: proficiency set 'spanish_biling' is not defined (environment dr)"
               in line for line in errors), errors  # fmt: skip
    # the shared layer's error is said once, for every environment
    [shared] = [line for line in errors if "'nope'" in line]
    assert "(environment" not in shared


def test_a_failed_environment_says_why_in_the_document_and_verify_only_is_marked(
    example: Path,
) -> None:
    targets = ("--target", "staging=emulator:staging-snapshot.json", "--target",
               "dr=emulator:missing.json")  # fmt: skip
    result = run("plan", "--all-envs", "--format", "json", *targets)
    assert result.exit_code == 1
    failed = json.loads(result.stdout)["environments"]["dr"]
    assert failed["exit_code"] == 1 and "missing.json" in failed["error"]
    text = run("plan", "--all-envs", "-q", *TARGETS)
    assert "── environment dr (verify only: apply refuses it) ──" in text.stdout
    assert "── environment staging ──" in text.stdout
    assert "quota " not in text.stderr  # -q: errors only
    markdown = run("plan", "--all-envs", "--format", "markdown", *targets)
    assert "missing.json" in markdown.stdout


def test_parity_takes_its_environments_as_arguments_only(example: Path) -> None:
    result = run("parity", "staging", "dr", "--all-envs", *TARGETS)
    assert result.exit_code == 1 and "No such option '--all-envs'" in result.stderr
    assert "--env" not in CliRunner().invoke(cli, ["parity", "--help"]).stdout


def test_a_new_environment_is_planned_in_full_saying_so(example: Path) -> None:
    git(example, "init", "-q")
    git(example, "add", "-A")
    git(example, "commit", "-qm", "base")
    environments = example / "config" / "environments.yaml"
    environments.write_text(environments.read_text() + "  qa: {layers: [base, qa], apply: false}\n")
    (example / "config" / "qa").mkdir()
    (example / "config" / "qa" / "instance.yaml").write_text(  # a look at staging's instance
        "instance: {id: 22222222-3333-4444-5555-666666666666, region: us-east-1}\n"
    )
    result = run("validate")
    assert result.exit_code == 0, result.output
    planned = run("plan", "--env", "staging", "--changed-since", "HEAD", "--format", "json",
                  *TARGETS)  # fmt: skip
    reasons = json.loads(planned.stdout)["narrowing"]["reasons"]
    assert reasons == ["nothing in environment staging's layers changed since HEAD"]
    qa = run("plan", "--env", "qa", "--changed-since", "HEAD", "--target",
             "qa=emulator:staging-snapshot.json")  # fmt: skip
    assert "qa: planning in full: environment qa did not exist or held no manifests at HEAD" in (
        qa.stderr
    )
