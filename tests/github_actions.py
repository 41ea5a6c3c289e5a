"""Runs the example workflows and action.yml as a GitHub runner would, with
no GitHub: each `run:` step in bash (`-eo pipefail`, as `shell: bash`) with
its env, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, GITHUB_EVENT_PATH and
RUNNER_TEMP; `${{ }}` expressions and `if:` conditions evaluated; the
action's composite steps run the same way. The `uses:` steps that need
GitHub or AWS stand in: checkout clones the local repository and checks out
the ref, upload-artifact copies into the fake gh's state (tests/fake_gh.py,
on PATH as `gh`), setup-python and configure-aws-credentials do nothing,
and the action's `install` step is skipped (the package is installed in
this environment already)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from tests.conftest import git

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # connect-reconciler and the tools beside it
THIS_ACTION = "OWNER/connect-reconciler@v1"
NO_OPS = ("actions/setup-python@", "aws-actions/configure-aws-credentials@")


def load_yaml(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = YAML(typ="safe").load(path.read_text())
    return loaded


# -- expressions -----------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(==|!=|&&|\|\||[!()])|'((?:[^']|'')*)'|([A-Za-z_][\w.\-]*)|(\S))")


def evaluate(expression: str, contexts: dict[str, Any]) -> Any:
    """A GitHub expression: context paths, 'strings', ==, !=, !, &&, ||,
    parentheses, and the functions success/failure/always/cancelled/toJSON."""
    tokens = []
    for match in _TOKEN.finditer(expression):
        operator, string, name, other = match.groups()
        if other:
            raise ValueError(f"cannot read {expression!r} at {other!r}")
        tokens.append(("op", operator) if operator else ("str", string.replace("''", "'"))
                      if string is not None else ("name", name))  # fmt: skip
    position = 0

    def peek() -> tuple[str, str] | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal position
        position += 1
        return tokens[position - 1]

    def primary() -> Any:
        kind, value = take()
        if (kind, value) == ("op", "!"):
            return not truthy(primary())
        if (kind, value) == ("op", "("):
            inner = either()
            take()
            return inner
        if kind == "str":
            return value
        if peek() == ("op", "("):
            take()
            argument = None if peek() == ("op", ")") else either()
            take()
            return call(value, argument, contexts)
        return lookup(value, contexts)

    def comparison() -> Any:
        left = primary()
        while peek() in (("op", "=="), ("op", "!=")):
            _, operator = take()
            equal = loosely_equal(left, primary())
            left = equal if operator == "==" else not equal
        return left

    def both() -> Any:
        left = comparison()
        while peek() == ("op", "&&"):
            take()
            right = comparison()
            left = right if truthy(left) else left
        return left

    def either() -> Any:
        left = both()
        while peek() == ("op", "||"):
            take()
            right = both()
            left = left if truthy(left) else right
        return left

    return either()


def lookup(path: str, contexts: dict[str, Any]) -> Any:
    if path in ("true", "false", "null"):
        return {"true": True, "false": False, "null": None}[path]
    value: Any = contexts
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def call(name: str, argument: Any, contexts: dict[str, Any]) -> Any:
    failed = contexts["job"]["failed"]
    functions = {
        "success": lambda: not failed,
        "failure": lambda: failed,
        "always": lambda: True,
        "cancelled": lambda: False,
        "toJSON": lambda: json.dumps(argument, indent=2),
    }
    return functions[name]()


def truthy(value: Any) -> bool:
    return value not in (None, False, "", 0)


def loosely_equal(left: Any, right: Any) -> bool:
    """GitHub compares strings ignoring case."""
    if isinstance(left, str) and isinstance(right, str):
        return left.casefold() == right.casefold()
    return bool(left == right)


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def interpolate(text: Any, contexts: dict[str, Any]) -> str:
    return re.sub(
        r"\$\{\{(.*?)\}\}", lambda m: as_text(evaluate(m.group(1), contexts)), as_text(text)
    )


def condition(step: dict[str, Any], contexts: dict[str, Any]) -> bool:
    given = step.get("if")
    if given is None:
        return not contexts["job"]["failed"]
    expression = as_text(given).strip()
    if expression.startswith("${{"):
        expression = expression.removeprefix("${{").removesuffix("}}")
    status_functions = ("success(", "failure(", "always(", "cancelled(")
    if not any(f in expression for f in status_functions):  # an implicit success() &&
        expression = f"success() && ({expression})"
    return truthy(evaluate(expression, contexts))


# -- running ---------------------------------------------------------------------


@dataclass
class JobRun:
    """What a job did: its steps' outcomes and outputs, and its log."""

    workspace: Path = Path()
    failed: bool = False
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    summary: str = ""

    def output(self, step: str, name: str) -> str:
        return str(self.steps[step]["outputs"].get(name, ""))

    @property
    def text(self) -> str:
        return "\n".join(self.log)


