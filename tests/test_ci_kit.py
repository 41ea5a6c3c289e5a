"""The CI kit: action.yml, the example workflows and the pre-commit hook."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.conftest import ROOT

BIN = Path(sys.executable).parent  # actionlint, shellcheck, pre-commit, connect-reconciler
WORKFLOWS = sorted((ROOT / "examples" / "github").glob("*.yml"))
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


def run_step(step_id: str, inputs: dict[str, str], cwd: Path) -> tuple[int, dict[str, str]]:
    """Run one of the action's bash steps as a runner would: its env with
    `${{ inputs.* }}` and `${{ github.action_path }}` filled in; returns the
    exit code and what it wrote to $GITHUB_OUTPUT."""
    metadata = action()
    step = next(s for s in metadata["runs"]["steps"] if s.get("id") == step_id)
    defaults = {k: str(v.get("default", "")) for k, v in metadata["inputs"].items()}
    values = {**defaults, **inputs}

    def expand(text: str) -> str:
        def one(match: re.Match[str]) -> str:
            expression = match.group(1).strip()
            if expression == "github.action_path":
                return str(ROOT)
            assert expression.startswith("inputs."), expression
            return values[expression.removeprefix("inputs.")]

        return re.sub(r"\$\{\{(.*?)\}\}", one, text)

    output = cwd / "github-output"
    output.write_text("")
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(cwd / "step-summary.md"),
        "RUNNER_TEMP": str(cwd),
        **{k: expand(str(v)) for k, v in step.get("env", {}).items()},
    }
    assert step["shell"] == "bash"
    result = subprocess.run(
        ["bash", "-e", "-c", step["run"]], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    written = dict(line.split("=", 1) for line in output.read_text().splitlines())
    return result.returncode, written


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "config", tmp_path / "config")
    shutil.copy(DEMO, tmp_path / "snapshot.json")
    return tmp_path


def test_action_plans_into_the_step_summary(repo: Path) -> None:
    code, outputs = run_step(
        "run",
        {"command": "plan --out plan.json --detailed-exitcode", "format": "markdown",
         "target": "emulator:snapshot.json"},
        repo,
    )  # fmt: skip
    assert code == 0  # 2 (changes) is one of the default ok-exit-codes
    assert outputs["exit-code"] == "2"
    markdown = Path(outputs["output-file"]).read_text()
    assert markdown.startswith("<!-- connect-reconciler-plan -->\n")
    assert (repo / "step-summary.md").read_text() == markdown
    assert (repo / "plan.json").exists()


def test_action_fails_on_an_exit_code_not_ok(repo: Path) -> None:
    code, outputs = run_step(
        "run", {"command": "drift", "target": "emulator:snapshot.json", "ok-exit-codes": "0"}, repo
    )
    assert (code, outputs["exit-code"]) == (2, "2")
    assert not (repo / "step-summary.md").exists()  # JSON is not for the summary


def test_action_validate_takes_no_target(repo: Path) -> None:
    code, outputs = run_step("run", {"command": "validate", "format": "json"}, repo)
    assert (code, outputs["exit-code"]) == (0, "0")


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
