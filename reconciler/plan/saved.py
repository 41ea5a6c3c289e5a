"""Saved plans (`plan --out FILE`): the plan, the manifest digest and the
fingerprints of every live object it touches, so `apply FILE` can refuse a
plan that went stale instead of silently re-planning."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from botocore.exceptions import ClientError

from reconciler.atomic import write_json_atomically
from reconciler.connect.reader import LiveStateReader
from reconciler.plan.fingerprint import attribute_fingerprint, proficiencies_fingerprint
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


def stale_objects(plan: Plan, reader: LiveStateReader) -> list[str]:
    """Every object the plan touches that changed in Connect since it was
    saved, re-reading only those objects; empty when the plan still holds."""
    problems = []
    wanted = plan.fingerprints.get("attributes", {})
    live = {a.name.casefold(): a for a in reader.attributes(set(wanted)).values()} if wanted else {}
    for name, expected in sorted(wanted.items()):
        actual = attribute_fingerprint(live.get(name.casefold()))
        if actual != expected:
            problems.append(f"attribute {name}: {_how(expected, actual)} since the plan was made")
    ids = {c.username: c.user_id for c in plan.user_changes}
    users = sorted(plan.fingerprints.get("users", {}).items())
    with ThreadPoolExecutor(max_workers=reader.workers) as pool:
        actual_users = pool.map(lambda item: _user_fingerprint(reader, ids.get(item[0])), users)
        for (username, expected), actual in zip(users, actual_users, strict=True):
            if actual != expected:
                problems.append(
                    f"user {username}: proficiencies {_how(expected, actual)} "
                    "since the plan was made"
                )
    return problems


def _user_fingerprint(reader: LiveStateReader, user_id: str | None) -> str | None:
    if user_id is None:
        return None
    try:
        return proficiencies_fingerprint(reader.proficiencies(user_id))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise


def _how(expected: str | None, actual: str | None) -> str:
    if expected is None:
        return "created"
    return "deleted" if actual is None else "changed"
