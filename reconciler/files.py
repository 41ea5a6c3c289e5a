"""Files in and out: every input file read the same safe way, every output
written atomically (readers see the old file or the new one, never half)."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any


def write_json_atomically(path: Path, data: Any) -> None:
    """Write JSON so that readers see the old file or the new one, never half."""
    write_atomically(path, (json.dumps(data, indent=1, sort_keys=False) + "\n").encode("utf-8"))


def write_atomically(path: Path, content: bytes) -> None:
    """Write `content` so that readers see the old file or the new one, never
    half; the file keeps its permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(descriptor, mode)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# The largest plan, snapshot or manifest file read: far beyond any real one
# (a 50,000-agent snapshot is a few MiB), small enough to hold in memory.
MAX_INPUT_BYTES = 64 * 1024 * 1024


class InputFileError(Exception):
    """An input file that cannot be read safely: the message says why."""


class InputTooLarge(InputFileError):
    """An input file over MAX_INPUT_BYTES."""


def read_input(path: Path) -> bytes:
    """The bytes of a regular file of at most MAX_INPUT_BYTES. Opened without
    blocking, so a FIFO or a device is refused, never waited on or read
    forever (/dev/zero): InputFileError; OSError if it cannot be opened."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    with os.fdopen(descriptor, "rb") as handle:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise InputFileError("not a regular file (a FIFO, a device or a directory)")
        if status.st_size > MAX_INPUT_BYTES:
            raise InputTooLarge(f"the file is larger than {MAX_INPUT_BYTES:,} bytes")
        raw = handle.read(MAX_INPUT_BYTES + 1)
    if len(raw) > MAX_INPUT_BYTES:  # it grew while read
        raise InputTooLarge(f"the file is larger than {MAX_INPUT_BYTES:,} bytes")
    return raw


def read_utf8(path: Path) -> str:
    """read_input, decoded as UTF-8 (a BOM allowed); InputFileError if it is not."""
    raw = read_input(path)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputFileError(f"not UTF-8 text (byte {exc.start} is not)") from None
