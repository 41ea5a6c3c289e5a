"""The CLI's exit codes and global options; validate never touches the network."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import cli
from tests.conftest import ROOT, write_config


def test_validate_demo_config_exits_0() -> None:
    result = CliRunner().invoke(cli, ["validate", "--config", str(ROOT / "config")])
    assert result.exit_code == 0, result.output
    assert "valid (" in result.output


def test_global_options_work_before_and_after_the_command(config_dir: Path) -> None:
    write_config(config_dir, {})
    before = CliRunner().invoke(cli, ["--config", "config", "validate"])
    after = CliRunner().invoke(cli, ["validate", "--config", "config"])
    quiet = CliRunner().invoke(cli, ["validate", "-q", "--config", "config"])
    assert (before.exit_code, after.exit_code, quiet.exit_code) == (0, 0, 0)
    assert before.output == after.output != ""
    assert quiet.output == ""


def test_option_after_the_command_wins(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path / "good", {})
    write_config(tmp_path / "bad", {"users.yaml": "users: [\n"})
    result = CliRunner().invoke(cli, ["--config", "bad", "validate", "--config", "good"])
    assert result.exit_code == 0, result.output


def test_validate_makes_no_network_call(config_dir: Path, monkeypatch) -> None:
    write_config(config_dir, {"users.yaml": "users:\n  a@example.com: {sets: [bilingual]}\n"})

    def refuse(*args, **kwargs):
        raise AssertionError("validate tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert CliRunner().invoke(cli, ["validate"]).exit_code == 0
    write_config(config_dir, {"users.yaml": "users:\n  a@example.com: {sets: [nope]}\n"})
    assert CliRunner().invoke(cli, ["validate"]).exit_code == 1


def test_validate_runs_without_credentials_or_endpoint(tmp_path: Path) -> None:
    write_config(tmp_path / "config", {"users.yaml": "users:\n  a@example.com: {sets: [nope]}\n"})
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL="http://127.0.0.1:9",
        AWS_CONFIG_FILE="/nonexistent",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
    )
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "config/users.yaml:2:" in result.stderr
    assert "Traceback" not in result.stderr


def test_schema_prints_json_schema() -> None:
    result = CliRunner().invoke(cli, ["schema"])
    schema = json.loads(result.output)
    assert result.exit_code == 0
    assert set(schema["properties"]) >= {"instance", "users", "predefined_attributes"}


@pytest.mark.parametrize("flag", ["-v", "-vv"])
def test_verbose_logs_to_stderr(config_dir: Path, flag: str) -> None:
    write_config(config_dir, {})
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", flag],
        cwd=config_dir.parent,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0
    assert "loaded 2 files" in result.stderr
    assert "loaded" not in result.stdout


def test_schema_has_an_id_and_the_shipped_copy_is_current() -> None:
    schema = json.loads(CliRunner().invoke(cli, ["schema"]).output)
    assert schema["$id"] == "urn:connect-reconciler:manifest:1"
    shipped = json.loads((ROOT / "docs" / "manifest.schema.json").read_text())
    assert shipped == schema, "regenerate: connect-reconciler schema > docs/manifest.schema.json"


def test_every_config_file_names_the_schema_for_editors() -> None:
    files = sorted((ROOT / "config").rglob("*.yaml"))
    assert files
    for path in files:
        first = path.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), path
        target = path.parent / first.split("=", 1)[1]
        assert target.resolve() == ROOT / "docs" / "manifest.schema.json", path


def test_a_usage_error_exits_1_not_2_which_means_changes_here() -> None:
    result = CliRunner().invoke(cli, ["coverage", "--from-contacts", "3x"])
    assert result.exit_code == 1, result.output
    assert "Error:" in result.output
    help_text = CliRunner().invoke(cli, ["plan", "--help"])
    assert help_text.exit_code == 0 and "Exit codes:" in help_text.output
