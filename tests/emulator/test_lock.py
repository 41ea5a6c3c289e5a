"""The snapshot lock: one holder, a waiter that gives up naming the holder,
a write-back probe before any change, and a compare-and-swap write-back."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from reconciler.emulator.lock import LockError, SnapshotLock
from reconciler.targets import TargetError, emulator_snapshot, open_target
from tests.conftest import INSTANCE_ID, small_snapshot


class FakeClock:
    """Time that passes only when the lock sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(small_snapshot()))
    return path


def test_a_second_lock_waits_its_timeout_then_names_the_holder(snapshot: Path) -> None:
    clock = FakeClock()
    with SnapshotLock(snapshot):
        holder = json.loads((snapshot.parent / "snapshot.json.lock").read_text())
        assert holder["pid"] == os.getpid()
        waiter = SnapshotLock(snapshot, timeout=1.0, clock=clock, sleep=clock.sleep)
        with pytest.raises(LockError) as refused:
            waiter.acquire()
    assert sum(clock.slept) == pytest.approx(1.0)
    assert f"locked by another apply (pid {os.getpid()}, since {holder['started']})" in str(
        refused.value
    )


def test_without_timeout_the_second_lock_fails_at_once(snapshot: Path) -> None:
    clock = FakeClock()
    with SnapshotLock(snapshot), pytest.raises(LockError, match="--lock-timeout"):
        SnapshotLock(snapshot, clock=clock, sleep=clock.sleep).acquire()
    assert clock.slept == []


def test_the_lock_is_free_again_after_release(snapshot: Path) -> None:
    with SnapshotLock(snapshot):
        pass
    with SnapshotLock(snapshot) as again:
        assert again.read_digest is not None


def test_an_unwritable_directory_is_refused_before_anything(snapshot: Path) -> None:
    lock_file = snapshot.parent / "snapshot.json.lock"
    lock_file.write_text("")
    # A directory where nothing can be created, even by root: a file in the way.
    blocked = SnapshotLock(snapshot.parent / "snapshot.json.lock" / "inner.json")
    with pytest.raises(LockError, match=r"cannot create .*nothing was changed"):
        blocked.acquire()


def test_the_holder_is_unknown_until_it_writes_its_pid(snapshot: Path) -> None:
    assert SnapshotLock(snapshot).holder() == "holder unknown: it has not written its pid yet"


def test_write_back_refuses_a_snapshot_changed_since_it_was_read(snapshot: Path) -> None:
    with (
        SnapshotLock(snapshot) as lock,
        open_target(f"emulator:{snapshot}", INSTANCE_ID) as connection,
    ):
        connection.lock = lock
        connection.pacer.call(
            "CreatePredefinedAttribute",
            InstanceId=INSTANCE_ID,
            Name="Tier",
            Values={"StringList": ["Gold"]},
        )
        edited = small_snapshot()
        edited["PredefinedAttributes"].pop(1)
        snapshot.write_text(json.dumps(edited))  # someone edits it meanwhile
        with pytest.raises(TargetError, match="changed since this apply read it") as refused:
            connection.save()
    kept = snapshot.with_name(f"snapshot.json.unsaved-{os.getpid()}.json")
    assert str(kept) in str(refused.value)
    assert json.loads(snapshot.read_text()) == edited  # the edit is not overwritten
    assert "Tier" in {a["Name"] for a in json.loads(kept.read_text())["PredefinedAttributes"]}


def test_write_back_under_the_lock_may_be_repeated(snapshot: Path) -> None:
    with (
        SnapshotLock(snapshot) as lock,
        open_target(f"emulator:{snapshot}", INSTANCE_ID) as connection,
    ):
        connection.lock = lock
        connection.save()
        connection.save()  # the second compares against what the first wrote


def test_a_symbolic_link_to_the_snapshot_takes_the_same_lock(snapshot: Path) -> None:
    link = snapshot.parent / "link.json"
    link.symlink_to(snapshot)
    resolved = emulator_snapshot(f"emulator:{link}")
    assert resolved == snapshot.resolve()
    clock = FakeClock()
    with SnapshotLock(snapshot), pytest.raises(LockError, match="locked by another apply"):
        SnapshotLock(resolved, clock=clock, sleep=clock.sleep).acquire()


def test_a_hard_linked_snapshot_is_refused_before_anything_changes(snapshot: Path) -> None:
    os.link(snapshot, snapshot.parent / "other-name.json")
    with pytest.raises(LockError, match="has 2 hard links"):
        SnapshotLock(snapshot).acquire()
    assert not (snapshot.parent / "snapshot.json.lock").exists()
