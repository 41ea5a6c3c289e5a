"""`doctor` against a served emulator: every read checked once, and the
probes tell each switched behaviour apart; denied reads are failed checks
naming the IAM action, never a traceback."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from reconciler.cli import cli
from reconciler.emulator import ConnectEmulator, FaultPlan, load_snapshot
from tests.conftest import ROOT, fast_demo_config

DEMO = ROOT / "examples" / "demo-snapshot.json"


@pytest.fixture
def serve(monkeypatch, tmp_path):
    """Serve the demo under some behaviours; yields a function returning
    (exit code, checks by name, (server, config)) of `doctor --format json`
    against it, the manifests pacing every API as fast as the emulator answers."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    config = fast_demo_config(tmp_path / "config")
    servers = []

    def doctor(*behaviour: str, faults: FaultPlan | None = None):
        server = ConnectEmulator(load_snapshot(DEMO, behaviour=behaviour), faults=faults).start()
        servers.append(server)
        args = ["doctor", "--format", "json", "--config", str(config)]
        result = CliRunner().invoke(cli, [*args, "--endpoint-url", server.url])
        document = json.loads(result.stdout)
        assert document["format_version"] == "1"
        assert all(set(c) == {"name", "status", "detail"} for c in document["checks"])
        assert {c["status"] for c in document["checks"]} <= {"ok", "warn", "fail", "skip"}
        return result.exit_code, {c["name"]: c for c in document["checks"]}, (server, config)

    yield doctor
    for server in servers:
        server.stop()


def test_the_default_emulator_passes_every_check(serve) -> None:
    code, checks, _ = serve()
    assert code == 0
    assert checks["caller identity"]["status"] == "skip"  # an endpoint: no STS
    assert checks["list-condition"]["status"] == "ok"
    reads = [c for name, c in checks.items() if name.startswith("read connect:")]
    assert len(reads) >= 8 and all(c["status"] in ("ok", "skip") for c in reads)


@pytest.mark.parametrize(
    ("behaviour", "check", "status", "fragment"),
    [
        ("list-condition=any-proficiency", "list-condition", "warn", "met across the list"),
        ("number-equal=min-value", "number-equal", "ok", "MaxValue alone: refused"),
        ("number-equal=max-value", "number-equal", "ok", "MinValue alone: refused"),
        ("string-case=sensitive", "string-case", "ok", "case-sensitively"),
        ("max-or-conditions=5", "max-or-conditions", "warn", "20 OR'ed conditions are refused"),
        ("max-or-conditions=50", "max-or-conditions", "ok", "50 OR'ed conditions taken"),
        ("contact-order=oldest-first", "contact-order", "ok", "not newest first"),
    ],
)
def test_each_switched_behaviour_shows(serve, behaviour, check, status, fragment) -> None:
    code, checks, _ = serve(behaviour)
    assert checks[check]["status"] == status and fragment in checks[check]["detail"], checks[check]
    assert code == 0  # the tool copes with each


def test_a_search_across_the_list_still_plans_as_the_list_read(serve) -> None:
    _, checks, (server, config) = serve("list-condition=any-proficiency")
    assert checks["list-condition"]["status"] == "warn"
    plans = []
    for read in ("list", "auto"):
        args = ["plan", "--format", "json", "--read", read, "--config", str(config)]
        result = CliRunner().invoke(cli, [*args, "--endpoint-url", server.url])
        plans.append(json.loads(result.stdout)["changes"])
    assert plans[0] == plans[1]


def test_denied_reads_are_failed_checks_naming_the_action(serve) -> None:
    code, checks, _ = serve(
        faults=FaultPlan(deny_operations=("SearchUsers", "ListRoutingProfiles"))
    )
    assert code == 1
    for operation in ("SearchUsers", "ListRoutingProfiles"):
        check = checks[f"read connect:{operation}"]
        assert check["status"] == "fail"
        assert f"access denied to connect:{operation}" in check["detail"]
        assert "docs/iam/plan-policy.json" in check["detail"]
    assert checks["read connect:ListUsers"]["status"] == "ok"


def test_reads_a_plan_role_goes_without_warn_naming_their_policy_and_who_needs_them(
    serve,
) -> None:
    code, checks, _ = serve()
    assert checks["read connect:DescribePredefinedAttribute"]["status"] == "ok"
    assert checks["read connect:ListTagsForResource"]["status"] == "ok"
    code, checks, _ = serve(
        faults=FaultPlan(
            deny_operations=("SearchContacts", "DescribePredefinedAttribute", "ListTagsForResource")
        )
    )
    assert code == 0  # what a pull request's plan role is allowed: doctor passes
    for operation, policy, who in (
        ("SearchContacts", "audit", "coverage --from-contacts and explain"),
        ("DescribePredefinedAttribute", "apply", "apply"),
        ("ListTagsForResource", "apply", "apply"),
    ):
        check = checks[f"read connect:{operation}"]
        assert check["status"] == "warn", check
        assert f"docs/iam/{policy}-policy.json" in check["detail"]
        assert f"only {who} need it" in check["detail"]
    assert checks["contact-order"]["status"] == "skip"


def test_a_denied_proficiency_read_fails_though_users_are_listed(serve) -> None:
    code, checks, _ = serve(faults=FaultPlan(deny_operations=("ListUserProficiencies",)))
    assert code == 1
    check = checks["read connect:ListUserProficiencies"]
    assert check["status"] == "fail" and "docs/iam/plan-policy.json" in check["detail"]
    assert checks["read connect:ListTagsForResource"]["status"] == "ok"


def test_everything_denied_still_checks_every_read(serve) -> None:
    denied = ("DescribeInstance", "ListUsers", "SearchUsers", "SearchPredefinedAttributes",
              "ListRoutingProfiles", "ListUserHierarchyGroups")  # fmt: skip
    code, checks, _ = serve(faults=FaultPlan(deny_operations=(*denied, "SearchContacts")))
    assert code == 1
    assert "access denied to connect:DescribeInstance" in checks["instance"]["detail"]
    for operation in denied[1:]:
        assert checks[f"read connect:{operation}"]["status"] == "fail", operation
    assert checks["read connect:SearchContacts"]["status"] == "warn"  # a plan role's lot
    # what needs an object another read would have found says why it did not run
    for operation, why in (
        ("ListUserProficiencies", "users could not be listed"),
        ("ListTagsForResource", "users could not be listed"),
        ("DescribePredefinedAttribute", "no predefined attribute found"),
        ("DescribeContact", "no contact in the last day"),
    ):
        assert checks[f"read connect:{operation}"] == {
            "name": f"read connect:{operation}", "status": "skip", "detail": why,
        }  # fmt: skip
