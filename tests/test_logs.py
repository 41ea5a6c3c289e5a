"""No log level prints credentials, signatures or session tokens (docs/design.md §2)."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import cli
from reconciler.emulator import ConnectEmulator, load_snapshot
from reconciler.logs import REDACTED, RedactingFilter, redact
from reconciler.service.quotas import DEFAULT_QUOTAS
from tests.conftest import ROOT

DEMO = ROOT / "examples" / "demo-snapshot.json"
KEY_ID = "AKIAFAKEKEYID0000001"
SECRET = "fakeSecretAccessKey/0123456789abcdefghijklmn"
TOKEN = "FwoGZXIvYXdzEFakeSessionToken0123456789+/=abcdefghijklmnopqrstuvwxyz"


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_SESSION_TOKEN": TOKEN,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "config", tmp_path / "config")
    # The emulator does not throttle here: pace at 1000/s, not the real 2/s.
    fast = "".join(f"    {op}: {{rate: 1000, burst: 100}}\n" for op in DEFAULT_QUOTAS)
    (tmp_path / "config" / "quotas.yaml").write_text(f"settings:\n  quotas:\n{fast}")


def assert_no_secrets(output: str) -> None:
    assert SECRET not in output
    assert TOKEN not in output
    assert not re.search(r"Signature=[0-9a-f]{16}", output)
    assert not re.search(r"(?i)x-amz-security-token['\"]?\s*:\s*(?!\s*['\"]?\*\*\*)", output)
    assert not re.search(r"Credential=AKIA", output)


def test_plan_and_apply_at_debug_level_print_no_credentials(credentials) -> None:
    with ConnectEmulator(load_snapshot(DEMO)) as server:
        common = ["--target", "aws", "--endpoint-url", server.url, "-vv"]
        plan = CliRunner().invoke(cli, ["plan", *common])
        apply = CliRunner().invoke(cli, ["apply", "--auto-approve", *common])
    for result in (plan, apply):
        assert result.exit_code == 0, result.output
        output = result.output + result.stderr
        # botocore really signed and logged the headers: the test is not vacuous
        assert "Authorization" in output and f"{REDACTED}" in output
        assert "x-amz-security-token" in output.lower()
        assert_no_secrets(output)
    assert (
        server.stats.calls("AssociateUserProficiencies")
        + server.stats.calls("CreatePredefinedAttribute")
        > 0
    )


@pytest.mark.parametrize(
    "line",
    [
        f"headers={{'Authorization': b'AWS4-HMAC-SHA256 Credential={KEY_ID}/x, Signature=ab12'}}",
        f"{{'X-Amz-Security-Token': b'{TOKEN}'}}",
        f"CanonicalRequest:\nx-amz-security-token:{TOKEN}\nhost:x",
        "Signature:\n0123456789abcdef0123456789abcdef",
        f"GET /x?X-Amz-Credential={KEY_ID}%2F&X-Amz-Signature=abcdef&X-Amz-Security-Token=tok",
        f"Authorization: AWS4-HMAC-SHA256 Credential={KEY_ID}/20261121, Signature=deadbeef",
    ],
)
def test_secret_headers_and_parameters_are_redacted(line: str) -> None:
    redacted = redact(line)
    assert KEY_ID not in redacted and TOKEN not in redacted
    assert "ab12" not in redacted and "deadbeef" not in redacted and "abcdef" not in redacted
    assert REDACTED in redacted


def test_configured_secrets_are_redacted_at_every_level_and_in_tracebacks(caplog) -> None:
    handler = logging.StreamHandler()
    records: list[str] = []
    handler.emit = lambda record: records.append(handler.format(record))  # type: ignore[method-assign]
    handler.addFilter(RedactingFilter([SECRET]))
    logger = logging.getLogger("tests.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR):
            logger.log(level, "key %s", SECRET)
        try:
            raise RuntimeError(f"failed with {SECRET}")
        except RuntimeError:
            logger.exception("boom")
    finally:
        logger.removeHandler(handler)
    assert len(records) == 5
    assert all(SECRET not in text for text in records)
    assert records[0] == f"key {REDACTED}"
    assert f"RuntimeError: failed with {REDACTED}" in records[4]


def test_short_values_are_not_treated_as_secrets() -> None:
    assert RedactingFilter(["abc", ""]).secrets == set()
