"""Saved plan files (`plan --out FILE`): the plan, the manifest digest, the
fingerprints of every live object it touches and a digest of the whole
document, written atomically and read back whole (plan.verify checks one
against Connect before `apply FILE` runs it)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from reconciler.files import InputFileError, read_utf8, write_json_atomically
from reconciler.plan.fingerprint import touched_objects
from reconciler.plan.plan import Plan, document_digest


class SavedPlanError(Exception):
    """A plan file that is not a plan this version saved (exit 4)."""


def save_plan(plan: Plan, path: Path) -> None:
    """Write `plan` to `path` atomically, with its fingerprints."""
    data = plan.to_data(with_fingerprints=True)
    data["plan_digest"] = document_digest(data)
    data["saved_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    write_json_atomically(path, data)


def load_plan(path: Path) -> Plan:
    """Read a plan saved by save_plan. OSError when the file cannot be
    opened; SavedPlanError when it is not a complete saved plan of this
    version, or not a regular UTF-8 file of bounded size (files.read_input)."""
    try:
        text = read_utf8(path)
    except InputFileError as exc:
        raise SavedPlanError(f"{path}: not a plan file: {exc}") from None
    try:
        data = json.loads(text)
        plan = Plan.from_data(data)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SavedPlanError(f"{path}: not a saved plan of this version ({exc})") from None
    fingerprinted = data.get("fingerprints")
    if not isinstance(fingerprinted, dict) or set(fingerprinted) != {"attributes", "users"}:
        raise SavedPlanError(f"{path}: the plan has no fingerprints; save it with `plan --out`")
    if not all(
        isinstance(kind, dict)
        and all(isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in kind.items())
        for kind in fingerprinted.values()
    ):
        raise SavedPlanError(f"{path}: its fingerprints are not name -> hash maps (was it edited?)")
    attributes, users = touched_objects(plan.changes)
    users |= {tag.username for tag in plan.owner_tags}
    missing = sorted(attributes - set(fingerprinted["attributes"])) + sorted(
        users - set(fingerprinted["users"])
    )
    if missing:
        raise SavedPlanError(f"{path}: no fingerprint for {', '.join(missing)}")
    return plan
