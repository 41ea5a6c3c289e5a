"""A stand-in for the GitHub CLI (`gh`) for the workflow test: the calls the
example workflows make, against a JSON file ($FAKE_GH_STATE) that holds pull
request comments, issues, workflow runs and their artifacts. `--jq` is
evaluated by jq itself (the `jq` package), as gh does. Anything else fails
loudly (exit 2), so a workflow that calls gh otherwise than here is caught."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import jq


def load() -> dict[str, Any]:
    path = Path(os.environ["FAKE_GH_STATE"])
    if not path.exists():
        return {"comments": {}, "issues": [], "runs": [], "next_id": 1}
    return json.loads(path.read_text())


def save(state: dict[str, Any]) -> None:
    Path(os.environ["FAKE_GH_STATE"]).write_text(json.dumps(state, indent=2))


def new_id(state: dict[str, Any]) -> int:
    state["next_id"] += 1
    return int(state["next_id"])


def emit(value: Any, expression: str | None) -> None:
    """Print as gh does: JSON, or each --jq result (strings raw)."""
    if expression is None:
        print(json.dumps(value))
        return
    for result in jq.compile(expression).input_value(value).all():
        print(result if isinstance(result, str) else json.dumps(result))


# GitHub refuses a comment or issue body longer than this (422 Validation Failed).
MAX_BODY = 65_536


def body_of(fields: list[str]) -> str:
    (field,) = fields
    key, value = field.split("=", 1)
    assert key == "body" and value.startswith("@"), field
    return checked(Path(value[1:]).read_text())


def checked(body: str) -> str:
    if len(body) > MAX_BODY:
        raise SystemExit(f"gh: HTTP 422: body is too long (maximum is {MAX_BODY} characters)")
    return body


def api(args: list[str], state: dict[str, Any]) -> None:
    parser = argparse.ArgumentParser(prog="gh api")
    parser.add_argument("path")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--paginate", action="store_true")
    parser.add_argument("--jq")
    parser.add_argument("-F", "--field", action="append", default=[])
    given = parser.parse_args(args)
    listed = re.fullmatch(r"repos/[^/]+/[^/]+/issues/(\d+)/comments", given.path)
    one = re.fullmatch(r"repos/[^/]+/[^/]+/issues/comments/(\d+)", given.path)
    if listed and given.method == "GET":
        emit(state["comments"].get(listed.group(1), []), given.jq)
    elif listed and given.method == "POST":
        comment = {"id": new_id(state), "body": body_of(given.field)}
        state["comments"].setdefault(listed.group(1), []).append(comment)
        emit(comment, given.jq)
    elif one and given.method == "PATCH":
        comments = [c for cs in state["comments"].values() for c in cs]
        comment = next(c for c in comments if c["id"] == int(one.group(1)))
        comment["body"] = body_of(given.field)
        emit(comment, given.jq)
    else:
        raise SystemExit(f"fake gh: unsupported api call {args}")


def run(args: list[str], state: dict[str, Any]) -> None:
    parser = argparse.ArgumentParser(prog="gh run")
    parser.add_argument("verb", choices=["list", "download"])
    parser.add_argument("run_id", nargs="?")
    for option in ("--repo", "--workflow", "--commit", "--status", "--json", "--jq", "--name"):
        parser.add_argument(option)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--dir", default=".")
    given = parser.parse_args(args)
    if given.verb == "list":
        runs = [
            {"databaseId": r["databaseId"]}
            for r in reversed(state["runs"])
            if r["workflow"] == given.workflow
            and r["headSha"] == given.commit
            and (given.status is None or r["status"] == given.status)
        ]
        emit(runs[: given.limit], given.jq)
        return
    found = next(r for r in state["runs"] if str(r["databaseId"]) == given.run_id)
    artifact = found["artifacts"].get(given.name)
    if artifact is None:
        raise SystemExit(f"no artifact named {given.name} in run {given.run_id}")
    shutil.copytree(artifact, given.dir, dirs_exist_ok=True)


def issue(args: list[str], state: dict[str, Any]) -> None:
    parser = argparse.ArgumentParser(prog="gh issue")
    parser.add_argument("verb", choices=["list", "create", "edit", "close"])
    parser.add_argument("number", nargs="?", type=int)
    for option in ("--repo", "--state", "--search", "--json", "--jq", "--title", "--comment"):
        parser.add_argument(option)
    parser.add_argument("--body-file")
    given = parser.parse_args(args)
    issues = state["issues"]
    if given.verb == "list":
        title = re.fullmatch(r'in:title "(.*)"', given.search or "")
        found = [
            {"number": i["number"]}
            for i in issues
            if i["state"] == (given.state or "open") and (not title or title.group(1) in i["title"])
        ]
        emit(found, given.jq)
        return
    if given.verb == "create":
        number = new_id(state)
        issues.append({"number": number, "title": given.title, "state": "open",
                       "body": checked(Path(given.body_file).read_text()), "comments": []})  # fmt: skip
        print(f"https://github.com/{given.repo}/issues/{number}")
        return
    chosen = next(i for i in issues if i["number"] == given.number)
    if given.verb == "edit":
        chosen["body"] = checked(Path(given.body_file).read_text())
    else:
        chosen["state"] = "closed"
        if given.comment:
            chosen["comments"].append(given.comment)


def main() -> None:
    state = load()
    command, *rest = sys.argv[1:]
    handlers = {"api": api, "run": run, "issue": issue}
    if command not in handlers:
        raise SystemExit(f"fake gh: unsupported command {sys.argv[1:]}")
    handlers[command](rest, state)
    save(state)


if __name__ == "__main__":
    main()