@dataclass
class Runner:
    """Runs workflows of one local repository; state (comments, issues, runs,
    artifacts) persists across runs in `state`, as on GitHub."""

    origin: Path
    work: Path
    variables: dict[str, str]
    repository: str = "acme/contact-center"
    runs: int = 0

    @property
    def gh_state(self) -> Path:
        return self.work / "gh-state.json"

    def gh(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.gh_state.read_text())
        return loaded

    def __post_init__(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        self.gh_state.write_text(
            json.dumps({"comments": {}, "issues": [], "runs": [], "next_id": 1000})
        )
        shim = self.work / "bin" / "gh"
        shim.parent.mkdir(exist_ok=True)
        shim.write_text(
            f'#!/bin/sh\nexec "{sys.executable}" "{ROOT / "tests" / "fake_gh.py"}" "$@"\n'
        )
        shim.chmod(0o755)

    def run(self, workflow: str, event_name: str, event: dict[str, Any], sha: str) -> JobRun:
        """Run the shipped workflow's one job for an event at commit `sha`."""
        ((_, job),) = load_yaml(ROOT / "examples" / "github" / workflow)["jobs"].items()
        assert "strategy" not in job, "a matrix job: use run_matrix"
        return self.run_job(workflow, job, event_name, event, sha)

    def run_matrix(
        self, workflow: str, event_name: str, event: dict[str, Any], sha: str
    ) -> dict[str, JobRun]:
        """Run the workflow's one job once per value of its one-key matrix
        (a literal list), with `matrix` in its contexts, as GitHub runs it:
        {value: its run}."""
        ((_, job),) = load_yaml(ROOT / "examples" / "github" / workflow)["jobs"].items()
        ((key, values),) = job["strategy"]["matrix"].items()
        return {
            value: self.run_job(workflow, job, event_name, event, sha, {key: value})
            for value in values
        }

    def run_job(
        self,
        workflow: str,
        job: dict[str, Any],
        event_name: str,
        event: dict[str, Any],
        sha: str,
        matrix: dict[str, Any] | None = None,
    ) -> JobRun:
        """Run one job (a workflow's, or one a test writes)."""
        self.runs += 1
        run_dir = self.work / f"run-{self.runs}"
        workspace, temp = run_dir / "workspace", run_dir / "temp"
        temp.mkdir(parents=True)
        event_file = run_dir / "event.json"
        event_file.write_text(json.dumps(event))
        github = {
            "event_name": event_name,
            "event": event,
            "sha": sha,
            "repository": self.repository,
            "base_ref": event.get("pull_request", {}).get("base", {}).get("ref", ""),
            "server_url": "https://github.com",
            "run_id": str(self.runs),
            "token": "fake-token",
        }
        result = JobRun(workspace)
        contexts: dict[str, Any] = {
            "github": github,
            "vars": self.variables,
            "steps": result.steps,
            "job": {"failed": False},
            "matrix": matrix or {},
        }
        env = {
            "PATH": os.pathsep.join([str(self.work / "bin"), str(BIN), os.environ["PATH"]]),
            "HOME": os.environ.get("HOME", str(run_dir)),
            "FAKE_GH_STATE": str(self.gh_state),
            "GITHUB_EVENT_PATH": str(event_file),
            "GITHUB_EVENT_NAME": event_name,
            "GITHUB_SHA": sha,
            "GITHUB_WORKSPACE": str(workspace),
            "GITHUB_STEP_SUMMARY": str(run_dir / "step-summary.md"),
            "RUNNER_TEMP": str(temp),
        }
        if "if" in job and not truthy(
            evaluate(as_text(job["if"]).strip().removeprefix("${{").removesuffix("}}"), contexts)
        ):
            result.log.append("job skipped")
            return self._finish(workflow, event, result, run_dir)
        artifacts: dict[str, str] = {}
        for index, step in enumerate(job["steps"]):
            step_id = step.get("id", f"step-{index}")
            if not condition(step, contexts):
                result.steps[step_id] = {"outcome": "skipped", "outputs": {}}
                continue
            ok, outputs = self._step(step, contexts, env, workspace, run_dir, artifacts, result)
            result.steps[step_id] = {"outcome": "success" if ok else "failure", "outputs": outputs}
            if not ok:
                result.failed = contexts["job"]["failed"] = True
        summary = run_dir / "step-summary.md"
        result.summary = summary.read_text() if summary.exists() else ""
        return self._finish(workflow, event, result, run_dir, artifacts)

    def _finish(
        self,
        workflow: str,
        event: dict[str, Any],
        result: JobRun,
        run_dir: Path,
        artifacts: dict[str, str] | None = None,
    ) -> JobRun:
        state = self.gh()
        state["runs"].append({
            "databaseId": self.runs,
            "workflow": Path(workflow).name,  # as `gh run list --workflow` names it
            "headSha": event.get("pull_request", {}).get("head", {}).get("sha", ""),
            "status": "failure" if result.failed else "success",
            "artifacts": artifacts or {},
        })  # fmt: skip
        self.gh_state.write_text(json.dumps(state))
        (run_dir / "log.txt").write_text(result.text)
        return result

    def _step(
        self,
        step: dict[str, Any],
        contexts: dict[str, Any],
        env: dict[str, str],
        workspace: Path,
        run_dir: Path,
        artifacts: dict[str, str],
        result: JobRun,
    ) -> tuple[bool, dict[str, str]]:
        given = {k: interpolate(v, contexts) for k, v in (step.get("with") or {}).items()}
        uses = step.get("uses")
        if uses is None:
            step_env = {k: interpolate(v, contexts) for k, v in (step.get("env") or {}).items()}
            return self._bash(step["run"], {**env, **step_env}, workspace, run_dir, result)
        if uses.startswith("actions/checkout@"):
            if not workspace.exists():
                git(self.work, "clone", "-q", str(self.origin), str(workspace))
                git(workspace, "fetch", "-q", "origin", "+refs/pull/*:refs/pull/*")
            git(workspace, "checkout", "-q", "--detach", given.get("ref") or env["GITHUB_SHA"])
            return True, {}
        if uses.startswith("actions/upload-artifact@"):
            stored = self.work / "artifacts" / f"{self.runs}-{given['name']}"
            stored.mkdir(parents=True)
            uploaded = workspace / given["path"]
            if uploaded.is_dir():  # a directory's files, as the artifact's root
                shutil.copytree(uploaded, stored, dirs_exist_ok=True)
            else:
                shutil.copy(uploaded, stored)
            artifacts[given["name"]] = str(stored)
            return True, {}
        if uses.startswith(NO_OPS):
            return True, {}
        assert uses == THIS_ACTION, (
            f"the workflow uses {uses}, which this runner cannot stand in for"
        )
        return self._action(given, contexts, env, workspace, run_dir, result)

    def _action(
        self,
        given: dict[str, str],
        contexts: dict[str, Any],
        env: dict[str, str],
        workspace: Path,
        run_dir: Path,
        result: JobRun,
    ) -> tuple[bool, dict[str, str]]:
        """The composite action: its inputs (defaults filled in), its steps,
        its outputs."""
        metadata = load_yaml(ROOT / "action.yml")
        declared = metadata["inputs"]
        missing = [n for n, spec in declared.items() if spec.get("required") and n not in given]
        assert not missing, f"required input(s) missing: {missing}"
        inputs = {**{n: as_text(spec.get("default", "")) for n, spec in declared.items()}, **given}
        steps: dict[str, dict[str, Any]] = {}
        inner = {
            **contexts,
            "inputs": inputs,
            "steps": steps,
            "github": {**contexts["github"], "action_path": str(ROOT)},
            "job": {"failed": False},
        }
        ok = True
        for step in metadata["runs"]["steps"]:
            if step.get("uses", "").startswith(NO_OPS) or step.get("id") == "install":
                continue
            step_env = {k: interpolate(v, inner) for k, v in (step.get("env") or {}).items()}
            ok, outputs = self._bash(step["run"], {**env, **step_env}, workspace, run_dir, result)
            steps[step["id"]] = {"outputs": outputs}
            if not ok:
                break
        outputs = {n: interpolate(spec["value"], inner) for n, spec in metadata["outputs"].items()}
        return ok, outputs

    def _bash(
        self, script: str, env: dict[str, str], workspace: Path, run_dir: Path, result: JobRun
    ) -> tuple[bool, dict[str, str]]:
        output = run_dir / "github-output"
        output.write_text("")
        script_file = run_dir / "step.sh"
        script_file.write_text(script)
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script_file)],
            cwd=workspace, env={**env, "GITHUB_OUTPUT": str(output)}, capture_output=True,
            text=True, timeout=300,
        )  # fmt: skip
        result.log += [done.stdout, done.stderr]
        return done.returncode == 0, read_outputs(output.read_text())


def read_outputs(text: str) -> dict[str, str]:
    """GITHUB_OUTPUT's `name=value` lines and `name<<DELIMITER` blocks."""
    outputs: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line and "=" not in line.split("<<", 1)[0]:
            name, delimiter = line.split("<<", 1)
            block = []
            for inner in lines:
                if inner == delimiter:
                    break
                block.append(inner)
            outputs[name] = "\n".join(block)
        elif "=" in line:
            name, value = line.split("=", 1)
            outputs[name] = value
    return outputs
