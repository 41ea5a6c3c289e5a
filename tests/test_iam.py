"""docs/iam/ policies grant exactly the Connect actions the commands call.

Every command runs against a served emulator as an `aws` target; the
emulator counts the operations it was really sent (`GET /_emulator/stats`).
Each operation is the IAM action `connect:<Operation>` (Connect's actions are
named after its API operations:
https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonconnect.html).
"""

from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import cli
from reconciler.connect.client import connect_client
from reconciler.connect.reader import OWNER_TAG
from reconciler.emulator import ConnectEmulator, load_snapshot
from reconciler.service.model import is_read
from tests.conftest import ROOT, fast_demo_config

DEMO = ROOT / "examples" / "demo-snapshot.json"
PLAN_POLICY = ROOT / "docs" / "iam" / "plan-policy.json"
APPLY_POLICY = ROOT / "docs" / "iam" / "apply-policy.json"
AUDIT_POLICY = ROOT / "docs" / "iam" / "audit-policy.json"
# Read by every command that talks to Connect; a read policy must never
# grant any of these prefixes' opposites.
READ_PREFIXES = ("Describe", "List", "Search", "Get")

# Manifests that make the reader use every read it has: a hierarchy-group
# selector besides the demo's routing-profile one, and (for apply) an
# attribute to update and one to delete.
HIERARCHY_GROUP = "groups:\n  - match: {hierarchy_group: Denver}\n    sets: [retention]\n"


def actions(policy: Path) -> set[str]:
    """The `connect:` actions a policy document allows."""
    document = json.loads(policy.read_text())
    found: set[str] = set()
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow"
        listed = statement["Action"]
        found |= {listed} if isinstance(listed, str) else set(listed)
    assert all(a.startswith("connect:") and "*" not in a for a in found), found
    return found


@pytest.fixture
def observed(tmp_path_factory) -> tuple[set[str], set[str], set[str], set[str]]:
    """(what the read commands call, what the contact audits add, what
    apply calls), each command run
    once against the demo instance served over HTTP, manifests in ./config."""
    workdir = tmp_path_factory.mktemp("iam")
    server = ConnectEmulator(load_snapshot(DEMO)).start()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(workdir)
            patch.setenv("AWS_ACCESS_KEY_ID", "testing")
            patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
            patch.delenv("AWS_PROFILE", raising=False)
            config = fast_demo_config(workdir / "config")
            (config / "hierarchy.yaml").write_text(HIERARCHY_GROUP)
            settings = (config / "instance.yaml").read_text()
            reads, audits, doctored = read_commands(server)
            # Prune, so that an attribute nobody holds is deleted (Legacy
            # Queue, held by an unmanaged user, stays: declared external).
            pruning = "prune_attributes: true\n  external_attributes: [Legacy Queue]"
            (config / "instance.yaml").write_text(
                settings.replace("prune_attributes: false", pruning)
            )
            attributes = (config / "attributes.yaml").read_text()
            (config / "attributes.yaml").write_text(
                attributes.replace("Portuguese]", "Portuguese, Italian]")
            )
            client = connect_client(endpoint_url=server.url, emulator=True)
            client.create_predefined_attribute(
                InstanceId=server.backend.instance["Id"],
                Name="Unused",
                Values={"StringList": ["x"]},
            )
            applied = called(server, "apply", "--auto-approve", "--force", "--journal", "j.jsonl")
            # settings.owner: apply tags the users it manages (TagResource).
            owned = (
                (config / "instance.yaml")
                .read_text()
                .replace("settings:\n", "settings:\n  owner: team-routing\n")
            )
            (config / "instance.yaml").write_text(owned)
            applied |= called(server, "apply", "--auto-approve", "--force", "--journal", "j.jsonl")
            return reads, audits, applied, doctored
    finally:
        server.stop()


def called(server: ConnectEmulator, *args: str) -> set[str]:
    """Operations one command sent, as IAM actions."""
    reset = urllib.request.Request(f"{server.url}/_emulator/reset", b"", method="POST")
    urllib.request.urlopen(reset).close()
    result = CliRunner().invoke(cli, [*args, "--endpoint-url", server.url])
    assert result.exit_code in (0, 2, 3), result.output
    with urllib.request.urlopen(f"{server.url}/_emulator/stats") as response:
        stats = json.load(response)
    return {f"connect:{op}" for op, counts in stats.items() if counts.get("calls")}


def read_commands(server: ConnectEmulator) -> tuple[set[str], set[str], set[str]]:
    """(what every read command calls, what the contact audits add: coverage
    --from-contacts and explain read contacts, which the PR plan role need
    not; what doctor calls)."""
    reads = called(server, "plan")
    reads |= called(server, "drift")
    reads |= called(server, "coverage")
    reads |= called(server, "export", "--snapshot", "exported.json")
    shutil.copytree("config", "update-me")  # the demo, its CSV team included
    reads |= called(server, "export", "--update", "update-me")
    reads |= called(server, "export", "--out", "exported")  # no --region: DescribeInstance
    # parity reads two environments' instances: here the same one, seen twice
    shutil.copytree("config", "environments/demo")
    Path("environments/environments.yaml").write_text(
        "environments:\n  a: {layers: [demo]}\n  b: {layers: [demo], apply: false}\n"
    )
    reads |= called(server, "parity", "a", "b", "--config", "environments")
    audits = called(server, "coverage", "--from-contacts", "7d", "--until", "2026-11-21T00:00:00Z")
    audits |= called(server, "explain", "e1655d3d-a277-51d7-b5e5-e7875bcfbd80")
    return reads, audits - reads, called(server, "doctor")


def test_each_policy_grants_exactly_what_its_commands_call(observed) -> None:
    # one test: the commands run once (a module fixture would run once per worker)
    reads, audits, applied, doctored = observed
    assert actions(PLAN_POLICY) == reads
    assert actions(AUDIT_POLICY) == audits == {"connect:SearchContacts", "connect:DescribeContact"}
    writes = applied - reads
    assert writes == {
        "connect:DescribePredefinedAttribute",  # re-read right before each value-list update
        "connect:ListTagsForResource",  # an owner tag read back before the user is changed
        "connect:CreatePredefinedAttribute",
        "connect:UpdatePredefinedAttribute",
        "connect:DeletePredefinedAttribute",
        "connect:AssociateUserProficiencies",
        "connect:UpdateUserProficiencies",
        "connect:DisassociateUserProficiencies",
        "connect:TagResource",
    }
    assert actions(APPLY_POLICY) == reads | writes
    # doctor checks every read any command makes, apply's included, and no write
    # (DescribeContact only when a contact of the last day is there to describe)
    every_read = {a for a in reads | audits | writes if is_read(a.removeprefix("connect:"))}
    assert doctored <= every_read and every_read - doctored <= {"connect:DescribeContact"}


def test_read_policies_have_no_write_action() -> None:
    for policy in (PLAN_POLICY, AUDIT_POLICY):
        granted = {a.removeprefix("connect:") for a in actions(policy)}
        assert granted and all(a.startswith(READ_PREFIXES) for a in granted)
    assert actions(PLAN_POLICY) < actions(APPLY_POLICY)


def test_apply_may_tag_with_the_owner_tag_only() -> None:
    document = json.loads(APPLY_POLICY.read_text())
    (tagging,) = [s for s in document["Statement"] if "connect:TagResource" in s["Action"]]
    assert tagging["Action"] == ["connect:TagResource"]
    assert tagging["Condition"] == {"ForAllValues:StringEquals": {"aws:TagKeys": [OWNER_TAG]}}
