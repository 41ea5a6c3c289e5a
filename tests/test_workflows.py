"""The GitOps loop, driven end to end: the shipped workflows and action.yml
run by tests/github_actions.py (each step's own bash, no GitHub) on a local
git repository, with an emulator snapshot as the Connect instance. Pull
request -> plan comment -> merge (main moved meanwhile) -> apply -> drift."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reconciler.plan.render import MARKDOWN_MARKER
from tests.conftest import git
from tests.github_actions import Runner

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo-snapshot.json"
BILLING = "config/teams/billing.yaml"
RETENTION = "config/teams/retention.csv"


class Repository:
    """A local repository whose main holds the demo manifests, a Connect
    instance (a snapshot, its writes reaching reads late) converged to them,
    and GitHub (the runner)."""

    def __init__(self, tmp_path: Path) -> None:
        self.origin = tmp_path / "origin"
        shutil.copytree(ROOT / "config", self.origin / "config")
        git(self.origin, "init", "-q", "-b", "main")
        self.commit("the demo manifests")
        self.snapshot = tmp_path / "connect.json"
        # As on AWS, what a job writes reaches each read path late (up to 3 s)
        document = json.loads(DEMO.read_text())
        document["Behaviour"] = {"consistency-lag": 3, "seed": 2}
        self.snapshot.write_text(json.dumps(document))
        assert self.cli("apply", "--auto-approve").returncode == 0
        self.runner = Runner(self.origin, tmp_path / "github", {
            "CONNECT_RECONCILER_TARGET": f"emulator:{self.snapshot}",
            "AWS_REGION": "us-east-1",
        })  # fmt: skip

    def git(self, *args: str) -> str:
        return git(self.origin, *args).strip()

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def cli(self, *args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "reconciler", *args, "--config",
             str(config or self.origin / "config"), "--target", f"emulator:{self.snapshot}"],
            capture_output=True, text=True, cwd=self.origin, timeout=120,
        )  # fmt: skip

    def branch(self, name: str, path: str, old: str, new: str) -> str:
        """A branch off main that replaces `old` with `new` in `path`."""
        self.git("checkout", "-q", "-B", name, "main")
        self.edit(path, old, new)
        head = self.commit(f"{name}: {path}")
        self.git("checkout", "-q", "main")
        return head

    def edit(self, path: str, old: str, new: str) -> None:
        file = self.origin / path
        text = file.read_text()
        assert old in text, old
        file.write_text(text.replace(old, new))

    def push(self, name: str, path: str, old: str, new: str) -> str:
        """Another commit on branch `name`."""
        self.git("checkout", "-q", name)
        self.edit(path, old, new)
        head = self.commit(f"{name}: {path} again")
        self.git("checkout", "-q", "main")
        return head

    workflows = ""  # where under examples/github/ its workflows are

    def plan_pull_request(self, number: int, name: str) -> Any:
        """plan.yml for the pull request's latest push: on its merge commit
        with main as it is now (refs/pull/N/merge), as GitHub runs it."""
        head = self.git("rev-parse", name)
        self.git("checkout", "-q", "--detach", "main")
        self.git("merge", "-q", "--no-ff", "--no-edit", name)
        merged = self.git("rev-parse", "HEAD")
        self.git("update-ref", f"refs/pull/{number}/merge", merged)
        self.git("checkout", "-q", "main")
        event = {"pull_request": {"number": number, "head": {"sha": head}, "base": {"ref": "main"}}}
        return self.runner.run(f"{self.workflows}plan.yml", "pull_request", event, merged)

    def merged(self, number: int, name: str) -> tuple[dict[str, Any], str]:
        """Merge the pull request into main: the closing event, and the commit."""
        head = self.git("rev-parse", name)
        self.git("merge", "-q", "--no-ff", "--no-edit", name)
        merged = self.git("rev-parse", "HEAD")
        event = {"action": "closed", "pull_request": {
            "number": number, "merged": True, "merge_commit_sha": merged, "head": {"sha": head},
        }}  # fmt: skip
        return event, merged

    def merge(self, number: int, name: str) -> Any:
        """Merge the pull request into main, then apply.yml for its closing."""
        return self.runner.run("apply.yml", "pull_request", *self.merged(number, name))

    def scheduled(self, workflow: str) -> Any:
        return self.runner.run(workflow, "schedule", {}, self.git("rev-parse", "main"))

    def comments(self, number: int) -> list[str]:
        return [c["body"] for c in self.runner.gh()["comments"].get(str(number), [])]

    def console_edit(self, username: str, attribute: str, value: str, level: float) -> None:
        """Change a user's level behind the tool's back, as the console would."""
        document = json.loads(self.snapshot.read_text())
        user = next(u for u in document["Users"] if u["User"]["Username"] == username)
        held = [
            p
            for p in user["Proficiencies"]
            if (p["AttributeName"], p["AttributeValue"]) != (attribute, value)
        ]
        user["Proficiencies"] = [
            *held,
            {"AttributeName": attribute, "AttributeValue": value, "Level": level},
        ]
        self.snapshot.write_text(json.dumps(document))

    def level(self, username: str, attribute: str, value: str) -> float | None:
        document = json.loads(self.snapshot.read_text())
        user = next(u for u in document["Users"] if u["User"]["Username"] == username)
        return next((p["Level"] for p in user["Proficiencies"]
                     if (p["AttributeName"], p["AttributeValue"]) == (attribute, value)), None)  # fmt: skip

    def in_sync(self) -> bool:
        done = self.cli("plan", "--detailed-exitcode")
        assert done.returncode in (0, 2), done.stderr
        return done.returncode == 0


@pytest.fixture
def repository(tmp_path: Path) -> Repository:
    return Repository(tmp_path)


ROSA_SPANISH = "Language: {Spanish: 5}      # native speaker"
DAVID = "  david.kim@example.com:\n    sets: [english_billing]\n"


def test_pull_request_to_applied_with_main_moved_meanwhile(repository: Repository) -> None:
    repository.branch("rosa", BILLING, ROSA_SPANISH, "Language: {Spanish: 3}      # native speaker")
    first = repository.plan_pull_request(1, "rosa")
    assert not first.failed, first.text
    assert first.output("plan", "changes") == "1"
    (comment,) = repository.comments(1)
    assert comment.startswith(MARKDOWN_MARKER) and "rosa.alvarez@example.com" in comment
    assert first.summary == comment  # the job summary shows the same plan

    # Another pull request is planned, merged and applied first: main moves.
    repository.branch(
        "david", BILLING, DAVID, DAVID + "    proficiencies:\n      Product: {Mobile: 2}\n"
    )
    assert not repository.plan_pull_request(2, "david").failed
    second = repository.merge(2, "david")
    assert not second.failed, second.text
    assert repository.level("david.kim@example.com", "Product", "Mobile") == 2

    # The first is merged onto the moved main: its changes are still the reviewed ones.
    applied = repository.merge(1, "rosa")
    assert not applied.failed, applied.text
    assert applied.output("reviewed", "exit-code") == "0"
    assert applied.output("converge", "exit-code") == "0"
    assert repository.level("rosa.alvarez@example.com", "Language", "Spanish") == 3
    assert repository.in_sync()

    drift = repository.scheduled("drift.yml")
    assert not drift.failed and drift.output("drift", "exit-code") == "0"
    assert repository.runner.gh()["issues"] == []


def test_a_merged_plan_that_changed_since_review_is_not_applied_but_sent_back(
    repository: Repository,
) -> None:
    repository.branch("rosa", BILLING, ROSA_SPANISH, "Language: {Spanish: 3}      # native speaker")
    assert not repository.plan_pull_request(1, "rosa").failed
    repository.console_edit("rosa.alvarez@example.com", "Language", "Spanish", 2.0)
    refused = repository.merge(1, "rosa")
    assert refused.failed
    assert refused.output("reviewed", "exit-code") == "4"
    assert refused.steps["converge"]["outcome"] == "skipped"  # nothing unreviewed follows
    assert repository.level("rosa.alvarez@example.com", "Language", "Spanish") == 2.0
    asked = repository.comments(1)[-1]
    assert "**Not applied**" in asked and "not the reviewed ones" in asked
    assert "['before']: plan has 5.0, recomputed 2.0" in asked  # the difference, path by path


def test_what_the_pull_requests_plan_defers_the_merge_applies(repository: Repository) -> None:
    # Someone adds a value in the console; the manifests do not declare it.
    document = json.loads(repository.snapshot.read_text())
    region = next(a for a in document["PredefinedAttributes"] if a["Name"] == "Region")
    region["Values"]["StringList"].append("APAC")
    repository.snapshot.write_text(json.dumps(document))
    repository.branch("rosa", BILLING, ROSA_SPANISH, "Language: {Spanish: 3}      # native speaker")
    assert not repository.plan_pull_request(1, "rosa").failed
    assert "remove value(s) APAC from Region" in repository.comments(1)[0]  # deferred
    applied = repository.merge(1, "rosa")
    assert not applied.failed, applied.text
    live = json.loads(repository.snapshot.read_text())["PredefinedAttributes"]
    assert "APAC" not in next(a for a in live if a["Name"] == "Region")["Values"]["StringList"]
    assert repository.in_sync()


def test_a_merge_that_changes_users_the_review_never_showed_is_sent_back(
    repository: Repository,
) -> None:
    # A changes a set; B, merged first, starts managing tom with that set:
    # merged onto the moved main, A's change now reaches tom too.
    repository.branch("english", "config/sets.yaml", "Language: {Spanish: 4, English: 3}",
                      "Language: {Spanish: 4, English: 2}")  # fmt: skip
    assert not repository.plan_pull_request(1, "english").failed
    assert "tom.baker@example.com" not in repository.comments(1)[0]
    repository.branch(
        "tom", BILLING, DAVID, DAVID + "  tom.baker@example.com:\n    sets: [spanish_billing]\n"
    )
    assert not repository.plan_pull_request(2, "tom").failed
    assert not repository.merge(2, "tom").failed
    assert repository.level("tom.baker@example.com", "Language", "English") == 3
    refused = repository.merge(1, "english")
    assert refused.failed and refused.output("reviewed", "exit-code") == "4"
    assert refused.steps["converge"]["outcome"] == "skipped"
    assert repository.level("tom.baker@example.com", "Language", "English") == 3
    asked = repository.comments(1)[-1]
    assert "**Not applied**" in asked and "tom.baker@example.com" in asked


def test_invalid_manifests_replace_the_comment_and_a_pull_request_without_changes_passes(
    repository: Repository,
) -> None:
    repository.branch("rosa", BILLING, ROSA_SPANISH, "Language: {Spanish: 3}      # native speaker")
    assert not repository.plan_pull_request(1, "rosa").failed
    repository.push("rosa", BILLING, "sets: [spanish_billing, retention]", "sets: [spanish_billin]")
    broken = repository.plan_pull_request(1, "rosa")
    assert broken.failed and broken.output("plan", "exit-code") == "1"
    (comment,) = repository.comments(1)  # the same comment, replaced
    assert comment.startswith(MARKDOWN_MARKER) and "the manifests do not load" in comment
    assert "billing.yaml:9:" in comment and "spanish_billin" in comment
    assert "rosa.alvarez@example.com" not in comment  # the old plan is gone
    # so many errors that all of them would not fit in a comment: still replaced
    many = "".join(f"  agent{n:04d}@example.com: {{sets: [spanish_billin]}}\n" for n in range(1000))
    repository.git("checkout", "-q", "rosa")
    (repository.origin / "config" / "teams" / "many.yaml").write_text("users:\n" + many)
    repository.commit("rosa: many more")
    repository.git("checkout", "-q", "main")
    assert repository.plan_pull_request(1, "rosa").output("plan", "exit-code") == "1"
    (comment,) = repository.comments(1)
    assert "1001 errors" in comment and "more not shown" in comment

    repository.branch("words", BILLING, "# Billing desk", "# The billing desk")
    quiet = repository.plan_pull_request(3, "words")
    assert not quiet.failed and quiet.output("plan", "exit-code") == "0"
    assert quiet.output("plan", "changes") == "0"
    assert "No changes. Connect matches the manifests." in repository.comments(3)[0]
    merged = repository.merge(3, "words")
    assert not merged.failed, merged.text
    assert "No changes" in Path(merged.output("reviewed", "output-file")).read_text()


def test_drift_opens_one_issue_updates_it_and_closes_it_when_back_in_sync(
    repository: Repository,
) -> None:
    repository.console_edit("grace.lewis@example.com", "Language", "English", 1.0)
    for _ in range(2):
        found = repository.scheduled("drift.yml")
        assert not found.failed and found.output("drift", "exit-code") == "2"
    (issue,) = repository.runner.gh()["issues"]
    assert issue["state"] == "open"
    assert "Connect has drifted from the manifests" in issue["body"]
    assert "grace.lewis@example.com" in issue["body"] and "```json" not in issue["body"]

    converged = repository.scheduled("apply.yml")  # the weekly full apply
    assert not converged.failed, converged.text
    assert converged.steps["reviewed"]["outcome"] == "skipped"
    again = repository.scheduled("drift.yml")
    assert not again.failed and again.output("drift", "exit-code") == "0"
    (issue,) = repository.runner.gh()["issues"]
    assert issue["state"] == "closed" and issue["comments"][0].startswith("Back in sync")


def test_a_base_plan_tells_the_pull_requests_edit_from_the_consoles(
    repository: Repository,
) -> None:
    grace = (
        "grace.lewis@example.com,Language,English,5,retention\n"
        "grace.lewis@example.com,Skill,Payments,3,retention\n"
    )
    repository.branch("changes", RETENTION, grace, "")  # no longer managed
    repository.git("checkout", "-q", "changes")
    repository.edit(BILLING, ROSA_SPANISH, "Language: {Spanish: 3}      # native speaker")
    repository.commit("rosa")
    repository.console_edit("henry.walker@example.com", "Language", "English", 1.0)
    done = repository.cli("plan", "--base", "main", "--format", "json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    causes = {c.get("username"): c["cause"] for c in plan["changes"]}
    assert causes == {"rosa.alvarez@example.com": "manifest", "henry.walker@example.com": "drift"}
    assert plan["no_longer_managed"]["users"] == ["grace.lewis@example.com"]
    text = repository.cli("plan", "--base", "main").stdout
    drift_at = text.index("Changed outside connect-reconciler")
    assert text.index("~ user rosa.alvarez@example.com") < drift_at
    assert text.index("~ user henry.walker@example.com") > drift_at
    assert "No longer managed (left as is): users grace.lewis@example.com" in text


EXAMPLE = ROOT / "examples" / "environments"
SHARED = "config/base/attributes.yaml"


class EnvironmentsRepository(Repository):
    """The two-environment example on main: staging converged, dr (a
    verify-only replica) left as its snapshot has it; each instance a
    snapshot whose writes reach reads late; the workflows of
    examples/github/environments/."""

    def __init__(self, tmp_path: Path) -> None:
        self.origin = tmp_path / "origin"
        shutil.copytree(EXAMPLE / "config", self.origin / "config")
        git(self.origin, "init", "-q", "-b", "main")
        self.commit("the example's manifests")
        self.snapshots = {}
        for name in ("staging", "dr"):
            document = json.loads((EXAMPLE / f"{name}-snapshot.json").read_text())
            document["Behaviour"] = {"consistency-lag": 3, "seed": 2}
            self.snapshots[name] = tmp_path / f"{name}.json"
            self.snapshots[name].write_text(json.dumps(document))
        targets = "\n".join(f"{n}=emulator:{path}" for n, path in self.snapshots.items())
        converged = subprocess.run(
            [sys.executable, "-m", "reconciler", "apply", "--env", "staging", "--auto-approve",
             "--config", str(self.origin / "config"), "--target", f"staging=emulator:{self.snapshots['staging']}"],
            capture_output=True, text=True, cwd=self.origin, timeout=120,
        )  # fmt: skip
        assert converged.returncode == 0, converged.stderr
        self.runner = Runner(self.origin, tmp_path / "github", {
            "CONNECT_RECONCILER_TARGETS": targets, "AWS_REGION": "us-east-1",
        })  # fmt: skip

    workflows = "environments/"

    def merge_each(self, number: int, name: str) -> dict[str, Any]:
        """Merge, then the environments' apply.yml: {environment: its job}."""
        event, merged = self.merged(number, name)
        return self.runner.run_matrix(f"{self.workflows}apply.yml", "pull_request", event, merged)

    def level_in(self, environment: str, username: str, attribute: str, value: str) -> Any:
        document = json.loads(self.snapshots[environment].read_text())
        user = next(u for u in document["Users"] if u["User"]["Username"] == username)
        return next((p["Level"] for p in user["Proficiencies"]
                     if (p["AttributeName"], p["AttributeValue"]) == (attribute, value)), None)  # fmt: skip


