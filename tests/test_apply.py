"""Apply: reaches the desired state, under faults, after crashes; refuses
stale plans, guarded plans and unconfirmed applies; reports partial failure."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from reconciler.apply import (
    NOT_STARTED_DENIED,
    NOT_STARTED_FAILING,
    PROPAGATION_MAX_DELAY,
    Applier,
    Journal,
)
from reconciler.cli import cli
from reconciler.connect.client import connect_client
from reconciler.connect.pacer import QuotaPacer
from reconciler.connect.reader import LiveStateReader
from reconciler.emulator import ConnectEmulator, FaultPlan, backend_from_snapshot
from reconciler.emulator.lock import SnapshotLock
from reconciler.manifest import load_manifest
from reconciler.plan.narrowing import Narrowing
from reconciler.plan.planner import desired_state, make_plan, read_scope
from reconciler.service.model import is_read
from tests.conftest import (
    INSTANCE_ID,
    ROOT,
    ManualClock,
    interruptible,
    small_snapshot,
    unprivileged,
    write_config,
)

INSTANCE = f"instance:\n  id: {INSTANCE_ID}\n  region: us-east-1\n"
ATTRIBUTES = "predefined_attributes:\n  Language: {values: [English, Spanish, French]}\n  Skill: {values: [Billing, Payments]}\n"

SCENARIOS = {
    "every change kind": {
        "attributes.yaml": "predefined_attributes:\n  Language: {values: [English, Spanish, German]}\n"
                           "  Skill: {values: [Billing, Payments]}\n  Tier: {values: [Gold]}\n",
        "users.yaml": "users:\n  jane: {proficiencies: {Language: {Spanish: 5, German: 2}, Tier: {Gold: 1}}}\n"
                      "  joe: {proficiencies: {Language: {English: 5}}}\n",
    },
    "prune with only managed holders": {
        "attributes.yaml": "predefined_attributes:\n  Language: {values: [English, Spanish, French]}\n",
        "settings.yaml": "settings:\n  prune_attributes: true\n  max_change_percent: 100\n",
        "users.yaml": "users:\n  jane: {proficiencies: {Language: {Spanish: 4}}}\n",
    },
    "groups": {
        "attributes.yaml": ATTRIBUTES,
        "sets.yaml": "proficiency_sets:\n  french: {Language: {French: 2}}\n",
        "groups.yaml": "groups:\n  - match: {hierarchy_group: Dublin}\n    sets: [french]\n",
    },
    "users all": {
        "attributes.yaml": ATTRIBUTES,
        "settings.yaml": "settings:\n  users: all\n  max_change_percent: 100\n",
        "users.yaml": "users:\n  ann: {proficiencies: {Skill: {Payments: 1}}}\n",
    },
    "user at the cap": {
        "attributes.yaml": "predefined_attributes:\n  Language: {values: [English, Spanish, French]}\n  Skill: {values: [Billing, Payments]}\n",
        "settings.yaml": "settings:\n  max_proficiencies_per_user: 2\n",
        "users.yaml": "users:\n  jane: {proficiencies: {Language: {French: 1}, Skill: {Payments: 2}}}\n",
    },
}  # fmt: skip


# One validator for every line: jsonschema.validate() would check the schema
# and build a validator per call (most of a journal test's time).
JOURNAL = jsonschema.Draft202012Validator(
    json.loads((ROOT / "docs" / "journal.schema.json").read_text())
)


def journal_lines(path: Path, *, ended: bool = True) -> list[dict]:
    """Every line of a journal, each checked against docs/journal.schema.json:
    a header first and, if `ended`, an end line last (else none at all)."""
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for record in records:
        JOURNAL.validate(record)
    assert records[0]["type"] == "header"
    assert [r["type"] for r in records].count("end") == (1 if ended else 0)
    if ended:
        assert records[-1]["type"] == "end"
    return records


@pytest.fixture
def rig(connect, tmp_path: Path):
    """Plan and apply manifests against the emulator, in process."""
    emulator, client = connect
    pacer = QuotaPacer(client, time_scale=1000, max_attempts=12, seed=3)
    reader = LiveStateReader(pacer, INSTANCE_ID)

    class Rig:
        def manifest(self, files: dict[str, str]):
            config = write_config(
                tmp_path / "config", {"instance.yaml": INSTANCE, **files}, base=False
            )
            return load_manifest(config)

        def apply(self, manifest, faults: FaultPlan | None = None, meanwhile=lambda: None):
            """Plan, let `meanwhile` happen (another writer), then apply."""
            emulator.set_faults(FaultPlan())
            plan = make_plan(manifest, reader)
            assert plan.errors == []
            meanwhile()
            emulator.set_faults(faults or FaultPlan())
            journal_file = Journal(tmp_path / "journal.jsonl")
            journal_file.header(
                plan, instance=INSTANCE_ID, region="us-east-1", target="test", owner=None
            )
            try:
                return plan, Applier(pacer, reader, INSTANCE_ID, journal_file, parallelism=6).apply(
                    plan
                )
            finally:
                journal_file.close()

        def backend_proficiencies(self) -> dict[str, dict]:
            backend = emulator.backend
            return {
                u["User"]["Username"]: {
                    (p["AttributeName"], p["AttributeValue"]): p["Level"]
                    for p in u["Proficiencies"]
                }
                for u in backend.users.values()
            }

        def assert_converged(self, manifest) -> None:
            emulator.set_faults(FaultPlan())
            live = reader.read(read_scope(manifest, Narrowing()))
            desired, _ = desired_state(manifest, live, Narrowing())
            held = self.backend_proficiencies()
            for username, user in desired.users.items():
                assert held[username] == user.proficiencies, username
            attributes = {
                a["Name"]: set(a["Values"]["StringList"])
                for a in emulator.backend.attributes.values()
            }
            for name, attribute in desired.attributes.items():
                assert attributes[name] == set(attribute.values)
            assert make_plan(manifest, reader).changes == []

    r = Rig()
    r.emulator, r.pacer = emulator, pacer
    return r


@pytest.mark.parametrize("files", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_apply_reaches_the_desired_state(rig, files) -> None:
    manifest = rig.manifest(files)
    plan, result = rig.apply(manifest)
    assert plan.changes and result.ok and len(result.applied) == len(plan.changes)
    rig.assert_converged(manifest)


def test_one_call_per_non_empty_list_and_a_journal_line_per_call(rig, tmp_path: Path) -> None:
    manifest = rig.manifest(SCENARIOS["every change kind"])
    plan, result = rig.apply(manifest)
    lists = sum(len(c.steps) for c in plan.user_changes)
    writes = {
        op: n for op, n in result.calls.items() if not op.startswith(("List", "Search", "Describe"))
    }
    assert sum(writes.values()) == lists + len(plan.attribute_changes)
    records = journal_lines(tmp_path / "journal.jsonl")
    calls = [r for r in records if r["type"] == "call"]
    assert sorted(r["operation"] for r in calls) == sorted(
        op for op, n in writes.items() for _ in range(n)
    )
    applied = {r["change"] for r in records if r["type"] == "change" and r["result"] == "applied"}
    assert applied == set(result.applied)
    # the values sent, not a count: jane's associations as the API received them
    (associate,) = [r for r in calls if r["operation"] == "AssociateUserProficiencies"]
    assert associate["request"] == {"UserId": "id-jane", "UserProficiencies": [
        {"AttributeName": "Language", "AttributeValue": "German", "Level": 2.0},
        {"AttributeName": "Tier", "AttributeValue": "Gold", "Level": 1.0}]}  # fmt: skip
    assert records[-1]["status"] == "completed"


def many_users_snapshot(users: int = 150) -> dict:
    snapshot = small_snapshot()
    snapshot["PredefinedAttributes"][0]["Values"]["StringList"] += ["German", "Dutch"]
    rng = random.Random(5)
    values = ["English", "Spanish", "French", "German", "Dutch"]
    for i in range(users):
        held = rng.sample(values, 3)
        snapshot["Users"].append({
            "User": {"Id": f"id-a{i:03d}", "Username": f"a{i:03d}"},
            "Proficiencies": [{"AttributeName": "Language", "AttributeValue": v, "Level": float(rng.randint(1, 5))} for v in held],
        })  # fmt: skip
    return snapshot


def many_users_manifest(users: int = 150) -> dict[str, str]:
    rng = random.Random(6)
    lines = ["users:"]
    for i in range(users):
        wanted = rng.sample(["English", "Spanish", "French", "German"], 2)
        lines.append(
            f"  a{i:03d}: {{proficiencies: {{Language: {{{wanted[0]}: {rng.randint(1, 5)}, {wanted[1]}: 3}}, Skill: {{Payments: 2}}}}}}"
        )
    return {
        "attributes.yaml": "predefined_attributes:\n  Language: {values: [English, Spanish, French, German]}\n  Skill: {values: [Billing, Payments, Retention]}\n",
        "settings.yaml": "settings:\n  max_change_percent: 100\n",
        "users.yaml": "\n".join(lines) + "\n",
    }


def test_apply_under_faults_converges_and_journals_every_change(rig, tmp_path: Path) -> None:
    rig.emulator.reset(backend_from_snapshot(many_users_snapshot()))
    manifest = rig.manifest(many_users_manifest())
    faults = FaultPlan(throttle=0.2, error=0.05, drop_before=0.01, drop_after=0.01, seed=11)
    plan, result = rig.apply(manifest, faults)
    assert len(plan.changes) > 150
    assert result.ok, result.failed
    stats = rig.emulator.stats.snapshot()
    assert sum(s.get("throttled", 0) for s in stats.values()) > 0
    assert sum(s.get("dropped", 0) for s in stats.values()) > 0
    records = journal_lines(tmp_path / "journal.jsonl")
    applied = {r["change"] for r in records if r["type"] == "change" and r["result"] == "applied"}
    assert applied == set(result.applied)
    assert len(result.applied) == len(plan.changes)
    retries = [r for r in records if r["type"] == "retry"]
    write_retries = {op: n for op, n in rig.pacer.retries.items() if not is_read(op)}
    assert len(retries) == sum(write_retries.values()) > 0
    assert any("ThrottlingException" in r["error"] for r in retries)
    assert any("InternalServiceException" in r["error"] for r in retries)
    rig.assert_converged(manifest)


def test_a_write_applied_but_unanswered_is_not_sent_again(rig) -> None:
    manifest = rig.manifest(SCENARIOS["every change kind"])
    plan, result = rig.apply(manifest, FaultPlan(drop_after=1.0))
    assert result.ok
    write_operations = {
        "AssociateUserProficiencies", "UpdateUserProficiencies", "DisassociateUserProficiencies",
        "CreatePredefinedAttribute", "UpdatePredefinedAttribute", "DeletePredefinedAttribute",
    }  # fmt: skip
    stats = rig.emulator.stats.snapshot()
    writes = sum(counts["calls"] for op, counts in stats.items() if op in write_operations)
    # every write was applied but unanswered, and the re-read stopped a second send
    assert writes == sum(len(c.steps) for c in plan.user_changes) + len(plan.attribute_changes)
    assert sum(counts.get("dropped", 0) for counts in stats.values()) == writes
    rig.assert_converged(manifest)


def test_a_write_that_never_arrives_fails_after_bounded_retries(rig) -> None:
    manifest = rig.manifest(SCENARIOS["every change kind"])
    _, result = rig.apply(manifest, FaultPlan(drop_before=1.0))
    assert result.failed and not result.applied
    assert result.skipped  # later phases wait for the first to succeed


def test_a_value_another_writer_added_since_the_plan_is_kept(rig, connect, tmp_path: Path) -> None:
    _, client = connect
    manifest = rig.manifest(SCENARIOS["every change kind"])  # Language: + German, - French

    def another_writer() -> None:
        client.update_predefined_attribute(
            InstanceId=INSTANCE_ID,
            Name="Language",
            Values={"StringList": ["English", "Spanish", "French", "Dutch"]},
        )

    _, result = rig.apply(manifest, meanwhile=another_writer)
    assert result.ok, result.failed
    language = client.describe_predefined_attribute(InstanceId=INSTANCE_ID, Name="Language")
    assert language["PredefinedAttribute"]["Values"]["StringList"] == [
        "English", "Spanish", "Dutch", "German",
    ]  # fmt: skip
    kept = [r for r in journal_lines(tmp_path / "journal.jsonl") if r["type"] == "kept_values"]
    assert kept and all(r["values"] == ["Dutch"] for r in kept)


RETENTION = {
    "attributes.yaml": "predefined_attributes:\n  Skill: {values: [Billing, Payments, Retention]}\n",
    "users.yaml": "users:\n  jane: {proficiencies: {Skill: {Retention: 2}}}\n",
}


@pytest.fixture
def once_on(connect):
    """once_on(event, rival): run `rival` (another writer) once, on the first
    botocore `event` of the shared client (`before-call.connect.X`: just
    before the first X call is sent); the events seen, so a test knows it
    ran. The handlers go with the test."""
    _, client = connect
    registered = []

    def register(event: str, rival) -> list[str]:
        seen: list[str] = []

        def on_event(**_: object) -> None:
            if not seen:
                seen.append(event)
                rival()

        client.meta.events.register(event, on_event)
        registered.append((event, on_event))
        return seen

    yield register
    for event, handler in registered:
        client.meta.events.unregister(event, handler)


def add_escalations_from_a_stale_read(client) -> None:
    """Another writer's whole Skill list, from a read that missed Retention."""
    client.update_predefined_attribute(
        InstanceId=INSTANCE_ID,
        Name="Skill",
        Values={"StringList": ["Billing", "Payments", "Escalations"]},
    )


