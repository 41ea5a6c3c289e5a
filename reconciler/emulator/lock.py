"""Exclusive use of a snapshot file by one apply, from its read to its write-back.

The lock is `flock` on a lock file next to the snapshot (FILE.lock), which
records the holder's pid and start time for whoever has to wait. The kernel
releases it when the holder exits, even by SIGKILL, so a crash never leaves a
stale lock; the lock file itself stays (removing it would let a waiter lock a
file nobody else sees). The write-back is a compare-and-swap: it refuses if
FILE's bytes changed since they were read (an edit by hand, a tool that does
not lock), and it is checked to be possible before the first change is made.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

# How long a waiting apply sleeps between attempts at most.
_POLL_SECONDS = 0.2


class LockError(Exception):
    """The snapshot cannot be locked or written back (exit 1)."""


def file_digest(path: Path) -> str:
    """sha256 of the file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


class SnapshotLock:
    """Holds FILE.lock for one apply; a second waits up to `timeout` seconds."""

    def __init__(
        self,
        snapshot: Path,
        timeout: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.snapshot = snapshot
        self.path = snapshot.with_name(snapshot.name + ".lock")
        self.timeout = timeout
        self._clock = clock
        self._sleep = sleep
        self._file: IO[str] | None = None
        self.read_digest: str | None = None

    def __enter__(self) -> SnapshotLock:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock (waiting up to the timeout), then check FILE can be
        written back, and remember its digest for the compare-and-swap."""
        links = self.snapshot.stat().st_nlink if self.snapshot.exists() else 1
        if links > 1:
            # The write-back renames a new file over this name: its other
            # names would keep the old state, and a lock by any name or inode
            # would stop holding across that rename.
            raise LockError(
                f"{self.snapshot} has {links} hard links: apply writes it back by renaming a new "
                "file over it, which would split them; keep one name (or use a symbolic link)"
            )
        try:
            handle = self.path.open("a+", encoding="utf-8")
        except OSError as exc:
            raise LockError(
                f"cannot lock {self.snapshot}: cannot create {self.path} ({exc.strerror}); "
                "nothing was changed"
            ) from None
        deadline = self._clock() + self.timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    holder = self.holder()
                    handle.close()
                    raise LockError(
                        f"{self.snapshot} is locked by another apply ({holder}); "
                        "wait for it or pass --lock-timeout SECONDS"
                    ) from None
                self._sleep(min(_POLL_SECONDS, remaining))
        self._file = handle
        handle.seek(0)
        handle.truncate()
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        handle.write(json.dumps({"pid": os.getpid(), "started": started}) + "\n")
        handle.flush()
        try:
            self._check_writable()
            self.read_digest = file_digest(self.snapshot) if self.snapshot.exists() else None
        except BaseException:
            self.release()
            raise

    def holder(self) -> str:
        """ "pid 123, since 2026-…Z" from the lock file, as far as it says."""
        try:
            record = json.loads(self.path.read_text(encoding="utf-8"))
            return f"pid {record['pid']}, since {record['started']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "holder unknown: it has not written its pid yet"

    def _check_writable(self) -> None:
        # The write-back creates a temporary file next to FILE and renames it
        # over FILE: try exactly that now, before any change is made.
        try:
            descriptor, probe = tempfile.mkstemp(
                prefix=f".{self.snapshot.name}.", dir=self.snapshot.parent
            )
            os.close(descriptor)
            os.unlink(probe)
        except OSError as exc:
            raise LockError(
                f"cannot write {self.snapshot} back: {exc.strerror} in {self.snapshot.parent}; "
                "nothing was changed"
            ) from None

    def check_unchanged(self) -> None:
        """Raise LockError if FILE's bytes are not those read (compare-and-swap)."""
        now = file_digest(self.snapshot) if self.snapshot.exists() else None
        if now != self.read_digest:
            raise LockError(f"{self.snapshot} changed since this apply read it")

    def release(self) -> None:
        """Let the next apply in."""
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
