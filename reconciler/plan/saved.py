"""Saved plans (`plan --out FILE`): the plan, the manifest digest and the
fingerprints of every live object it touches, so `apply FILE` can refuse a
plan that went stale instead of silently re-planning."""

from __future__ import annotations

import json
import time
from pathlib import Path

from reconciler.atomic import write_json_atomically
from reconciler.plan.plan import Plan


class SavedPlanError(Exception):
    """A plan file that cannot be used."""


def save_plan(plan: Plan, path: Path) -> None:
    """Write `plan` to `path` atomically, with its fingerprints."""
    data = plan.to_data(with_fingerprints=True)
    data["saved_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    write_json_atomically(path, data)


def load_plan(path: Path) -> Plan:
    """Read a plan saved by save_plan."""
    try:
        return Plan.from_data(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SavedPlanError(f"{path}: not a saved plan ({exc})") from None