def skill_values(client) -> set[str]:
    skill = client.describe_predefined_attribute(InstanceId=INSTANCE_ID, Name="Skill")
    return set(skill["PredefinedAttribute"]["Values"]["StringList"])


def test_a_value_list_refused_for_dropping_a_value_added_meanwhile_is_merged_again(
    rig, connect, once_on, tmp_path: Path
) -> None:
    """The rival adds Escalations and gives it to ann between our read and our
    write: the service refuses a list that drops a held value, and the apply
    re-reads, merges and sends again instead of failing."""
    _, client = connect

    def rival() -> None:
        add_escalations_from_a_stale_read(client)
        client.associate_user_proficiencies(
            InstanceId=INSTANCE_ID,
            UserId="id-ann",
            UserProficiencies=[
                {"AttributeName": "Skill", "AttributeValue": "Escalations", "Level": 1.0}
            ],
        )

    seen = once_on("before-call.connect.UpdatePredefinedAttribute", rival)
    _, result = rig.apply(rig.manifest(RETENTION))
    assert seen and result.ok, result.failed
    assert skill_values(client) == {"Billing", "Payments", "Retention", "Escalations"}
    retries = [r for r in journal_lines(tmp_path / "journal.jsonl") if r["type"] == "retry"]
    assert [r["operation"] for r in retries] == ["UpdatePredefinedAttribute"]
    assert "still held" in retries[0]["error"]


