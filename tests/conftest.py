"""Shared test helpers."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from reconciler.service.quotas import DEFAULT_QUOTAS

ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--read-only",
        action="store_true",
        help="run only the conformance tests that make no write (safe against production)",
    )


BASE_FILES: dict[str, str | bytes] = {
    "instance.yaml": (
        "instance:\n  id: 11111111-2222-3333-4444-555555555555\n  region: us-east-1\n"
    ),
    "attributes.yaml": (
        "predefined_attributes:\n"
        "  Language:\n"
        "    values: [English, Spanish]\n"
        "  Skill:\n"
        "    values: [Billing, Payments]\n"
        "proficiency_sets:\n"
        "  bilingual:\n"
        "    Language: {English: 4, Spanish: 4}\n"
    ),
}


def write_config(directory: Path, files: dict[str, str | bytes], base: bool = True) -> Path:
    """Write manifest files (over the small valid base unless base=False)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in {**(BASE_FILES if base else {}), **files}.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return directory


class ManualClock:
    """A clock that moves only when someone sleeps on it: pacing tests share
    one between client and emulator, so machine load cannot change what
    they see."""

    def __init__(self) -> None:
        self.now = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        # A real sleep always lets some time pass; a wait of a rounding
        # error's size must too, or a token bucket would spin on it.
        with self._lock:
            self.now += max(seconds, 1e-6)


def interruptible() -> None:
    """preexec_fn for a child a test interrupts: Ctrl-C as at a terminal. A
    shell running the suite in the background hands children SIGINT ignored,
    and a child that ignores it never sees the test's SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` as a test author; its standard output."""
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout


def unprivileged() -> list[str]:
    """A command prefix that runs a child as nobody when the tests run as
    root (root ignores file modes); setpriv keeps the interpreter reachable."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot drop privileges")
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty `config/` in a temporary working directory."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "config"
    path.mkdir()
    return path


# -- the Connect emulator -----------------------------------------------------

INSTANCE_ID = "11111111-2222-3333-4444-555555555555"
INSTANCE_ARN = f"arn:aws:connect:us-east-1:123456789012:instance/{INSTANCE_ID}"


def small_snapshot() -> dict:
    """A small instance: two attributes, three users, profiles, a hierarchy."""

    def user(
        name: str, profile: str, group: str, proficiencies: list[tuple[str, str, float]]
    ) -> dict:
        return {
            "User": {
                "Id": f"id-{name}",
                "Username": name,
                "RoutingProfileId": profile,
                "HierarchyGroupId": group,
                "SecurityProfileIds": ["sp-agent"],
                "IdentityInfo": {"FirstName": name.title(), "LastName": "Example"},
            },
            "Proficiencies": [
                {"AttributeName": a, "AttributeValue": v, "Level": level}
                for a, v, level in proficiencies
            ],
        }

    return {
        "Instance": {
            "Id": INSTANCE_ID,
            "Arn": INSTANCE_ARN,
            "InstanceStatus": "ACTIVE",
            "CreatedTime": "2024-01-01T00:00:00+00:00",
        },
        "PredefinedAttributes": [
            {"Name": "Language", "Values": {"StringList": ["English", "Spanish", "French"]}},
            {"Name": "Skill", "Values": {"StringList": ["Billing", "Payments"]}},
            {"Name": "connect:Subtype", "Values": {"StringList": ["connect:Chat"]}},
        ],
        "RoutingProfiles": [
            {"Id": "rp-basic", "Name": "Basic Routing Profile"},
            {"Id": "rp-spanish", "Name": "Spanish Support"},
        ],
        "UserHierarchyGroups": [
            {"Id": "hg-emea", "Name": "EMEA", "LevelId": "1"},
            {
                "Id": "hg-dublin",
                "Name": "Dublin",
                "LevelId": "2",
                "HierarchyPath": {"LevelOne": {"Id": "hg-emea", "Name": "EMEA"}},
            },
        ],
        "Users": [
            user(
                "jane",
                "rp-spanish",
                "hg-dublin",
                [("Language", "Spanish", 4.0), ("Skill", "Billing", 3.0)],
            ),
            user("joe", "rp-basic", "hg-emea", [("Language", "English", 5.0)]),
            user("ann", "rp-basic", "hg-dublin", []),
        ],
    }


@pytest.fixture(scope="session")
def emulator_server():
    """One emulator for the session, checking every response against the
    model; tests give it a fresh backend each (see `connect`)."""
    from reconciler.emulator import ConnectEmulator, backend_from_snapshot

    server = ConnectEmulator(backend_from_snapshot(small_snapshot()), check_responses=True).start()
    yield server
    server.stop()
    assert server.checked_responses > 0


@pytest.fixture(scope="session")
def connect_session_client(emulator_server):
    from reconciler.connect.client import connect_client

    return connect_client(endpoint_url=emulator_server.url, emulator=True)


@pytest.fixture
def connect(emulator_server, connect_session_client):
    """(emulator, boto3 client) with the small snapshot loaded afresh."""
    from reconciler.emulator import backend_from_snapshot

    emulator_server.reset(backend_from_snapshot(small_snapshot()))
    return emulator_server, connect_session_client


# The retention team as YAML, before config/teams/retention.csv held it.
RETENTION_YAML = """users:
  grace.lewis@example.com: {sets: [retention], proficiencies: {Language: {English: 5}, Skill: {Payments: 3}}}
  henry.walker@example.com: {sets: [retention], proficiencies: {Language: {English: 4}, Skill: {Payments: 4}}}
  isabel.moreno@example.com: {sets: [retention, latam_languages]}
  jack.hall@example.com: {sets: [retention], proficiencies: {Language: {English: 5}, Skill: {Onboarding: 4, Payments: 3}}}
  chloe.young@example.com: {proficiencies: {Language: {English: 5, French: 3}, Skill: {Onboarding: 5}}}
  ethan.king@example.com: {proficiencies: {Language: {English: 4}, Skill: {Onboarding: 4, Retention: 3}}}
  zoe.wright@example.com: {sets: [retention], proficiencies: {Language: {English: 5}}}
"""  # fmt: skip


def fast_demo_config(config: Path) -> Path:
    """The demo's config/ copied to `config`, pacing every API as fast as the
    emulator answers: for tests of what is read and decided, not of pacing."""
    shutil.copytree(ROOT / "config", config)
    fast = "".join(f"    {op}: {{rate: 10000, burst: 100}}\n" for op in DEFAULT_QUOTAS)
    instance = config / "instance.yaml"
    instance.write_text(instance.read_text() + "  quotas:\n" + fast)
    return config


def demo_config_in_yaml(config: Path) -> Path:
    """The demo's config/ copied to `config` (unless there already), its
    CSV team written as YAML: the same manifests, all in YAML."""
    if not config.exists():
        shutil.copytree(ROOT / "config", config)
    (config / "teams" / "retention.csv").unlink()
    (config / "teams" / "retention.yaml").write_text(RETENTION_YAML)
    return config
