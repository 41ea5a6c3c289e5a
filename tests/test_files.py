"""Input files read safely (files.read_input) and through the commands that
read plans, snapshots and manifests: a clean error, never a hang or a crash."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler import files
from reconciler.cli import cli
from reconciler.files import InputFileError, InputTooLarge, read_input, read_utf8
from tests.conftest import ROOT


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.json"
    os.mkfifo(path)  # nobody writes: a blocking open or read would hang
    return path


def test_a_fifo_is_refused_without_waiting(fifo: Path) -> None:
    with pytest.raises(InputFileError, match="not a regular file"):
        read_input(fifo)


def test_a_link_to_a_device_is_refused_unread(tmp_path: Path) -> None:
    link = tmp_path / "zero.json"
    link.symlink_to("/dev/zero")
    with pytest.raises(InputFileError, match="not a regular file"):
        read_input(link)


def test_a_file_over_the_bound_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(files, "MAX_INPUT_BYTES", 10)
    big = tmp_path / "big.json"
    big.write_text("x" * 11)
    with pytest.raises(InputTooLarge, match="larger than 10 bytes"):
        read_input(big)


def test_text_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    latin = tmp_path / "latin1.json"
    latin.write_bytes('{"a": "café"}'.encode("latin-1"))
    with pytest.raises(InputFileError, match="not UTF-8"):
        read_utf8(latin)


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_a_plan_that_is_not_utf8_is_not_a_plan_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").symlink_to(ROOT / "config")
    (tmp_path / "snapshot.json").write_bytes(
        (ROOT / "examples" / "demo-snapshot.json").read_bytes()
    )
    (tmp_path / "plan.json").write_bytes(b'{"format_version": "1", "x": "\xe9"}')
    result = run("apply", "plan.json", "--target", "emulator:snapshot.json")
    assert result.exit_code == 4
    assert "not a plan file: not UTF-8 text" in result.output and "Traceback" not in result.output


def test_show_and_plan_refuse_devices_and_fifos_cleanly(tmp_path: Path, fifo: Path) -> None:
    shown = run("show", "/dev/zero")
    assert shown.exit_code in (1, 4) and "not a regular file" in shown.output
    planned = run("plan", "--config", str(ROOT / "config"), "--target", f"emulator:{fifo}")
    assert planned.exit_code == 1 and "not a regular file" in planned.output
