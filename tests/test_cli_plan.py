"""plan and drift through the CLI against an embedded emulator: output and exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from reconciler.cli import cli
from reconciler.plan.render import TextRenderer
from reconciler.plan.saved import load_plan
from tests.conftest import INSTANCE_ID, ROOT, demo_config_in_yaml, git, small_snapshot, write_config

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
    assert "Plan: 1 attribute to create" in result.output
    assert run("plan", "--detailed-exitcode").exit_code == 2


def test_demo_plan_json_validates_and_exits_2(demo: Path) -> None:
    result = run("plan", "--format", "json", "--detailed-exitcode")
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    jsonschema.validate(document, SCHEMA)
    assert document["summary"]["creates"] == 1


def test_the_demo_team_kept_in_csv_plans_exactly_as_its_yaml(demo: Path) -> None:
    from_csv = json.loads(run("plan", "--format", "json").stdout)
    demo_config_in_yaml(demo / "config")
    from_yaml = json.loads(run("plan", "--format", "json").stdout)
    assert from_csv.pop("manifest_digest") != from_yaml.pop("manifest_digest")  # other files
    assert from_csv == from_yaml


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


def test_drift_reports_requirements_unmet_even_in_sync(small: Path) -> None:
    (small / "config" / "routing.yaml").write_text(
        "routing_requirements:\n"
        "  - {name: spanish, expression: 'Language = Spanish >= 4', min_agents: 3}\n"
        "  - {name: english, expression: 'Language = English >= 5', min_agents: 1}\n"
    )
    drift = run("drift")
    report = json.loads(drift.stdout)
    jsonschema.validate(report, SCHEMA)
    assert drift.exit_code == 0 and report["in_sync"] is True
    assert [
        (r["name"], r["now"], r["after"], r["cause"]) for r in report["unmet_requirements"]
    ] == [("spanish", 1, 1, "already unmet")]


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
    assert "does not exist in Connect" in result.output and "not saved" in result.output
    assert "No changes" not in result.output  # a plan with errors says nothing matches
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


# -- narrowing (docs/design.md §3, "Narrowing") ---------------------------------------------

RESHUFFLE = ROOT / "examples" / "tier-reshuffle" / "support.yaml"
DANIEL = "daniel.white@example.com"


@pytest.fixture
def demo_repo(demo: Path) -> Path:
    """The demo in a fresh `git init` repository, config/ committed as is."""
    git(demo, "init", "-q")
    (demo / ".gitignore").write_text("snapshot.json\n")
    git(demo, "add", "-A")
    git(demo, "commit", "-qm", "base")
    return demo


def reshuffle(repo: Path) -> None:
    shutil.copy(RESHUFFLE, repo / "config" / "teams" / "support.yaml")


@pytest.mark.parametrize(
    "narrowing", [["--user", DANIEL], ["--attribute", "Tier"], ["--changed-since", "HEAD~1"]]
)
def test_tier_reshuffle_is_refused_under_every_narrowing(
    demo_repo: Path, narrowing: list[str]
) -> None:
    reshuffle(demo_repo)
    git(demo_repo, "commit", "-qam", "move daniel to tier 2")
    planned = run("plan", *narrowing, "--format", "json")
    assert planned.exit_code == 3, planned.output
    document = json.loads(planned.stdout)
    jsonschema.validate(document, SCHEMA)
    (guard,) = document["guards"]
    assert (
        guard["guard"] == "routing_requirement" and "tier3-escalations: 2 → 1" in guard["message"]
    )
    assert [c["username"] for c in document["changes"]] == [DANIEL]
    before = (demo_repo / "snapshot.json").read_text()
    applied = run("apply", *narrowing, "--auto-approve")
    assert applied.exit_code == 3, applied.output
    assert (demo_repo / "snapshot.json").read_text() == before


def test_changed_since_leaves_the_working_tree_alone(demo_repo: Path) -> None:
    reshuffle(demo_repo)  # not committed: compared with HEAD
    status = git(demo_repo, "status", "--porcelain")
    result = run("plan", "--changed-since", "HEAD")
    assert result.exit_code == 3
    assert f"narrowed because declared users whose own entries or sets changed: {DANIEL}" in (
        result.output
    )
    assert git(demo_repo, "status", "--porcelain") == status


def test_changed_since_a_missing_ref_is_an_error(demo_repo: Path) -> None:
    result = run("plan", "--changed-since", "no-such-branch")
    assert result.exit_code == 1
    assert "git ref 'no-such-branch' not found" in result.output and "fetch-depth" in result.output


def test_changed_since_with_nothing_changed_plans_nothing_and_checks_requirements(
    demo_repo: Path,
) -> None:
    result = run("plan", "--changed-since", "HEAD", "--format", "json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["changes"] == []
    assert document["narrowing"]["reasons"] == ["nothing in the manifests changed since HEAD"]
    assert [row["counted"] for row in document["coverage"]] == ["all users"] * 3


def test_user_narrowing_defers_removals_instead_of_inventing_unmanaged_holders(
    demo: Path,
) -> None:
    # config/ removes Skill/Collections, which emily (managed) still holds
    result = run("plan", "--user", DANIEL, "--detailed-exitcode")
    assert result.exit_code in (0, 2), result.output
    assert "Errors:" not in result.output and "do not manage" not in result.output
    assert "! NARROWED PLAN: only 1 user(s): daniel.white@example.com." in result.output
    assert "deferred to a full plan: remove value(s) Collections from Skill" in result.output
    markdown = run("plan", "--user", DANIEL, "--format", "markdown").stdout
    assert "> **NARROWED PLAN: only 1 user(s): daniel.white@example.com." in markdown
    assert "> - deferred to a full plan: remove value(s) Collections from Skill" in markdown


def test_user_narrowing_keeps_the_additions_its_users_need(demo: Path) -> None:
    result = run("plan", "--user", "laura.jackson@example.com", "--format", "json")
    document = json.loads(result.stdout)
    kinds = [(c["kind"], c.get("attribute") or c.get("username")) for c in document["changes"]]
    assert kinds == [
        ("create_attribute", "Certification"),  # laura is given Certification/HIPAA
        ("update_attribute", "Product"),  # and Product/Business Fiber
        ("user_proficiencies", "laura.jackson@example.com"),
    ]
    assert document["narrowing"] == {
        "users": ["laura.jackson@example.com"],
        "attributes": None,
        "declarations": [],
        "changed_since": None,
        "reasons": [],
        "deferred": ["remove value(s) Collections from Skill"],
    }


@pytest.mark.parametrize(
    ("option", "name", "closest"),
    [
        ("--user", "daniel.whte@example.com", DANIEL),
        ("--attribute", "Langauge", "Language"),
    ],
)
def test_unknown_names_exit_1_with_the_closest(
    demo: Path, option: str, name: str, closest: str
) -> None:
    result = run("plan", option, name)
    assert result.exit_code == 1
    assert f"{option} {name!r}:" in result.output and closest in result.output


def test_saved_narrowed_plan_records_and_applies_exactly_itself(demo: Path) -> None:
    saved = run("plan", "--user", "laura.jackson@example.com", "--out", "plan.json")
    assert saved.exit_code == 0
    plan = load_plan(demo / "plan.json")
    assert plan.narrowing is not None and plan.narrowing.users == {"laura.jackson@example.com"}
    assert "NARROWED PLAN" in TextRenderer().render(plan)
    applied = run("apply", "plan.json", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    assert "NARROWED PLAN: only 1 user(s): laura.jackson@example.com." in applied.stderr
    snapshot = json.loads((demo / "snapshot.json").read_text())
    attributes = {a["Name"] for a in snapshot["PredefinedAttributes"]}
    assert "Certification" in attributes
    skill = next(a for a in snapshot["PredefinedAttributes"] if a["Name"] == "Skill")
    assert "Collections" in skill["Values"]["StringList"]  # the deferred removal waits
    emily = next(u for u in snapshot["Users"] if u["User"]["Username"] == "emily.chen@example.com")
    assert any(p["AttributeValue"] == "Collections" for p in emily["Proficiencies"])


@pytest.mark.parametrize("option", [["--user", DANIEL], ["--read", "search"]])
def test_saved_plan_refuses_new_narrowing_or_read_options(demo: Path, option: list[str]) -> None:
    run("plan", "--user", "laura.jackson@example.com", "--out", "plan.json")
    result = run("apply", "plan.json", *option)
    assert result.exit_code == 1 and "keeps its own narrowing and read" in result.output


def test_unsearchable_requirement_is_not_checked_and_refuses_apply(demo: Path) -> None:
    routing = demo / "config" / "routing.yaml"
    routing.write_text(
        routing.read_text()
        + "  - name: half-levels\n    expression: 'Tier = Tier 3 >= 3.5'\n    min_agents: 1\n"
    )
    result = run("plan", "--user", "laura.jackson@example.com")
    assert result.exit_code == 3
    assert "coverage_not_checked: half-levels: coverage not checked" in result.output
    refused = run("apply", "--user", "laura.jackson@example.com", "--auto-approve")
    assert refused.exit_code == 3
    forced = run("apply", "--user", "laura.jackson@example.com", "--auto-approve", "--force")
    assert forced.exit_code == 0, forced.output


def test_a_set_edited_in_a_commit_narrows_to_exactly_its_holders(demo_repo: Path) -> None:
    sets = demo_repo / "config" / "sets.yaml"
    sets.write_text(sets.read_text().replace("Skill: {Retention: 4}", "Skill: {Retention: 5}"))
    git(demo_repo, "commit", "-qam", "retention desk to level 5")
    result = run("plan", "--changed-since", "HEAD~1", "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    holders = ["grace.lewis", "henry.walker", "isabel.moreno", "jack.hall", "michael.brown",
               "rosa.alvarez", "zoe.wright"]  # fmt: skip
    assert document["narrowing"]["users"] == [f"{h}@example.com" for h in holders]
    assert document["narrowing"]["changed_since"] == "HEAD~1"
    assert {c["username"] for c in document["changes"]} <= set(document["narrowing"]["users"])


@pytest.mark.parametrize("read", ["list", "search"])
@pytest.mark.parametrize(
    "narrowing",
    [
        ["--changed-since", "HEAD~1"],
        ["--attribute", "Skill"],
        ["--user", "laura.jackson@example.com"],
    ],
    ids=["changed-since", "attribute", "user"],
)
def test_a_saved_narrowed_plan_applies_exactly_itself_and_refuses_an_edit(
    demo_repo: Path, narrowing: list[str], read: str
) -> None:
    """Narrowing x saved plans x read strategy: what `plan --out` saved is
    what `apply FILE` recomputes (deferred changes stay deferred), an edited
    copy is refused, and afterwards the narrowed scope is in sync."""
    sets = demo_repo / "config" / "sets.yaml"
    sets.write_text(sets.read_text().replace("Skill: {Retention: 4}", "Skill: {Retention: 5}"))
    git(demo_repo, "commit", "-qam", "retention 5")
    saved = run("plan", *narrowing, "--read", read, "--out", "plan.json")
    assert saved.exit_code == 0, saved.output
    plan = json.loads((demo_repo / "plan.json").read_text())
    assert plan["narrowing"] is not None and plan["read"]["strategy"] == read
    assert plan["changes"], "the change under test must plan something"
    edited = json.loads(json.dumps(plan))
    entry = next(
        c[step][0]
        for c in edited["changes"]
        if c["kind"] == "user_proficiencies"
        for step in ("update", "associate")
        if c[step]
    )
    entry["level"] = 1.0 if entry["level"] != 1.0 else 2.0
    (demo_repo / "edited.json").write_text(json.dumps(edited))
    before = (demo_repo / "snapshot.json").read_bytes()
    refused = run("apply", "edited.json")
    assert refused.exit_code == 4, refused.output
    assert (demo_repo / "snapshot.json").read_bytes() == before
    applied = run("apply", "plan.json")
    assert applied.exit_code == 0, applied.output
    again = run("plan", *narrowing, "--read", "list", "--detailed-exitcode")
    assert again.exit_code == 0, again.output


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


def test_changed_since_edge_cases(demo_repo: Path) -> None:
    combined = run("plan", "--changed-since", "HEAD", "--user", DANIEL)
    assert combined.exit_code == 1 and "cannot be combined" in combined.output
    instance = demo_repo / "config" / "instance.yaml"
    instance.write_text(
        instance.read_text().replace("max_change_percent: 30", "max_change_percent: 90")
    )
    full = run("plan", "--changed-since", "HEAD", "--format", "json")
    assert "planning in full: settings changed since HEAD" in full.stderr
    assert json.loads(full.stdout)["narrowing"] is None
    settings = demo_repo / "config" / "settings.yaml"
    settings.write_text("settings: [broken\n")
    git(demo_repo, "add", "-A")
    git(demo_repo, "commit", "-qm", "a broken commit")
    settings.unlink()
    broken = run("plan", "--changed-since", "HEAD")
    assert broken.exit_code == 1
    assert "the manifests at HEAD do not load" in broken.output
    assert "HEAD:config/settings.yaml:2:1: invalid YAML" in broken.output


def test_a_changed_declaration_is_planned_and_named(demo_repo: Path) -> None:
    attributes = demo_repo / "config" / "attributes.yaml"
    attributes.write_text(attributes.read_text().replace("Tier 3]", "Tier 3, Tier 4]"))
    result = run("plan", "--changed-since", "HEAD")
    assert result.exit_code == 0, result.output
    assert (
        "! NARROWED PLAN: only changes since HEAD; 0 user(s); "
        "changed attribute declaration(s): Tier." in result.output
    )
    assert "  ~ update attribute Tier\n      + value Tier 4" in result.output


def test_a_saved_plan_stripped_of_its_guards_is_refused_as_edited(demo: Path) -> None:
    reshuffle(demo)
    assert run("plan", "--out", "plan.json").exit_code == 3
    plan = json.loads((demo / "plan.json").read_text())
    assert [g["guard"] for g in plan["guards"]] == ["routing_requirement"]
    plan["guards"] = []
    (demo / "plan.json").write_text(json.dumps(plan))
    before = (demo / "snapshot.json").read_bytes()
    for extra in ([], ["--force"]):
        refused = run("apply", "plan.json", *extra)
        assert refused.exit_code == 4, refused.output
        assert "does not match its plan_digest" in refused.output
    assert (demo / "snapshot.json").read_bytes() == before


def set_maria(demo: Path, proficiencies: list[tuple[str, str, float]]) -> None:
    """What an admin does in the console to maria, whom no manifest manages."""
    snapshot = json.loads((demo / "snapshot.json").read_text())
    maria = next(u for u in snapshot["Users"] if u["User"]["Username"] == "maria.lopez@example.com")
    maria["Proficiencies"] = [
        {"AttributeName": a, "AttributeValue": v, "Level": level} for a, v, level in proficiencies
    ]
    (demo / "snapshot.json").write_text(json.dumps(snapshot))


def test_apply_file_refuses_when_a_guard_trips_since_the_plan_was_saved(demo: Path) -> None:
    """Saved with a third Tier 3 engineer (maria), the reshuffle keeps two and
    trips no guard. Maria then loses Tier 3 outside the plan: the same change
    now leaves one. apply FILE evaluates guards as they stand (exit 3)."""
    reshuffle(demo)
    tier3 = [("Skill", "Technical Support", 4.0), ("Tier", "Tier 3", 4.0)]
    set_maria(demo, tier3)
    saved = run("plan", "--out", "plan.json")
    assert saved.exit_code == 0, saved.output
    assert json.loads((demo / "plan.json").read_text())["guards"] == []
    set_maria(demo, tier3[:1])
    refused = run("apply", "plan.json")
    assert refused.exit_code == 3, refused.output
    assert "tier3-escalations: 2 → 1 eligible agents" in refused.output
    assert run("apply", "plan.json", "--force").exit_code == 0


def test_a_saved_plan_is_refused_when_an_unmanaged_user_took_a_value_it_removes(
    demo: Path,
) -> None:
    """The full plan removes Skill/Collections (emily, managed, holds it).
    Before apply FILE, an admin gives it to maria, whom no manifest manages:
    apply re-asks who holds it and refuses (exit 4), writing nothing."""
    assert run("plan", "--out", "plan.json").exit_code == 0
    snapshot = json.loads((demo / "snapshot.json").read_text())
    maria = next(u for u in snapshot["Users"] if u["User"]["Username"] == "maria.lopez@example.com")
    maria["Proficiencies"].append(
        {"AttributeName": "Skill", "AttributeValue": "Collections", "Level": 2.0}
    )
    (demo / "snapshot.json").write_text(json.dumps(snapshot))
    before = (demo / "snapshot.json").read_bytes()
    refused = run("apply", "plan.json")
    assert refused.exit_code == 4, refused.output
    assert "still held by users these manifests do not manage: maria.lopez" in refused.output
    assert (demo / "snapshot.json").read_bytes() == before


def test_a_search_read_narrowed_to_an_attribute_in_another_case_plans_cleanly(
    demo: Path,
) -> None:
    # --attribute matches case-insensitively everywhere, also where the search
    # read compares its result with the touched users' list read.
    (demo / "config" / "routing.yaml").unlink()  # no requirement names Language
    upper = run("plan", "--read", "search", "--attribute", "Language", "--format", "json")
    lower = run("plan", "--read", "search", "--attribute", "language", "--format", "json")
    assert upper.exit_code == 0 and lower.exit_code == 0, lower.output
    assert json.loads(lower.output)["changes"] == json.loads(upper.output)["changes"]


def test_no_changes_is_said_only_when_nothing_waits_either(demo: Path) -> None:
    result = run("plan", "--user", "jane.doe@example.com")  # in sync; attribute changes wait
    assert result.exit_code == 0, result.output
    assert "No changes in scope, 3 deferred to a full plan." in result.output
    assert "Connect matches the manifests" not in result.output


def test_quiet_prints_only_the_summary(demo: Path) -> None:
    result = run("plan", "-q")
    assert result.exit_code == 0, result.output
    (line,) = result.stdout.splitlines()
    assert line.startswith("Plan: 1 attribute to create, 2 to update, 0 to delete; 8 users")


def test_a_base_that_is_not_a_git_ref_is_an_error_before_any_plan(demo: Path) -> None:
    git(demo, "init", "-q")
    result = run("plan", "--base", "no-such-ref")
    assert result.exit_code == 1
    assert "error: --base: git ref 'no-such-ref' not found" in result.output


def test_drift_as_markdown_says_whether_connect_drifted(demo: Path) -> None:
    drifted = run("drift", "--format", "markdown")
    assert drifted.exit_code == 2
    assert drifted.stdout.startswith("### connect-reconciler drift report\n\n**Connect has drifted")
    assert "<summary>User changes (8)</summary>" in drifted.stdout