def test_a_value_list_replaced_after_its_read_back_is_repaired_at_the_end(
    rig, connect, once_on, tmp_path: Path
) -> None:
    """Where the service lets a list drop a held value, a rival's stale list
    landing after an agent got our value leaves it held but gone: the
    end-of-apply read-back puts it back."""
    emulator, client = connect
    emulator.reset(backend_from_snapshot({**small_snapshot(),
                                          "Behaviour": {"remove-held-value": "allowed"}}))  # fmt: skip

    seen = once_on(
        "after-call.connect.AssociateUserProficiencies",
        lambda: add_escalations_from_a_stale_read(client),
    )
    _, result = rig.apply(rig.manifest(RETENTION))
    assert seen and result.ok, result.failed
    assert skill_values(client) == {"Billing", "Payments", "Retention", "Escalations"}
    retries = [r for r in journal_lines(tmp_path / "journal.jsonl") if r["type"] == "retry"]
    assert [r["error"] for r in retries] == ["the value list does not show ours"]


def test_a_create_that_meets_the_same_attribute_created_meanwhile_continues(rig, connect) -> None:
    _, client = connect
    manifest = rig.manifest(SCENARIOS["every change kind"])  # creates Tier: [Gold]

    def another_apply() -> None:
        client.create_predefined_attribute(
            InstanceId=INSTANCE_ID, Name="Tier", Values={"StringList": ["Gold"]}
        )

    _, result = rig.apply(manifest, meanwhile=another_apply)
    assert result.ok, result.failed
    rig.assert_converged(manifest)


def test_partial_failure_then_rerun_converges(rig) -> None:
    manifest = rig.manifest(SCENARIOS["every change kind"])
    _, result = rig.apply(manifest, FaultPlan(reject_users=("id-jane",)))
    assert list(result.failed) == ["user_proficiencies jane"]
    denied = result.failed["user_proficiencies jane"]
    assert "connect:AssociateUserProficiencies" in denied and "apply-policy.json" in denied
    assert result.stopped == NOT_STARTED_DENIED
    assert "update_attribute Language" in result.skipped  # French goes after every user
    assert "create_attribute Tier" in result.applied
    _, again = rig.apply(manifest)
    assert again.ok
    rig.assert_converged(manifest)


def test_access_denied_on_a_write_stops_the_apply_at_once(rig, tmp_path: Path) -> None:
    rig.emulator.reset(backend_from_snapshot(many_users_snapshot(60)))
    files = many_users_manifest(60)
    files["attributes.yaml"] = (
        "predefined_attributes:\n  Language: {values: [English, Spanish, French, German, Dutch]}\n  Skill: {values: [Billing, Payments]}\n"
    )
    manifest = rig.manifest(files)
    denied = (
        "AssociateUserProficiencies",
        "UpdateUserProficiencies",
        "DisassociateUserProficiencies",
    )
    plan, result = rig.apply(manifest, FaultPlan(deny_operations=denied))
    assert len(plan.changes) == 60 and not result.applied
    assert result.stopped == NOT_STARTED_DENIED
    # only the changes already in flight (parallelism 6) were tried, each once, never retried
    writes = sum(rig.emulator.stats.calls(op) for op in denied)
    assert 1 <= len(result.failed) == writes <= 6
    assert len(result.skipped) == 60 - len(result.failed)
    records = journal_lines(tmp_path / "journal.jsonl")
    assert records[-1]["reason"] == NOT_STARTED_DENIED
    assert not any(r["type"] == "retry" for r in records)