def test_environments_pull_request_plans_both_applies_each_and_drift_reports_both(
    tmp_path: Path,
) -> None:
    repository = EnvironmentsRepository(tmp_path)
    dr_before = repository.snapshots["dr"].read_bytes()
    # a change to the shared layer reaches both environments
    repository.branch(
        "jane", SHARED, "Skill: {Technical Support: 2}", "Skill: {Technical Support: 3}"
    )
    planned = repository.plan_pull_request(1, "jane")
    assert not planned.failed, planned.text
    assert planned.output("plan", "exit-code") == "2"
    assert planned.output("plan", "changes") == "2"  # jane in staging and in dr
    (comment,) = repository.comments(1)
    assert comment.count(MARKDOWN_MARKER) == 1
    assert "<b>staging</b>" in comment and "<b>dr</b>" in comment
    assert "staging, dr share one pacer per API" in planned.text

    applied = repository.merge_each(1, "jane")
    assert list(applied) == ["staging"]  # the verify-only replica is not in the matrix
    staging = applied["staging"]
    assert not staging.failed, staging.text
    assert staging.output("reviewed", "exit-code") == "0"
    assert staging.output("converge", "exit-code") == "0"
    assert repository.level_in("staging", "jane.doe@example.com", "Skill", "Technical Support") == 3
    assert repository.snapshots["dr"].read_bytes() == dr_before  # never written

    drift = repository.scheduled("environments/drift.yml")
    assert not drift.failed and drift.output("drift", "exit-code") == "2"  # dr differs
    (issue,) = repository.runner.gh()["issues"]
    assert "<b>dr</b>" in issue["body"] and "rosa.alvarez@example.com" in issue["body"]
