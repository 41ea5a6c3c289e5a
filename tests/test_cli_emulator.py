"""`emulator serve` as a user runs it: a subprocess, stopped by a signal."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.connect.client import connect_client
from tests.conftest import INSTANCE_ID, interruptible, small_snapshot
from tests.test_apply import subprocess_env


def started_in_the_background() -> None:
    """A shell starting a job in the background hands it SIGINT ignored:
    serve must still stop (and save) on SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_persist_saves_on_sigterm_as_on_sigint(tmp_path: Path, stop: signal.Signals) -> None:
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_text(json.dumps(small_snapshot()))
    server = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "emulator", "serve", "--port", "0",
         "--snapshot", str(snapshot), "--persist"],
        env={**subprocess_env(), "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, preexec_fn=started_in_the_background,
    )  # fmt: skip
    try:
        banner = server.stdout.readline()  # printed once it listens
        url = banner.split(" at ", 1)[1].split(" ", 1)[0]
        connect_client(endpoint_url=url, emulator=True).create_predefined_attribute(
            InstanceId=INSTANCE_ID, Name="Tier", Values={"StringList": ["Gold"]}
        )
        server.send_signal(stop)
        out, err = server.communicate(timeout=30)
    finally:
        server.kill()
        server.wait()
    assert "state written to" in out, err
    saved = json.loads(snapshot.read_text())
    assert "Tier" in {a["Name"] for a in saved["PredefinedAttributes"]}


def test_serve_takes_the_account_quotas_and_writes_them_back(tmp_path: Path) -> None:
    snapshot = tmp_path / "s.json"
    snapshot.write_text(json.dumps(small_snapshot()))
    command = [sys.executable, "-m", "reconciler", "emulator", "serve", "--port", "0",
               "--snapshot", str(snapshot), "--persist",
               "--max-proficiencies-per-user", "3", "--max-attributes", "40"]  # fmt: skip
    # A shell without job control starts background jobs with SIGINT ignored,
    # and the child would inherit that: give it the default, as a terminal would.
    server = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=interruptible,
    )
    try:
        assert server.stdout is not None
        assert server.stdout.readline().startswith("Connect emulator at http://")
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=20)
    assert json.loads(snapshot.read_text())["Quotas"] == {
        "ProficienciesPerUser": 3,
        "PredefinedAttributesPerInstance": 40,
    }


def test_serve_refuses_a_quota_below_one(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", "emulator", "serve", "--max-attributes", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1  # a usage error: 2 means something else here
    assert "--max-attributes" in result.stderr


def test_serve_refuses_a_malformed_snapshot_with_exit_1(tmp_path: Path) -> None:
    snapshot = tmp_path / "s.json"
    snapshot.write_text(json.dumps({**small_snapshot(), "Users": None}))
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", "emulator", "serve", "--snapshot", str(snapshot)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr == f"error: {snapshot}: Users: expected a list, got null\n"
