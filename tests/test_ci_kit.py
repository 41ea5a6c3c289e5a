"""The CI kit: action.yml, the example workflows and the pre-commit hook."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.conftest import ROOT, git
from tests.github_actions import THIS_ACTION, JobRun, Runner

BIN = Path(sys.executable).parent  # actionlint, shellcheck, pre-commit, connect-reconciler
WORKFLOWS = sorted((ROOT / "examples" / "github").glob("**/*.yml"))
DEMO = ROOT / "examples" / "demo-snapshot.json"


def action() -> dict:
    return YAML(typ="safe").load((ROOT / "action.yml").read_text())


def actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    # actionlint runs shellcheck on every `run:` script when it is on PATH.
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [str(BIN / "actionlint"), "-no-color", *map(str, paths)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_shellcheck_is_there_for_actionlint() -> None:
    assert (BIN / "shellcheck").exists()


def test_example_workflows_are_actionlint_clean() -> None:
    assert {p.name for p in WORKFLOWS} == {"plan.yml", "apply.yml", "drift.yml"}
    result = actionlint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        (ROOT / "examples" / "github" / "drift.yml")
        .read_text()
        .replace("steps.drift", "steps.drfit")
    )
    assert actionlint(broken).returncode == 1


def test_action_is_actionlint_clean(tmp_path: Path) -> None:
    """actionlint reads workflows, not action metadata: lint the action's
    steps as the one job of a reusable workflow declaring the same inputs,
    so its expressions and (with shellcheck) its scripts are checked."""
    metadata = action()
    assert metadata["runs"]["using"] == "composite"
    inputs = {
        name: {"type": "string", "required": bool(spec.get("required")),
               **({"default": spec["default"]} if "default" in spec else {})}
        for name, spec in metadata["inputs"].items()
    }  # fmt: skip
    workflow = {
        "on": {"workflow_call": {"inputs": inputs}},
        "jobs": {"action": {"runs-on": "ubuntu-latest", "steps": metadata["runs"]["steps"]}},
    }
    path = tmp_path / "action-as-workflow.yml"
    with path.open("w") as out:
        YAML().dump(workflow, out)
    result = actionlint(path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository holding the demo manifests, and a snapshot beside it."""
    origin = tmp_path / "origin"
    shutil.copytree(ROOT / "config", origin / "config")
    git(origin, "init", "-q", "-b", "main")
    git(origin, "add", "-A")
    git(origin, "commit", "-q", "-m", "manifests")
    shutil.copy(DEMO, tmp_path / "snapshot.json")
    return tmp_path


def run_action(repo: Path, **inputs: str) -> JobRun:
    """A job that checks the repository out and runs the action with `inputs`."""
    runner = Runner(repo / "origin", repo / "github", {})
    job = {
        "steps": [
            {"uses": "actions/checkout@v4"},
            {"id": "it", "uses": THIS_ACTION, "with": inputs},
        ]
    }
    head = git(repo / "origin", "rev-parse", "HEAD").strip()
    return runner.run_job("test.yml", job, "workflow_dispatch", {}, head)


def test_action_plans_into_the_step_summary(repo: Path) -> None:
    run = run_action(
        repo, command="plan --out plan.json --detailed-exitcode", format="markdown",
        target=f"emulator:{repo / 'snapshot.json'}",
    )  # fmt: skip
    assert not run.failed  # 2 (changes) is one of the default ok-exit-codes
    assert run.output("it", "exit-code") == "2"
    markdown = Path(run.output("it", "output-file")).read_text()
    assert markdown.startswith("<!-- connect-reconciler-plan -->\n")
    assert run.summary == markdown
    saved = json.loads((run.workspace / run.output("it", "plan-file")).read_text())
    assert run.output("it", "changes") == str(len(saved["changes"]) + len(saved["owner_tags"]))


def test_action_takes_its_command_over_several_lines_and_args_verbatim(repo: Path) -> None:
    run = run_action(
        repo, command="plan\n--detailed-exitcode\n--user 'jane.doe@example.com'",
        args="--user\ndavid.kim@example.com\n", target=f"emulator:{repo / 'snapshot.json'}",
        format="json",
    )  # fmt: skip
    assert run.output("it", "exit-code") == "2"  # --detailed-exitcode on the second line counted
    plan = json.loads(Path(run.output("it", "output-file")).read_text())
    assert plan["narrowing"]["users"] == ["david.kim@example.com", "jane.doe@example.com"]
    assert run.output("it", "plan-file") == "" and run.output("it", "changes") == ""


def test_action_refuses_an_input_it_does_not_declare(repo: Path) -> None:
    run = run_action(repo, command="validate", formt="json")
    assert run.failed and "unknown input(s) formt" in run.text


def test_action_fails_on_an_exit_code_not_ok(repo: Path) -> None:
    run = run_action(
        repo, command="drift", target=f"emulator:{repo / 'snapshot.json'}", **{"ok-exit-codes": "0"}
    )
    assert run.failed and run.output("it", "exit-code") == "2"
    assert run.summary == ""  # JSON is not for the summary


def test_action_validate_takes_no_target(repo: Path) -> None:
    run = run_action(repo, command="validate", format="json")
    assert not run.failed and run.output("it", "exit-code") == "0"


def test_pre_commit_hook_runs_validate(tmp_path: Path) -> None:
    """`pre-commit try-repo` installs the hook from this repository with pip
    (its dependencies from PyPI) and runs it on a repository whose
    manifests have an error."""
    project = tmp_path / "project"
    shutil.copytree(ROOT / "config", project / "config")
    (project / "config" / "extra.yaml").write_text("users:\n  a@example.com: {sets: [nope]}\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=project, check=True)
    subprocess.run([*git, "add", "-A"], cwd=project, check=True)
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache")}
    result = subprocess.run(
        [str(BIN / "pre-commit"), "try-repo", str(ROOT), "connect-reconciler-validate",
         "--all-files"],
        cwd=project, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "connect-reconciler validate...." in result.stdout
    assert "config/extra.yaml:2:" in result.stdout and "Failed" in result.stdout
