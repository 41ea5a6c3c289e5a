"""settings.owner: apply tags the users it manages; a user another owner
tagged is a plan error naming it, unless --take-ownership."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import cli
from reconciler.connect.pacer import QuotaPacer
from reconciler.connect.reader import OWNER_TAG, LiveStateReader
from reconciler.manifest import load_manifest
from reconciler.plan.planner import make_plan
from tests.conftest import INSTANCE_ID, small_snapshot, write_config
from tests.test_apply import INSTANCE, SCENARIOS

OWNED = {"settings.yaml": "settings:\n  owner: team-a\n", **SCENARIOS["every change kind"]}


@pytest.fixture
def owned(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "snapshot.json").write_text(json.dumps(small_snapshot()))
    write_config(tmp_path / "config", {"instance.yaml": INSTANCE, **OWNED}, base=False)
    return tmp_path


def run(*args: str):
    return CliRunner().invoke(cli, [*args, "--target", "emulator:snapshot.json"])


def tags(workdir: Path) -> dict[str, dict[str, str] | None]:
    users = json.loads((workdir / "snapshot.json").read_text())["Users"]
    return {u["User"]["Username"]: u["User"].get("Tags") for u in users}


def tag(workdir: Path, username: str, owner: str) -> None:
    snapshot = json.loads((workdir / "snapshot.json").read_text())
    (user,) = [u for u in snapshot["Users"] if u["User"]["Username"] == username]
    user["User"]["Tags"] = {OWNER_TAG: owner}
    (workdir / "snapshot.json").write_text(json.dumps(snapshot))


def test_apply_tags_each_managed_user_once(owned: Path) -> None:
    plan = run("plan")
    assert (
        "+ tag user jane owner=team-a" in plan.output
        and "+ tag user joe owner=team-a" in plan.output
    )
    result = run("apply", "--auto-approve", "--journal", "journals")
    assert result.exit_code == 0, result.output
    assert "TagResource 2" in result.output
    assert tags(owned) == {"jane": {OWNER_TAG: "team-a"}, "joe": {OWNER_TAG: "team-a"}, "ann": None}
    (journal,) = (owned / "journals").glob("*.jsonl")
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    assert lines[0]["owner"] == "team-a"
    tag_calls = [r for r in lines if r["type"] == "call" and r["operation"] == "TagResource"]
    assert {r["request"]["resourceArn"].rsplit("/", 1)[1] for r in tag_calls} == {
        "id-jane",
        "id-joe",
    }
    assert all(r["request"]["tags"] == {OWNER_TAG: "team-a"} for r in tag_calls)
    again = run("apply", "--auto-approve")
    assert again.output.startswith("No changes."), again.output  # tagged once, not per apply


def test_a_user_owned_by_another_is_a_plan_error_naming_the_owner(owned: Path) -> None:
    tag(owned, "jane", "team-b")
    before = (owned / "snapshot.json").read_bytes()
    plan = run("plan")
    assert plan.exit_code == 1
    assert (
        "users owned by 'team-b' (tag connect-reconciler:owner), not 'team-a': jane" in plan.output
    )
    assert "--take-ownership" in plan.output
    refused = run("apply", "--auto-approve")
    assert refused.exit_code == 1 and "owned by 'team-b'" in refused.output
    assert (owned / "snapshot.json").read_bytes() == before
    taken = run("apply", "--auto-approve", "--take-ownership")
    assert taken.exit_code == 0, taken.output
    assert tags(owned)["jane"] == {OWNER_TAG: "team-a"}
    assert run("plan", "--detailed-exitcode").exit_code == 0


def test_without_an_owner_nothing_is_tagged(owned: Path) -> None:
    (owned / "config" / "settings.yaml").unlink()
    tag(owned, "jane", "team-b")
    assert run("apply", "--auto-approve").exit_code == 0
    assert tags(owned) == {"jane": {OWNER_TAG: "team-b"}, "joe": None, "ann": None}


def test_a_saved_plan_is_refused_when_another_owner_took_a_user_since(owned: Path) -> None:
    assert run("plan", "--out", "plan.json").exit_code == 0
    tag(owned, "joe", "team-b")  # joe's proficiencies are unchanged: only the owner moved
    result = run("apply", "plan.json")
    assert result.exit_code == 4
    assert "root['owner tag joe']['previous_owner']: plan has nothing" not in result.output
    assert (
        "root['owner tag joe']['previous_owner']: plan has null, recomputed \"team-b\""
        in result.output
    )
    assert run("apply", "plan.json", "--take-ownership").exit_code == 1  # a usage error


def test_owners_come_from_search_users_without_a_call_per_user(connect, tmp_path: Path) -> None:
    emulator, client = connect
    reader = LiveStateReader(QuotaPacer(client, time_scale=1000), INSTANCE_ID)

    def calls_of_a_plan(files: dict[str, str]) -> tuple[object, dict[str, int]]:
        before = {op: s["calls"] for op, s in emulator.stats.snapshot().items()}
        config = write_config(
            tmp_path / str(len(files)), {"instance.yaml": INSTANCE, **files}, base=False
        )
        plan = make_plan(load_manifest(config), reader)
        after = {op: s["calls"] for op, s in emulator.stats.snapshot().items()}
        return plan, {
            op: n - before.get(op, 0) for op, n in after.items() if n != before.get(op, 0)
        }

    _, without_owner = calls_of_a_plan(SCENARIOS["every change kind"])
    plan, with_owner = calls_of_a_plan(OWNED)
    assert [t.username for t in plan.owner_tags] == ["jane", "joe"]
    # one SearchUsers page instead of one ListUsers page; nothing per user
    assert without_owner["ListUsers"] == 1 and "ListUsers" not in with_owner
    assert with_owner["SearchUsers"] == without_owner.get("SearchUsers", 0) + 1
    assert with_owner["ListUserProficiencies"] == without_owner["ListUserProficiencies"]
    assert not {"DescribeUser", "ListTagsForResource"} & set(with_owner)


def test_a_take_over_is_named_in_the_markdown_a_reviewer_reads(owned: Path) -> None:
    assert run("apply", "--auto-approve").exit_code == 0  # managed and tagged: no changes left
    tag(owned, "jane", "team-b")
    markdown = run("plan", "--take-ownership", "--format", "markdown").output
    assert "No changes" not in markdown
    assert "| jane | team-a | team-b |" in markdown


def test_two_repositories_racing_never_both_write_an_agent_nor_lose_a_value(
    tmp_path: Path,
) -> None:
    """Two applies at once against one served emulator whose writes show up
    to 0.5 s late (bench/chaos.py's rounds, once each)."""
    from bench.chaos import QUOTA_SCALE, owners_round, snapshot, values_round
    from bench.served import control, served_emulator

    names = [f"u{n}" for n in range(6)]
    initial = snapshot(len(names), lag=0.5)
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(initial))
    with served_emulator(seed, quota_scale=QUOTA_SCALE) as url:
        (tmp_path / "owners").mkdir()
        lost, double = owners_round(url, tmp_path / "owners", names)
        assert (lost, double) == (0, 0)
        owners = {
            u["User"].get("Tags", {}).get(OWNER_TAG) for u in control(url, "snapshot")["Users"]
        }
        assert owners <= {"team-a", "team-b"}
        control(url, "snapshot", "PUT", initial)
        (tmp_path / "values").mkdir()
        assert values_round(url, tmp_path / "values", names) == 0
