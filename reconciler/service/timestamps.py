"""Connect's timestamps: epoch seconds on the wire, ISO 8601 in files."""

from __future__ import annotations

import datetime as dt
from typing import Any


def to_epoch(value: Any) -> float:
    """A timestamp as epoch seconds, from a number, an ISO 8601 string or a datetime."""
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return parsed.timestamp()
    raise ValueError(f"not a timestamp: {value!r}")


def to_iso(epoch: float) -> str:
    """Epoch seconds as the ISO 8601 text the AWS CLI prints."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat()