def test_an_outage_stops_new_writes_once_the_retry_budget_is_spent(rig, tmp_path: Path) -> None:
    rig.emulator.reset(backend_from_snapshot(many_users_snapshot(60)))
    files = many_users_manifest(60)  # only user changes: the attributes are as live
    files["attributes.yaml"] = (
        "predefined_attributes:\n  Language: {values: [English, Spanish, French, German, Dutch]}\n  Skill: {values: [Billing, Payments]}\n"
    )
    manifest = rig.manifest(files)
    plan, result = rig.apply(manifest, FaultPlan(error=1.0))
    assert len(plan.changes) == 60 and not result.applied
    assert result.stopped == NOT_STARTED_FAILING
    assert len(result.failed) + len(result.skipped) == 60 and len(result.skipped) > 40
    writes = sum(
        rig.emulator.stats.calls(op)
        for op in (
            "AssociateUserProficiencies",
            "UpdateUserProficiencies",
            "DisassociateUserProficiencies",
        )
    )
    # one first attempt per started change plus 500 / 5 retries; 12 attempts each would be 720
    assert writes == len(result.failed) + 100
    records = journal_lines(tmp_path / "journal.jsonl")
    assert records[-1]["status"] == "partial" and records[-1]["not_started"] == result.skipped
    assert records[-1]["reason"] == NOT_STARTED_FAILING
    assert sum(r["type"] == "retry" for r in records) == 100


def test_dropped_connections_spend_the_retry_budget_too(rig) -> None:
    rig.emulator.reset(backend_from_snapshot(many_users_snapshot(60)))
    files = many_users_manifest(60)
    files["attributes.yaml"] = (
        "predefined_attributes:\n  Language: {values: [English, Spanish, French, German, Dutch]}\n  Skill: {values: [Billing, Payments]}\n"
    )
    _, result = rig.apply(rig.manifest(files), FaultPlan(drop_before=1.0))
    # every write is ambiguous, re-read and re-sent: each re-send is a retry
    assert result.stopped == NOT_STARTED_FAILING and len(result.skipped) > 20
    assert rig.pacer.budget.available < 10


# -- the CLI --------------------------------------------------------------------


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "snapshot.json").write_text(json.dumps(small_snapshot()))
    write_config(
        tmp_path / "config",
        {"instance.yaml": INSTANCE, **SCENARIOS["every change kind"]},
        base=False,
    )
    return tmp_path


def cli_run(*args: str):
    return CliRunner().invoke(cli, [*args, "--target", "emulator:snapshot.json"])


def test_apply_without_a_terminal_refuses_and_changes_nothing(workdir: Path) -> None:
    before = (workdir / "snapshot.json").read_text()
    result = cli_run("apply")
    assert result.exit_code == 1
    assert "no terminal to confirm on" in result.output
    assert (workdir / "snapshot.json").read_text() == before


def test_auto_approve_applies_writes_the_snapshot_and_journal(workdir: Path) -> None:
    result = cli_run("apply", "--auto-approve", "--journal", "journals")
    assert result.exit_code == 0, result.output
    assert "Applied 4 change(s), 0 failed, 0 not started" in result.output
    assert len(list((workdir / "journals").glob("journal-*.jsonl"))) == 1
    assert cli_run("plan", "--detailed-exitcode").exit_code == 0
    assert cli_run("apply", "--auto-approve").output.startswith("No changes.")


def test_default_journal_location(workdir: Path) -> None:
    assert cli_run("apply", "--auto-approve").exit_code == 0
    assert len(list((workdir / ".connect-reconciler").glob("journal-*.jsonl"))) == 1


def test_guard_refuses_without_force(workdir: Path) -> None:
    (workdir / "config" / "settings.yaml").write_text(
        "settings:\n  max_change_percent: 10\n  min_existing_objects: 1\n"
    )
    refused = cli_run("apply", "--auto-approve")
    assert refused.exit_code == 3 and "pass --force" in refused.output
    assert cli_run("plan", "--detailed-exitcode").exit_code == 3
    assert cli_run("apply", "--auto-approve", "--force").exit_code == 0


