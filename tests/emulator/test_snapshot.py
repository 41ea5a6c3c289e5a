"""Snapshots: the API's own shapes in, the same out, written atomically."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from reconciler.emulator import (
    SnapshotError,
    backend_from_snapshot,
    load_snapshot,
    save_snapshot,
    snapshot_of,
)
from tests.conftest import ROOT, small_snapshot


def test_round_trip_keeps_every_record(tmp_path: Path) -> None:
    original = load_snapshot(ROOT / "examples" / "demo-snapshot.json")
    path = tmp_path / "copy.json"
    save_snapshot(original, path)
    again = load_snapshot(path)
    assert snapshot_of(again) == snapshot_of(original)
    written = json.loads(path.read_text())
    source = json.loads((ROOT / "examples" / "demo-snapshot.json").read_text())
    assert written["Users"] == source["Users"]
    assert written["PredefinedAttributes"] == source["PredefinedAttributes"]


def test_hand_written_minimal_snapshot_loads(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({
        "Instance": {"Id": "i-1"},
        "PredefinedAttributes": [{"Name": "Language", "Values": {"StringList": ["English"]}, "LastModifiedTime": 1700000000}],
        "Users": [{"User": {"Username": "jane"}, "Proficiencies": [{"AttributeName": "Language", "AttributeValue": "English", "Level": 3}]}],
    }))  # fmt: skip
    backend = load_snapshot(path)
    (user,) = backend.users.values()
    assert user["User"]["Id"] and user["User"]["Arn"].startswith("arn:aws:connect:")
    assert backend.attributes["language"]["LastModifiedTime"] == 1700000000.0


def test_members_from_newer_api_versions_are_kept(tmp_path: Path) -> None:
    snapshot = small_snapshot()
    snapshot["Users"][0]["User"]["SomeFutureMember"] = {"x": 1}
    assert snapshot_of(backend_from_snapshot(snapshot))["Users"][0]["User"]["SomeFutureMember"] == {
        "x": 1
    }


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda s: s.pop("Instance"), "at least an `Instance`"),
        (
            lambda s: s["Users"][0]["Proficiencies"][0].pop("Level"),
            "Users[0].Proficiencies[0].Level: required",
        ),
        (lambda s: s["Users"][0]["User"].pop("Username"), "Users[0].User.Username: required"),
        (
            lambda s: s["PredefinedAttributes"][0].update(LastModifiedTime="yesterday"),
            "PredefinedAttributes[0]",
        ),
        (lambda s: s["Users"][1]["Proficiencies"][0].update(Level="5"), "expected a number"),
    ],
)
def test_invalid_snapshots_are_refused_with_the_place(tmp_path: Path, mutate, fragment) -> None:
    snapshot = small_snapshot()
    mutate(snapshot)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(snapshot))
    with pytest.raises(SnapshotError, match=re.escape(fragment)):
        load_snapshot(path)


def test_not_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{")
    with pytest.raises(SnapshotError, match=r"bad\.json"):
        load_snapshot(path)


def test_atomic_write_leaves_no_temporary_files_and_keeps_mode(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text("{}")
    path.chmod(0o640)
    save_snapshot(backend_from_snapshot(small_snapshot()), path)
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]
    assert path.stat().st_mode & 0o777 == 0o640
    assert json.loads(path.read_text())["Instance"]["Id"]
