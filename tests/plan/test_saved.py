"""Saved plans: `apply FILE` applies exactly what was reviewed, or nothing
(exit 4, nothing written); `show FILE` renders one offline."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from reconciler.cli import cli
from reconciler.plan.fingerprint import proficiencies_fingerprint
from reconciler.plan.plan import document_digest
from tests.test_apply import cli_run, workdir  # noqa: F401 - workdir is a fixture

Edit = Callable[[dict[str, Any]], None]


def saved(workdir: Path) -> dict[str, Any]:  # noqa: F811
    result = cli_run("plan", "--out", "plan.json")
    assert result.exit_code == 0, result.output
    return json.loads((workdir / "plan.json").read_text())


def jane(plan: dict[str, Any]) -> dict[str, Any]:
    (change,) = [c for c in plan["changes"] if c.get("username") == "jane"]
    return change


def edit_level(plan: dict[str, Any]) -> None:
    jane(plan)["update"][0]["level"] = 3.0  # reviewed: Spanish 4 -> 5


def add_change_with_its_fingerprint(plan: dict[str, Any]) -> None:
    joe = {"kind": "user_proficiencies", "username": "joe", "user_id": "id-joe", "phase": 2,
           "order": ["associate"], "associate": [{"attribute": "Language", "value": "French", "level": 1.0}],
           "update": [], "disassociate": [], "before": [{"attribute": "Language", "value": "English", "level": 5.0}],
           "after": [{"attribute": "Language", "value": "English", "level": 5.0},
                     {"attribute": "Language", "value": "French", "level": 1.0}]}  # fmt: skip
    plan["changes"].insert(3, joe)
    plan["fingerprints"]["users"]["joe"] = proficiencies_fingerprint({("Language", "English"): 5.0})


def drop_a_change_with_its_fingerprint(plan: dict[str, Any]) -> None:
    plan["changes"].remove(jane(plan))
    del plan["fingerprints"]["users"]["jane"]


def add_change_without_fingerprint(plan: dict[str, Any]) -> None:
    add_change_with_its_fingerprint(plan)
    del plan["fingerprints"]["users"]["joe"]


def fingerprints_as_a_list(plan: dict[str, Any]) -> None:
    plan["fingerprints"]["users"] = list(plan["fingerprints"]["users"])


def remove_fingerprints(plan: dict[str, Any]) -> None:
    del plan["fingerprints"]


def other_region(plan: dict[str, Any]) -> None:
    plan["instance"]["region"] = "eu-west-2"


def unknown_version(plan: dict[str, Any]) -> None:
    plan["format_version"] = "2"


def unknown_member(plan: dict[str, Any]) -> None:
    plan["approved_by"] = "someone"


def swap_order(plan: dict[str, Any]) -> None:
    plan["changes"][0], plan["changes"][1] = plan["changes"][1], plan["changes"][0]


def other_user_id(plan: dict[str, Any]) -> None:
    jane(plan)["user_id"] = "id-joe"


def boolean_level_digest_recomputed(plan: dict[str, Any]) -> None:
    jane(plan)["update"][0]["level"] = True  # JSON true is no level, even with a fresh digest
    del plan["plan_digest"], plan["saved_at"]
    plan["plan_digest"] = document_digest(plan)


EDITS: dict[str, tuple[Edit, str]] = {
    "edited level": (edit_level, "['update'][0]['level']: plan has 3.0, recomputed 5.0"),
    "added change": (add_change_with_its_fingerprint, "['user_proficiencies joe (phase 2)']: plan has {"),
    "added change, no fingerprint": (add_change_without_fingerprint, "no fingerprint for joe"),
    "dropped change and fingerprint": (drop_a_change_with_its_fingerprint, "does not match its plan_digest"),
    "removed fingerprints": (remove_fingerprints, "the plan has no fingerprints"),
    "fingerprints not maps": (fingerprints_as_a_list, "its fingerprints are not name -> hash maps"),
    "other region": (other_region, "the plan is for region eu-west-2, this apply targets us-east-1"),
    "unknown version": (unknown_version, "unsupported plan format_version '2'"),
    "unknown member": (unknown_member, "unknown member(s) approved_by"),
    "reordered": (swap_order, "the plan's changes are out of order"),
    "other user id": (other_user_id, "['user_id']: plan has \"id-joe\", recomputed \"id-jane\""),
    "boolean level": (boolean_level_digest_recomputed, "a level must be a number, not true"),
}  # fmt: skip


@pytest.mark.parametrize(("edit", "message"), EDITS.values(), ids=EDITS.keys())
def test_an_altered_saved_plan_is_refused_and_nothing_written(
    workdir: Path,  # noqa: F811
    edit: Edit,
    message: str,
) -> None:
    plan = saved(workdir)
    edit(plan)
    (workdir / "plan.json").write_text(json.dumps(plan))
    before = (workdir / "snapshot.json").read_bytes()
    result = cli_run("apply", "plan.json")
    assert result.exit_code == 4, result.output
    assert message in result.output
    assert (workdir / "snapshot.json").read_bytes() == before


def test_a_saved_plan_for_another_region_is_refused_when_the_region_is_given(
    workdir: Path,  # noqa: F811
) -> None:
    saved(workdir)
    result = cli_run("apply", "plan.json", "--region", "eu-west-1")
    assert result.exit_code == 4
    assert "the plan is for region us-east-1, this apply targets eu-west-1" in result.output


def test_a_user_who_left_the_group_makes_the_plan_stale(workdir: Path) -> None:  # noqa: F811
    (workdir / "config" / "groups.yaml").write_text(
        "proficiency_sets:\n  german: {Language: {German: 1}}\n"
        "groups:\n  - match: {hierarchy_group: Dublin}\n    sets: [german]\n"
    )
    plan = saved(workdir)
    assert {"ann", "jane"} <= set(plan["fingerprints"]["users"])
    snapshot = json.loads((workdir / "snapshot.json").read_text())
    (ann,) = [u for u in snapshot["Users"] if u["User"]["Username"] == "ann"]
    ann["User"]["HierarchyGroupId"] = "hg-emea"
    (workdir / "snapshot.json").write_text(json.dumps(snapshot))
    result = cli_run("apply", "plan.json")
    assert result.exit_code == 4
    assert "user ann: no longer managed by the manifests" in result.output


def test_an_unreadable_or_corrupt_plan_file(workdir: Path) -> None:  # noqa: F811
    missing = cli_run("apply", "nothing.json")
    assert missing.exit_code == 1 and "cannot read nothing.json" in missing.output
    (workdir / "plan.json").write_text("{not json")
    corrupt = cli_run("apply", "plan.json")
    assert corrupt.exit_code == 4 and "not a saved plan of this version" in corrupt.output


def test_a_saved_plan_applies_without_asking_and_says_how(workdir: Path) -> None:  # noqa: F811
    result = cli_run("plan", "--out", "plan.json", "--config", "config")
    assert (
        "apply it with: connect-reconciler apply plan.json --config config "
        "--target emulator:snapshot.json" in result.output
    )
    applied = cli_run("apply", "plan.json")  # no terminal, no --auto-approve: still applies
    assert applied.exit_code == 0, applied.output
    assert "Applied 4 change(s), 0 failed" in applied.output
    assert cli_run("plan", "--detailed-exitcode").exit_code == 0


def show(*args: str):
    """`show` as a user runs it: it takes no target (it never reads Connect)."""
    return CliRunner().invoke(cli, ["show", *args])


def test_show_renders_a_saved_plan_offline(workdir: Path) -> None:  # noqa: F811
    saved(workdir)
    (workdir / "snapshot.json").unlink()  # no Connect to read
    text = show("plan.json")
    assert text.exit_code == 0, text.output
    assert "~ user jane" in text.output and "Language/Spanish: 4 → 5" in text.output
    shown = json.loads(show("plan.json", "--format", "json").output)
    assert [c["kind"] for c in shown["changes"]] == [
        "create_attribute", "update_attribute", "user_proficiencies", "update_attribute",
    ]  # fmt: skip
    assert show("missing.json").exit_code == 1
    (workdir / "plan.json").write_text("[]")
    refused = show("plan.json")
    assert refused.exit_code == 1 and "not a saved plan" in refused.output
