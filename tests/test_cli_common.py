"""What every command shares (reconciler/cli/common.py): colour, help,
per-command options, JSON diagnostics, and errors that say what to do."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner

from reconciler.cli import cli
from reconciler.cli.common import GlobalOptions, ProgressBar, error_message
from reconciler.quoting import unknown_names
from tests.conftest import INSTANCE_ID, ROOT, small_snapshot, write_config

DEMO = ROOT / "examples" / "demo-snapshot.json"
COMMANDS = [
    "validate", "plan", "apply", "drift", "coverage", "export", "import changes", "parity",
    "schema",
]  # fmt: skip


@pytest.fixture
def demo(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "config", tmp_path / "config")
    shutil.copy(DEMO, tmp_path / "snapshot.json")
    return tmp_path


def run_on_terminal(args: list[str], cwd: Path, **env: str) -> str:
    """Run the CLI with stdout and stderr on a pseudo-terminal; all it wrote."""
    main, secondary = pty.openpty()
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm-256color", **env}
    if "NO_COLOR" not in env:
        environment.pop("NO_COLOR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", *args],
        cwd=cwd,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=secondary,
        stderr=secondary,
    )
    os.close(secondary)
    output = b""
    try:
        while True:
            ready, _, _ = select.select([main], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the terminal closed: the process is done
                break
            if not chunk:
                break
            output += chunk
    finally:
        process.wait(timeout=60)
        os.close(main)
    return output.decode()


PLAN = ["plan", "--target", "emulator:snapshot.json"]


# Select Graphic Rendition: colours and styles. A progress bar's cursor
# movement (\x1b[2K, \x1b[1A) is not colour.
SGR = re.compile(r"\x1b\[[0-9;]*m")


def test_plan_on_a_terminal_is_coloured(demo: Path) -> None:
    assert SGR.search(run_on_terminal(PLAN, demo))


@pytest.mark.parametrize(
    ("extra", "env"),
    [([], {"NO_COLOR": "1"}), ([], {"TERM": "dumb"}), (["--no-color"], {})],
    ids=["NO_COLOR", "TERM=dumb", "--no-color"],
)
def test_no_colour_when_asked(demo: Path, extra: list[str], env: dict[str, str]) -> None:
    output = run_on_terminal([*PLAN, *extra], demo, **env)
    assert "+ create attribute Certification" in output
    assert not SGR.search(output), SGR.findall(output)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_lists_exit_codes_and_an_example(command: str) -> None:
    result = CliRunner().invoke(cli, [*command.split(), "--help"])
    assert result.exit_code == 0
    assert "Exit codes: 0" in result.output
    assert f"Example:\n    connect-reconciler {command}" in result.output


def test_emulator_serve_help_lists_exit_codes() -> None:
    result = CliRunner().invoke(cli, ["emulator", "serve", "--help"])
    assert "Exit codes:" in result.output and "connect-reconciler emulator serve" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "--target", "aws"],
        ["validate", "--region", "eu-west-2"],
        ["schema", "--region", "eu-west-2"],
        ["schema", "--config", "x"],
        ["emulator", "serve", "--target", "aws"],
    ],
)
def test_global_options_that_mean_nothing_are_not_offered(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and "No such option" in result.output


def test_every_global_option_still_works_before_the_command(config_dir: Path) -> None:
    write_config(config_dir, {})
    result = CliRunner().invoke(cli, ["--no-color", "--region", "eu-west-2", "validate"])
    assert result.exit_code == 0, result.output


INVALID = {"users.yaml": "users:\n  a@example.com: {sets: [nope]}\n"}


@pytest.mark.parametrize("command", ["validate", "plan", "drift", "coverage"])
def test_format_json_on_invalid_manifests_prints_diagnostics(
    config_dir: Path, command: str
) -> None:
    write_config(config_dir, INVALID)
    args = [command] + ([] if command == "drift" else ["--format", "json"])
    if command != "validate":
        args += ["--target", "emulator:nowhere.json"]  # never reached
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["format_version"] == "1"
    [error] = document["errors"]
    assert set(error) == {"file", "line", "column", "message", "hint"}
    assert error["file"] == "config/users.yaml" and error["line"] == 2
    assert "nope" in error["message"]


def test_validate_format_json_when_valid(config_dir: Path) -> None:
    write_config(config_dir, {})
    result = CliRunner().invoke(cli, ["validate", "--format", "json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"format_version": "1", "errors": []}


# -- errors that say what to do -----------------------------------------------


@pytest.fixture
def aws_config(tmp_path: Path, monkeypatch) -> Path:
    """Manifests for the small instance, planned as an `aws` target."""
    monkeypatch.chdir(tmp_path)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    write_config(tmp_path / "config", {})
    return tmp_path


def with_keys(monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def test_unreachable_endpoint_fails_fast_and_names_it(aws_config: Path, monkeypatch) -> None:
    with_keys(monkeypatch)
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["plan", "--endpoint-url", "http://127.0.0.1:9"])
    elapsed = time.monotonic() - started
    assert result.exit_code == 1
    assert "cannot reach the Connect endpoint http://127.0.0.1:9" in result.output
    assert elapsed < 5, elapsed


def test_no_credentials_says_how_to_give_them(aws_config: Path, monkeypatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    result = CliRunner().invoke(cli, ["plan", "--endpoint-url", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "no AWS credentials found" in result.output and "--profile" in result.output


def test_unknown_instance_says_where_it_is_configured(
    aws_config: Path, monkeypatch, connect
) -> None:
    emulator, _ = connect
    with_keys(monkeypatch)
    wrong = "99999999-2222-3333-4444-555555555555"
    write_config(aws_config / "config", {"instance.yaml": f"instance:\n  id: {wrong}\n"})
    result = CliRunner().invoke(
        cli, ["plan", "--endpoint-url", emulator.url, "--region", "us-east-1"]
    )
    assert result.exit_code == 1
    assert f"Connect instance {wrong} not found in region us-east-1" in result.output
    assert "instance.id" in result.output and "Traceback" not in result.output


def test_the_right_instance_plans_through_the_same_path(
    aws_config: Path, monkeypatch, connect
) -> None:
    emulator, _ = connect
    with_keys(monkeypatch)
    write_config(aws_config / "config", {"instance.yaml": f"instance:\n  id: {INSTANCE_ID}\n"})
    result = CliRunner().invoke(
        cli, ["plan", "--endpoint-url", emulator.url, "--region", "us-east-1"]
    )
    assert result.exit_code == 0, result.output


def granted_by(policy: Path) -> set[str]:
    document = json.loads(policy.read_text())
    return {action for statement in document["Statement"] for action in statement["Action"]}


POLICIES = sorted((ROOT / "docs" / "iam").glob("*-policy.json"))


@pytest.mark.parametrize("action", sorted(set().union(*(granted_by(p) for p in POLICIES))), ids=str)
def test_access_denied_names_the_action_and_a_policy_that_grants_it(action: str) -> None:
    operation = action.removeprefix("connect:")
    denied = ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}}, operation
    )
    message = error_message(denied, INSTANCE_ID, "us-east-1")
    (named,) = [p for p in POLICIES if str(p.relative_to(ROOT)) in message]
    assert action in message and action in granted_by(named)
    # the least one that does: a plan role is never told to take apply's policy
    assert not any(action in granted_by(p) for p in POLICIES if granted_by(p) < granted_by(named))


def test_unknown_names_suggests_the_closest() -> None:
    known = ["jane", "joe", "ann"]
    assert unknown_names("user", ["jane"], known) is None
    assert unknown_names("user", ["jne", "zzz"], known) == (
        "no user named 'jne' (did you mean jane, joe?), 'zzz'"
    )


def test_small_snapshot_is_the_instance_the_fixture_uses() -> None:
    assert small_snapshot()["Instance"]["Id"] == INSTANCE_ID


def test_progress_pause_takes_the_bar_off_and_an_update_brings_it_back() -> None:
    bar = ProgressBar(GlobalOptions())
    bar.shown = True  # as on a terminal
    try:
        bar("Reading proficiencies", 5, 40)
        assert bar.display.live.is_started and len(bar.display.tasks) == 1
        bar.pause()
        assert not bar.display.live.is_started and not bar.display.tasks
        bar("Applying", 1, 40)
        assert bar.display.live.is_started
        assert [t.description for t in bar.display.tasks] == ["Applying"]
    finally:
        bar.pause()


def test_small_reads_show_no_bar() -> None:
    bar = ProgressBar(GlobalOptions())
    bar.shown = True
    bar("Reading proficiencies", 1, 3)
    assert not bar.display.live.is_started


def test_apply_prompt_is_not_drawn_over(demo: Path) -> None:
    """On a terminal, the read's progress bar is off the screen once apply
    asks: nothing is drawn while the user types."""
    main, secondary = pty.openpty()
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm-256color"}
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "apply", "--target", "emulator:snapshot.json"],
        cwd=demo, env=environment, stdin=secondary, stdout=secondary, stderr=secondary,
    )  # fmt: skip
    os.close(secondary)
    seen = b""
    deadline = time.monotonic() + 60
    try:
        while b"Only 'yes' is accepted" not in seen:
            assert time.monotonic() < deadline, seen[-500:]
            ready, _, _ = select.select([main], [], [], 5)
            if ready:
                seen += os.read(main, 65536)
        assert b"Reading proficiencies" in seen  # there was a bar during the read
        # A live bar redraws ten times a second; a paused one never.
        ready, _, _ = select.select([main], [], [], 0.5)
        assert not ready, os.read(main, 65536)
        os.write(main, b"no\n")
        rest = b""
        while b"Apply cancelled." not in rest and time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 5)
            if ready:
                rest += os.read(main, 65536)
        assert b"Apply cancelled." in rest
        assert process.wait(timeout=60) == 1
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(main)


def test_each_environment_gets_its_own_target_and_never_another_ones_endpoint() -> None:
    opts = GlobalOptions(targets=("http://localhost:4566", "prod=aws", "dr=emulator:dr.json"))
    assert (opts.target, opts.endpoint_url) == ("aws", "http://localhost:4566")
    prod, dr, qa = (opts.for_environment(n) for n in ("prod", "dr", "qa"))
    assert (prod.target, prod.endpoint_url) == ("aws", None)  # AWS itself, not the URL
    assert (dr.target, dr.endpoint_url) == ("emulator:dr.json", None)
    assert (qa.target, qa.endpoint_url) == ("aws", "http://localhost:4566")  # the default
    given = GlobalOptions(targets=("prod=aws",), endpoint_url="http://proxy:1")
    assert given.for_environment("prod").endpoint_url == "http://proxy:1"  # --endpoint-url stays
    with pytest.raises(click.UsageError, match="--target given 2 times"):
        GlobalOptions(targets=("aws", "emulator:x.json"))