def test_saved_plan_applies_exactly(workdir: Path) -> None:
    assert cli_run("plan", "--out", "plan.json").exit_code == 0
    result = cli_run("apply", "plan.json", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert cli_run("plan", "--detailed-exitcode").exit_code == 0


def edit_snapshot(workdir: Path, username: str, value: str, level: float) -> None:
    snapshot = json.loads((workdir / "snapshot.json").read_text())
    (user,) = [u for u in snapshot["Users"] if u["User"]["Username"] == username]
    user["Proficiencies"].append(
        {"AttributeName": "Language", "AttributeValue": value, "Level": level}
    )
    (workdir / "snapshot.json").write_text(json.dumps(snapshot))


def test_stale_saved_plan_is_refused_naming_the_object(workdir: Path) -> None:
    assert cli_run("plan", "--out", "plan.json").exit_code == 0
    edit_snapshot(workdir, "jane", "English", 1.0)  # jane is in the plan
    result = cli_run("apply", "plan.json", "--auto-approve")
    assert result.exit_code == 4
    assert "user jane: proficiencies changed since the plan was made" in result.output


def test_unrelated_live_change_does_not_block_a_saved_plan(workdir: Path) -> None:
    assert cli_run("plan", "--out", "plan.json").exit_code == 0
    edit_snapshot(workdir, "ann", "English", 1.0)  # ann is not managed
    assert cli_run("apply", "plan.json", "--auto-approve").exit_code == 0


def test_saved_plan_with_changed_manifests_or_instance_is_refused(workdir: Path) -> None:
    assert cli_run("plan", "--out", "plan.json").exit_code == 0
    (workdir / "config" / "extra.yaml").write_text("users:\n  ann: {}\n")
    result = cli_run("apply", "plan.json", "--auto-approve")
    assert result.exit_code == 4 and "manifests changed" in result.output
    (workdir / "config" / "extra.yaml").unlink()
    plan = json.loads((workdir / "plan.json").read_text())
    plan["instance"]["id"] = "another"
    (workdir / "plan.json").write_text(json.dumps(plan))
    result = cli_run("apply", "plan.json", "--auto-approve")
    assert result.exit_code == 4 and "the plan is for instance another" in result.output


def test_access_denied_apply_exits_5_naming_the_action_not_asking_to_rerun(
    workdir: Path, monkeypatch
) -> None:
    original = ConnectEmulator.__init__

    def rejecting(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.set_faults(FaultPlan(reject_users=("id-jane",)))

    monkeypatch.setattr(ConnectEmulator, "__init__", rejecting)
    result = cli_run("apply", "--auto-approve")
    assert result.exit_code == 5
    assert (
        "failed: user_proficiencies jane: access denied to connect:AssociateUserProficiencies"
        in result.output
    )
    assert "docs/iam/apply-policy.json" in result.output
    assert "Run apply again to finish" not in result.output and NOT_STARTED_DENIED in result.output


# -- crash: SIGKILL at random moments, then re-run ------------------------------


def slow_writes_config(tmp_path: Path, users: int) -> Path:
    """Manifests for `users` users with reads fast and writes at 40/s per API,
    so the writes span a few seconds: where kills and Ctrl-C land."""
    read_fast = ("ListUserProficiencies", "ListUsers", "SearchPredefinedAttributes", "SearchUsers")
    quotas = "".join(f"    {op}: {{rate: 400, burst: 20}}\n" for op in read_fast)
    quotas += "".join(f"    {op}: {{rate: 40, burst: 5}}\n" for op in WRITES)
    files = many_users_manifest(users)
    files["settings.yaml"] = "settings:\n  max_change_percent: 100\n  quotas:\n" + quotas
    return write_config(tmp_path / "config", {"instance.yaml": INSTANCE, **files}, base=False)


WRITES = ("AssociateUserProficiencies", "UpdateUserProficiencies", "DisassociateUserProficiencies",
          "CreatePredefinedAttribute", "UpdatePredefinedAttribute")  # fmt: skip


def complete_lines(path: Path) -> list[dict]:
    """A journal of an apply that may have been killed: every complete line,
    each valid; a header first (if anything was written), an end line only
    last (an apply may finish before its kill lands)."""
    text = path.read_text()
    records = [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]
    for record in records:
        JOURNAL.validate(record)
    assert not records or records[0]["type"] == "header"
    assert all(r["type"] != "end" for r in records[:-1])
    return records


def test_apply_killed_at_random_points_of_its_journal_converges_on_rerun(tmp_path: Path) -> None:
    users = 60
    config = slow_writes_config(tmp_path, users)
    env = {**subprocess_env(), "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}
    rng = random.Random(2024)
    with ConnectEmulator(backend_from_snapshot(many_users_snapshot(users))) as emulator:
        command = [sys.executable, "-m", "reconciler", "apply", "--auto-approve", "--config", str(config),
                   "--endpoint-url", emulator.url]  # fmt: skip
        written_after_kills = []
        journals = tmp_path / ".connect-reconciler"
        seen: set[Path] = set()
        for calls in (rng.randint(3, 20) for _ in range(3)):
            process = subprocess.Popen(
                command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            # Killed once it has journaled `calls` writes: mid-work however loaded the machine is.
            wait_for_calls(journals, process, at_least=calls, new_since=seen)
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            seen = set(journals.glob("*.jsonl"))
            written_after_kills.append(sum(emulator.stats.calls(op) for op in WRITES))
        killed_journals = {
            p: complete_lines(p) for p in (tmp_path / ".connect-reconciler").glob("*.jsonl")
        }
        finished = subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert finished.returncode == 0, finished.stderr
        written = sum(emulator.stats.calls(op) for op in WRITES)
        # at least one kill interrupted real work: some writes had landed, some had not
        assert any(0 < w < written for w in written_after_kills), (written_after_kills, written)
        # every call a killed apply journaled as ok is a write the emulator received
        journaled = sum(r["type"] == "call" for lines in killed_journals.values() for r in lines)
        assert 0 < journaled <= written_after_kills[-1]
        assert any(lines and lines[-1]["type"] != "end" for lines in killed_journals.values())
        final = set((tmp_path / ".connect-reconciler").glob("*.jsonl")) - set(killed_journals)
        assert [journal_lines(j)[-1]["status"] for j in final] == (
            [] if finished.stdout.startswith("No changes.") else ["completed"]
        )
        replan = subprocess.run([*command[:3], "plan", "--detailed-exitcode", *command[5:]], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=300)  # fmt: skip
        assert replan.returncode == 0, replan.stdout + replan.stderr


def test_ctrl_c_finishes_the_calls_in_flight_journals_interrupted_and_exits_130(
    tmp_path: Path,
) -> None:
    config = slow_writes_config(tmp_path, 60)
    env = {**subprocess_env(), "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}
    with ConnectEmulator(backend_from_snapshot(many_users_snapshot(60))) as emulator:
        process = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "apply", "--auto-approve", "--config", str(config),
             "--endpoint-url", emulator.url, "--journal", "journals"],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=interruptible,
        )  # fmt: skip
        try:
            journal = wait_for_calls(tmp_path / "journals", process)
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=60)
        finally:
            process.kill()
            process.wait()
        assert process.returncode == 130, out + err
        assert "Interrupted: changes in flight finished" in err
        records = journal_lines(journal)
        end = records[-1]
        assert end["status"] == "interrupted" and end["reason"] == "not started: interrupted"
        assert end["not_started"] and end["applied"] > 0
        # every write the emulator received was journaled: none was abandoned mid-flight
        calls = sum(r["type"] == "call" for r in records)
        assert calls == sum(emulator.stats.calls(op) for op in WRITES)


def wait_for_calls(
    directory: Path,
    process: subprocess.Popen,
    at_least: int = 1,
    new_since: set[Path] | None = None,
) -> Path:
    """The journal of a running apply (one not in `new_since`), once it has
    journaled `at_least` calls."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        for journal in set(directory.glob("*.jsonl")) - (new_since or set()):
            if journal.read_text().count('"type": "call"') >= at_least:
                return journal
        time.sleep(0.05)
    raise AssertionError(f"{at_least} call(s) not journaled (exit {process.poll()})")


# -- a search index that trails writes --------------------------------------------


@pytest.fixture
def lagging(tmp_path: Path, monkeypatch):
    """A served emulator whose search index trails writes by 60 s of an
    injected clock, manifests for jane, and a console client; yields
    (emulator, console, clock, CLI target args)."""
    monkeypatch.chdir(tmp_path)
    for key, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
                       "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    fast = "".join(
        f"    {op}: {{rate: 1000, burst: 50}}\n"
        for op in (
            "SearchUsers",
            "ListUsers",
            "ListUserProficiencies",
            "SearchPredefinedAttributes",
        )
    )
    write_config(tmp_path / "config", {
        "instance.yaml": INSTANCE, "attributes.yaml": ATTRIBUTES,
        "settings.yaml": "settings:\n  max_change_percent: 100\n  quotas:\n" + fast,
        "users.yaml": "users:\n  jane: {proficiencies: {Language: {Spanish: 5}, Skill: {Billing: 3}}}\n",
    }, base=False)  # fmt: skip
    now = [1000.0]
    backend = backend_from_snapshot(small_snapshot(), clock=lambda: now[0], search_index_delay=60.0)
    with ConnectEmulator(backend) as emulator:
        console = connect_client(endpoint_url=emulator.url, emulator=True)
        yield emulator, console, now, ["--endpoint-url", emulator.url, "--read", "search"]


def lower_janes_spanish(console) -> None:
    """What an admin does in the console: the search index will lag it."""
    lowered = [{"AttributeName": "Language", "AttributeValue": "Spanish", "Level": 2}]
    console.update_user_proficiencies(
        InstanceId=INSTANCE_ID, UserId="id-jane", UserProficiencies=lowered
    )


def test_a_lagging_search_is_caught_before_any_write(lagging) -> None:
    """The console lowers jane's Spanish to 2; the search index still says 4.
    The search read checks jane (the one holder of Spanish) by list: --read
    search refuses naming her, auto reads by list and applies 2 -> 5."""
    emulator, console, _now, args = lagging
    lower_janes_spanish(console)
    result = CliRunner().invoke(cli, ["apply", "--auto-approve", *args])
    assert result.exit_code == 1, result.output
    assert "jane: Language/Spanish listed at 2, searched at 4" in result.output
    assert emulator.stats.calls("UpdateUserProficiencies") == 1  # the console's alone
    auto = [*args[:2], "--read", "auto"]
    result = CliRunner().invoke(cli, ["plan", "--format", "json", *auto])
    assert json.loads(result.output)["read"]["strategy"] == "list"  # cheaper here
    result = CliRunner().invoke(cli, ["apply", "--auto-approve", *auto])
    assert result.exit_code == 0, result.output
    held = console.list_user_proficiencies(InstanceId=INSTANCE_ID, UserId="id-jane")
    levels = {p["AttributeValue"]: p["Level"] for p in held["UserProficiencyList"]}
    assert levels == {"Spanish": 5.0, "Billing": 3.0}


def test_a_misread_the_sample_misses_is_refused_by_the_re_read(lagging, monkeypatch) -> None:
    """The second line of defence: were the check's sample to miss jane,
    apply re-reads every user a search-read plan touches and refuses (exit 4)."""
    from reconciler.connect import reader

    monkeypatch.setattr(reader, "CHECKED_USERS", 0)
    monkeypatch.setattr(reader.SearchCheck, "holder", lambda self, holders: None)
    emulator, console, now, args = lagging
    lower_janes_spanish(console)
    result = CliRunner().invoke(cli, ["apply", "--auto-approve", *args])
    assert result.exit_code == 4, result.output
    assert "user jane: proficiencies changed since the plan was made" in result.output
    assert emulator.stats.calls("UpdateUserProficiencies") == 1
    now[0] += 60.0  # once the index has caught up, the same apply goes through
    result = CliRunner().invoke(cli, ["apply", "--auto-approve", *args])
    assert result.exit_code == 0, result.output


def test_a_plan_searched_for_one_attribute_saves_and_applies(lagging) -> None:
    emulator, _, _, args = lagging
    plan = CliRunner().invoke(cli, ["plan", "--attribute", "Language", "--out", "p.json", *args])
    assert plan.exit_code == 0, plan.output
    assert "proficiencies read by SearchUsers" in plan.output
    endpoint = args[:2]  # a saved plan keeps the read it was made with: no --read
    result = CliRunner().invoke(cli, ["apply", "p.json", *endpoint])
    assert result.exit_code == 0, result.output
    assert emulator.stats.calls("UpdateUserProficiencies") == 1


def test_a_lagging_search_for_one_attribute_is_a_plan_error(lagging) -> None:
    _, console, _, args = lagging
    lower_janes_spanish(console)
    result = CliRunner().invoke(cli, ["plan", "--attribute", "Language", *args])
    assert result.exit_code == 1, result.output
    assert "SearchUsers and ListUserProficiencies disagree for 1 of" in result.output
    assert "jane: Language/Spanish listed at 2, searched at 4" in result.output


SKILLS = [f"S{n}" for n in range(12)]
TWELVE_SKILLS = f"predefined_attributes:\n  Skill: {{values: [{', '.join(SKILLS)}]}}\n"
TWELVE_FOR_JANE = (
    "users:\n  jane: {proficiencies: {Skill: {" + ", ".join(f"{s}: 1" for s in SKILLS) + "}}}\n"
)


def twelve_proficiencies(workdir: Path, settings: str) -> None:
    (workdir / "config" / "attributes.yaml").write_text(TWELVE_SKILLS)
    (workdir / "config" / "users.yaml").write_text(TWELVE_FOR_JANE)
    (workdir / "config" / "settings.yaml").write_text(settings)


def test_a_raised_proficiency_cap_is_the_emulated_accounts(workdir: Path) -> None:
    # The cap raised to 12 in settings: the plan and the emulated account agree,
    # so apply succeeds (it used to plan green, then exit 5 on the emulator's 10).
    twelve_proficiencies(
        workdir, "settings:\n  max_proficiencies_per_user: 12\n  max_change_percent: 100\n"
    )
    result = cli_run("apply", "--auto-approve")
    assert result.exit_code == 0, result.output
    written = json.loads((workdir / "snapshot.json").read_text())
    (jane,) = [u for u in written["Users"] if u["User"]["Username"] == "jane"]
    assert len(jane["Proficiencies"]) == 12
    assert written["Quotas"]["ProficienciesPerUser"] == 12


def test_without_the_setting_the_snapshots_cap_holds(workdir: Path) -> None:
    snapshot = json.loads((workdir / "snapshot.json").read_text())
    snapshot["Quotas"] = {"ProficienciesPerUser": 12}
    (workdir / "snapshot.json").write_text(json.dumps(snapshot))
    twelve_proficiencies(workdir, "settings:\n  max_change_percent: 100\n")
    # The manifests' default cap (10) refuses the plan; the account's stays 12.
    result = cli_run("plan")
    assert result.exit_code == 1
    assert "max_proficiencies_per_user" in result.output
    assert json.loads((workdir / "snapshot.json").read_text())["Quotas"] == snapshot["Quotas"]


# -- one snapshot, several applies ----------------------------------------------


def subprocess_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}  # fmt: skip


def test_an_apply_while_another_holds_the_snapshot_exits_1_naming_it(workdir: Path) -> None:
    before = (workdir / "snapshot.json").read_bytes()
    with SnapshotLock(workdir / "snapshot.json") as held:
        result = cli_run("apply", "--auto-approve")
        assert result.exit_code == 1
        assert (
            f"snapshot.json is locked by another apply (pid {os.getpid()}, since" in result.output
        )
        assert held.holder() in result.output
    assert (workdir / "snapshot.json").read_bytes() == before


def test_concurrent_applies_to_one_snapshot_lose_no_write(tmp_path: Path) -> None:
    (tmp_path / "snapshot.json").write_text(json.dumps(many_users_snapshot(60)))
    halves = {}
    for name, users in (("first", range(0, 30)), ("second", range(30, 60))):
        lines = ["users:"] + [
            f"  a{i:03d}: {{proficiencies: {{Skill: {{Payments: {1 + i % 5}}}}}}}" for i in users
        ]
        halves[name] = write_config(tmp_path / name, {
            "instance.yaml": INSTANCE,
            "settings.yaml": "settings:\n  max_change_percent: 100\n  external_attributes: [Language]\n",
            "attributes.yaml": "predefined_attributes:\n  Skill: {values: [Billing, Payments]}\n",
            "users.yaml": "\n".join(lines) + "\n",
        }, base=False)  # fmt: skip
    command = [sys.executable, "-m", "reconciler", "apply", "--auto-approve", "--lock-timeout", "120",
               "--target", "emulator:snapshot.json", "--config"]  # fmt: skip
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    processes = [
        subprocess.Popen([*command, str(config)], cwd=tmp_path, env=subprocess_env(), **pipes)
        for config in halves.values()
    ]
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, out + err
        assert "Applied 30 change(s), 0 failed" in out
    held = {
        u["User"]["Username"]: {(p["AttributeName"], p["AttributeValue"]): p["Level"] for p in u["Proficiencies"]}
        for u in json.loads((tmp_path / "snapshot.json").read_text())["Users"]
    }  # fmt: skip
    for i in range(60):
        assert held[f"a{i:03d}"][("Skill", "Payments")] == 1 + i % 5, i


@pytest.fixture
def read_only_snapshot():
    """A snapshot in a directory nobody may write to, under a world-readable
    working directory (so an unprivileged child can read everything)."""
    top = Path(tempfile.mkdtemp(prefix="read-only-", dir="/tmp"))
    try:
        os.chmod(top, 0o777)
        write_config(
            top / "config",
            {"instance.yaml": INSTANCE, **SCENARIOS["every change kind"]},
            base=False,
        )
        (top / "ro").mkdir()
        (top / "ro" / "snapshot.json").write_text(json.dumps(small_snapshot()))
        yield top
    finally:
        os.chmod(top / "ro", 0o755)
        shutil.rmtree(top)


@pytest.mark.parametrize("lock_file_exists", [False, True], ids=["no lock file", "lock file left"])
def test_a_read_only_snapshot_directory_fails_before_any_change(
    read_only_snapshot: Path, lock_file_exists: bool
) -> None:
    snapshot = read_only_snapshot / "ro" / "snapshot.json"
    if lock_file_exists:
        (read_only_snapshot / "ro" / "snapshot.json.lock").write_text("")
        os.chmod(read_only_snapshot / "ro" / "snapshot.json.lock", 0o666)
    os.chmod(read_only_snapshot / "ro", 0o555)
    before = snapshot.read_bytes()
    result = subprocess.run(
        [*unprivileged(), sys.executable, "-m", "reconciler", "apply", "--auto-approve",
         "--journal", "journals", "--target", "emulator:ro/snapshot.json"],
        cwd=read_only_snapshot, env=subprocess_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Permission denied" in result.stderr and "nothing was changed" in result.stderr
    assert "unexpected" not in result.stderr and "Applied" not in result.stdout
    assert snapshot.read_bytes() == before
    assert not (read_only_snapshot / "journals").exists()  # no call was made


def test_custom_connect_language_values_apply_and_system_ones_stay(workdir: Path) -> None:
    # predefined-attributes.html, System predefined attributes.
    snapshot = json.loads((workdir / "snapshot.json").read_text())
    snapshot["PredefinedAttributes"].append(
        {"Name": "connect:Language", "Values": {"StringList": ["en-US", "fr-CA"]}}
    )
    (workdir / "snapshot.json").write_text(json.dumps(snapshot))
    (workdir / "config" / "attributes.yaml").write_text(
        "predefined_attributes:\n  'connect:Language': {values: [nl-NL]}\n"
        "  Language: {values: [English, Spanish, French]}\n  Skill: {values: [Billing, Payments]}\n"
    )
    (workdir / "config" / "users.yaml").write_text(
        "users:\n  jane: {proficiencies: {'connect:Language': {nl-NL: 2, en-US: 4}}}\n"
    )
    (workdir / "config" / "settings.yaml").write_text("settings:\n  max_change_percent: 100\n")
    result = cli_run("apply", "--auto-approve")
    assert result.exit_code == 0, result.output
    written = json.loads((workdir / "snapshot.json").read_text())
    (language,) = [a for a in written["PredefinedAttributes"] if a["Name"] == "connect:Language"]
    assert language["Values"]["StringList"] == ["en-US", "fr-CA", "nl-NL"]
    assert cli_run("plan", "--detailed-exitcode").exit_code == 0


def test_a_connect_language_value_nobody_has_is_a_plan_error(workdir: Path) -> None:
    snapshot = json.loads((workdir / "snapshot.json").read_text())
    snapshot["PredefinedAttributes"].append(
        {"Name": "connect:Language", "Values": {"StringList": ["en-US"]}}
    )
    (workdir / "snapshot.json").write_text(json.dumps(snapshot))
    (workdir / "config" / "users.yaml").write_text(
        "users:\n  jane: {proficiencies: {'connect:Language': {xx-XX: 2}}}\n"
    )
    result = cli_run("plan")
    assert result.exit_code == 1
    assert "connect:Language/xx-XX does not exist in Connect but is given to: jane" in result.output


def test_a_declared_connect_language_that_is_not_live_is_never_created(workdir: Path) -> None:
    (workdir / "config" / "more.yaml").write_text(
        "predefined_attributes:\n  'connect:Language': {values: [nl-NL]}\n"
    )
    result = cli_run("plan")
    assert result.exit_code == 1
    assert "system attribute connect:Language does not exist in Connect (never created)" in (
        result.output
    )


def test_a_journal_directory_that_cannot_be_made_is_an_error_before_any_change(
    workdir: Path,
) -> None:
    (workdir / "taken").write_text("a file where the journal directory would go")
    before = (workdir / "snapshot.json").read_bytes()
    result = cli_run("apply", "--auto-approve", "--journal", "taken/journals")
    assert result.exit_code == 1
    assert "cannot write a journal in taken/journals" in result.output
    assert (workdir / "snapshot.json").read_bytes() == before


# -- eventual consistency: what this apply just wrote reaches the service late -------


def lagging_instance(connect, seconds: float) -> tuple[LiveStateReader, ManualClock]:
    """The small instance, its writes reaching each read path up to `seconds`
    late, with one clock for the emulator and the pacer (sleeping moves it)."""
    emulator, client = connect
    clock = ManualClock()
    clock.now = 1_000_000.0
    backend = backend_from_snapshot(
        small_snapshot(), behaviour=(f"consistency-lag={seconds:g}", "seed=7"), clock=clock
    )
    emulator.reset(backend, clock=clock)
    pacer = QuotaPacer(client, seed=1, clock=clock, sleep=clock.sleep)
    return LiveStateReader(pacer, INSTANCE_ID), clock


@pytest.fixture
def lag(connect, tmp_path: Path):
    """An instance whose writes reach each read path up to 20 s late: yields a
    function that applies the manifests `files` and returns (plan, result,
    journal lines)."""
    reader, clock = lagging_instance(connect, 20)
    pacer = reader.pacer

    def apply(files: dict[str, str]):
        config = write_config(tmp_path / "config", {"instance.yaml": INSTANCE, **files}, base=False)
        manifest = load_manifest(config)
        plan = make_plan(manifest, reader)
        assert plan.errors == []
        journal = Journal(tmp_path / "lag.jsonl")
        journal.header(plan, instance=INSTANCE_ID, region=None, target="test", owner=None)
        try:
            result = Applier(pacer, reader, INSTANCE_ID, journal).apply(plan)
        finally:
            journal.close()
        clock.now += 60  # every write has arrived everywhere
        return plan, result, journal_lines(tmp_path / "lag.jsonl"), manifest

    apply.reader, apply.clock = reader, clock  # type: ignore[attr-defined]
    return apply


NEW_TIER = {
    "attributes.yaml": ATTRIBUTES + "  Tier: {values: [Gold]}\n",
    "users.yaml": "users:\n  jane: {proficiencies: {Language: {Spanish: 4}, Skill: {Billing: 3}, Tier: {Gold: 2}}}\n",
}


def test_an_apply_that_creates_and_associates_converges_with_lag(lag) -> None:
    _plan, result, lines, manifest = lag(NEW_TIER)
    assert result.ok, result.failed
    waited = [r for r in lines if r["type"] == "retry" and r.get("propagation")]
    assert waited and all(r["operation"] == "AssociateUserProficiencies" for r in waited)
    assert make_plan(manifest, lag.reader).changes == []


def test_the_propagation_wait_is_bounded_and_spends_no_retry_budget(connect, tmp_path) -> None:
    reader, clock = lagging_instance(connect, 3600)  # writes that take an hour to show
    pacer = reader.pacer
    config = write_config(tmp_path / "config", {"instance.yaml": INSTANCE, **NEW_TIER}, base=False)
    plan = make_plan(load_manifest(config), reader)
    budget = pacer.budget.available
    journal = Journal(tmp_path / "j.jsonl")
    journal.header(plan, instance=INSTANCE_ID, region=None, target="test", owner=None)
    applier = Applier(pacer, reader, INSTANCE_ID, journal)
    bound = applier.propagation_seconds = 40.0  # not PROPAGATION_SECONDS: a quicker test
    started = clock.now
    try:
        result = applier.apply(plan)
    finally:
        journal.close()
    waited = clock.now - started
    assert list(result.failed) == ["user_proficiencies jane"]
    assert bound <= waited <= bound + PROPAGATION_MAX_DELAY + 5
    retries = [r for r in journal_lines(tmp_path / "j.jsonl") if r["type"] == "retry"]
    assert retries and all(r.get("propagation") for r in retries)
    assert pacer.budget.available == budget


def test_a_removal_waits_for_the_disassociations_it_follows(lag) -> None:
    dropped = {
        "attributes.yaml": "predefined_attributes:\n  Language: {values: [English, French]}\n  Skill: {values: [Billing, Payments]}\n",
        "users.yaml": "users:\n  jane: {proficiencies: {Skill: {Billing: 3}}}\n",
    }
    _plan, result, lines, manifest = lag(dropped)
    assert result.ok, result.failed
    waited = {r["operation"] for r in lines if r["type"] == "retry" and r.get("propagation")}
    assert waited == {"UpdatePredefinedAttribute"}
    assert make_plan(manifest, lag.reader).changes == []


def test_a_value_this_apply_did_not_create_is_never_waited_for(lag, connect) -> None:
    # Payments exists when planned; an admin removes it before the apply.
    _emulator, client = connect
    files = {
        "attributes.yaml": ATTRIBUTES,
        "users.yaml": "users:\n  ann: {proficiencies: {Skill: {Payments: 2}}}\n",
    }
    config = write_config(
        Path(tempfile.mkdtemp()) / "config", {"instance.yaml": INSTANCE, **files}, base=False
    )
    plan = make_plan(load_manifest(config), lag.reader)
    client.update_predefined_attribute(
        InstanceId=INSTANCE_ID, Name="Skill", Values={"StringList": ["Billing"]}
    )
    lag.clock.now += 60  # the removal has reached every check
    journal_path = config.parent / "j.jsonl"
    journal = Journal(journal_path)
    journal.header(plan, instance=INSTANCE_ID, region=None, target="test", owner=None)
    result = Applier(lag.reader.pacer, lag.reader, INSTANCE_ID, journal).apply(plan)
    journal.close()
    assert list(result.failed) == ["user_proficiencies ann"]
    assert not [r for r in journal_lines(journal_path) if r.get("propagation")]
