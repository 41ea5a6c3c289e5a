"""The unmodified AWS CLI against the emulator, including `emulator serve`."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.emulator import ConnectEmulator, load_snapshot
from tests.conftest import ROOT, interruptible

DEMO = ROOT / "examples" / "demo-snapshot.json"
DEMO_INSTANCE = "11111111-2222-3333-4444-555555555555"
AWS = str(Path(sys.executable).parent / "aws")
ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
    "AWS_ACCESS_KEY_ID": "emulator",
    "AWS_SECRET_ACCESS_KEY": "emulator",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
}


def aws(url: str, *args: str) -> dict:
    result = subprocess.run(
        [AWS, "connect", *args, "--endpoint-url", url, "--output", "json"],
        capture_output=True, text=True, env=ENV, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout or "{}")  # writes print nothing


@pytest.fixture(scope="module")
def demo_url():
    with ConnectEmulator(load_snapshot(DEMO), check_responses=True) as server:
        yield server.url


def test_list_predefined_attributes(demo_url) -> None:
    listed = aws(demo_url, "list-predefined-attributes", "--instance-id", DEMO_INSTANCE)
    assert {a["Name"] for a in listed["PredefinedAttributeSummaryList"]} >= {
        "Language",
        "Skill",
        "connect:Language",
    }


def test_describe_predefined_attribute(demo_url) -> None:
    described = aws(
        demo_url,
        "describe-predefined-attribute",
        "--instance-id",
        DEMO_INSTANCE,
        "--name",
        "Region",
    )
    assert described["PredefinedAttribute"]["Values"]["StringList"] == ["AMER", "EMEA", "LATAM"]


def test_list_user_proficiencies_and_search_users(demo_url) -> None:
    criteria = {
        "StringCondition": {
            "FieldName": "Username",
            "Value": "rosa.alvarez@example.com",
            "ComparisonType": "EXACT",
        }
    }
    found = aws(
        demo_url,
        "search-users",
        "--instance-id",
        DEMO_INSTANCE,
        "--search-criteria",
        json.dumps(criteria),
    )
    (user,) = found["Users"]
    listed = aws(
        demo_url, "list-user-proficiencies", "--instance-id", DEMO_INSTANCE, "--user-id", user["Id"]
    )
    assert ("Language", "Spanish", 5.0) in {
        (p["AttributeName"], p["AttributeValue"], p["Level"]) for p in listed["UserProficiencyList"]
    }


def test_emulator_serve_answers_the_cli_and_persists_on_interrupt(tmp_path: Path) -> None:
    snapshot = tmp_path / "state.json"
    shutil.copy(DEMO, snapshot)
    server = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "emulator", "serve", "--port", "0", "--snapshot", str(snapshot), "--persist"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
        # A shell's background job ignores SIGINT, and the child would inherit
        # that: give it the default so the interrupt below reaches it.
        preexec_fn=interruptible,
    )  # fmt: skip
    interrupted = False
    try:
        ready, _, _ = select.select([server.stdout], [], [], 30)
        assert ready, "the emulator printed no banner within 30 s"
        banner = server.stdout.readline()
        url = banner.split(" at ")[1].split(" ")[0]
        aws(
            url,
            "create-predefined-attribute",
            "--instance-id",
            DEMO_INSTANCE,
            "--name",
            "Channel",
            "--values",
            "StringList=Voice,Chat",
        )
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
        interrupted = True
    finally:
        if not interrupted:  # whatever failed above, the server must not outlive the test
            server.kill()
            server.wait(timeout=30)
    assert "Channel" in {
        a["Name"] for a in json.loads(snapshot.read_text())["PredefinedAttributes"]
    }
