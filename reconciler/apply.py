"""Execute a plan: phase by phase, users concurrently, every call paced.

A write whose connection dropped may or may not have happened (AmbiguousWrite);
the applier re-reads that object and sends only what is still missing, so a
retry never applies twice nor fails on "already associated". A phase that
did not fully succeed stops the later phases (removing a value some user
still holds would fail or strand them); re-running apply re-plans from live
state and finishes the work.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from reconciler.connect.pacer import AmbiguousWrite, QuotaPacer
from reconciler.connect.reader import LiveStateReader
from reconciler.plan.changes import (
    ADD_PHASE,
    REMOVE_PHASE,
    USER_PHASE,
    AttributeChange,
    Change,
    ProficiencyEntry,
    UserProficiencyChange,
)
from reconciler.plan.plan import Plan
from reconciler.state import Attribute

log = logging.getLogger(__name__)

# How often one write is re-checked and re-sent after its outcome was unknown.
MAX_AMBIGUOUS_RETRIES = 5

_ATTRIBUTE_OPERATIONS = {
    "create_attribute": "CreatePredefinedAttribute",
    "update_attribute": "UpdatePredefinedAttribute",
    "delete_attribute": "DeletePredefinedAttribute",
}
_USER_OPERATIONS = {
    "associate": "AssociateUserProficiencies",
    "update": "UpdateUserProficiencies",
    "disassociate": "DisassociateUserProficiencies",
}


def describe(change: Change) -> str:
    """`create_attribute Tier`, `user_proficiencies jane@example.com`."""
    return (
        f"{change.kind} {change.name if isinstance(change, AttributeChange) else change.username}"
    )


class Journal:
    """JSON lines, one per API call and per change outcome; thread-safe."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, **record: Any) -> None:
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **record}
        with self._lock:
            self._file.write(json.dumps(record, default=str) + "\n")
            self._file.flush()

    def close(self) -> None:
        self._file.close()


@dataclass
class ApplyResult:
    """What happened, for the summary and the exit code."""

    applied: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # change -> error
    skipped: list[str] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    throttles_absorbed: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped


class Applier:
    """Runs a plan's changes against Connect through a QuotaPacer."""

    def __init__(
        self,
        pacer: QuotaPacer,
        reader: LiveStateReader,
        instance_id: str,
        journal: Journal,
        parallelism: int = 8,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self.pacer = pacer
        self.reader = reader
        self.instance_id = instance_id
        self.journal = journal
        self.parallelism = parallelism
        self.progress = progress or (lambda what, done, total: None)

    def apply(self, plan: Plan) -> ApplyResult:
        """Apply every change in plan order; never raises for an API error."""
        result = ApplyResult()
        calls_before = Counter(self.pacer.calls)
        retries_before = sum(self.pacer.retries.values())
        done = 0
        total = len(plan.changes)
        for phase in (ADD_PHASE, USER_PHASE, REMOVE_PHASE):
            changes = [c for c in plan.changes if c.phase == phase]
            if result.failed or result.skipped:
                result.skipped += [describe(c) for c in changes]
                for change in changes:
                    self.journal.write(
                        change=describe(change), result="skipped: an earlier phase failed"
                    )
                continue
            with ThreadPoolExecutor(
                max_workers=self.parallelism, thread_name_prefix="apply"
            ) as pool:
                for name, error in pool.map(self._run, changes):
                    done += 1
                    self.progress("Applying", done, total)
                    if error is None:
                        result.applied.append(name)
                    else:
                        result.failed[name] = error
        result.calls = Counter(self.pacer.calls) - calls_before
        result.throttles_absorbed = sum(self.pacer.retries.values()) - retries_before
        return result

    def _run(self, change: Change) -> tuple[str, str | None]:
        name = describe(change)
        started = time.perf_counter()
        try:
            if isinstance(change, AttributeChange):
                self._attribute(change)
            else:
                self._user(change)
        except (ClientError, BotoCoreError, AmbiguousWrite) as error:
            log.warning("%s failed: %s", name, error)
            self.journal.write(
                change=name, result=f"failed: {error}", duration=time.perf_counter() - started
            )
            return name, str(error)
        self.journal.write(change=name, result="applied", duration=time.perf_counter() - started)
        return name, None

    def _write(self, change: Change, operation: str, summary: str, **params: Any) -> None:
        """One paced write, journaled."""
        started = time.perf_counter()
        outcome = "ok"
        try:
            self.pacer.call(operation, InstanceId=self.instance_id, **params)
        except (ClientError, BotoCoreError, AmbiguousWrite) as error:
            outcome = "ambiguous" if isinstance(error, AmbiguousWrite) else f"error: {error}"
            raise
        finally:
            self.journal.write(
                change=describe(change),
                call=operation,
                request=summary,
                result=outcome,
                duration=time.perf_counter() - started,
            )

    # -- attributes ---------------------------------------------------------

    def _attribute(self, change: AttributeChange) -> None:
        for _ in range(MAX_AMBIGUOUS_RETRIES):
            try:
                self._attribute_call(change)
                return
            except AmbiguousWrite:
                live = self.reader.attributes({change.name}).get(change.name)
                if _attribute_matches(live, change.after):
                    return
                if change.kind == "create_attribute" and live is not None:
                    # The create did happen, but not as wanted: finish as an update.
                    change = AttributeChange(
                        "update_attribute", change.name, live, change.after, change.phase
                    )
        raise AmbiguousWrite(
            _ATTRIBUTE_OPERATIONS[change.kind],
            RuntimeError(f"{change.name}: outcome still unknown"),
        )

    def _attribute_call(self, change: AttributeChange) -> None:
        operation = _ATTRIBUTE_OPERATIONS[change.kind]
        after = change.after
        if after is None:
            self._write(change, operation, change.name, Name=change.name)
            return
        params = {
            "Name": change.name,
            "Values": {"StringList": list(after.values)},
            "Purposes": list(after.purposes),
            "AttributeConfiguration": {
                "EnableValueValidationOnAssociation": after.enable_value_validation_on_association
            },
        }
        self._write(change, operation, f"{change.name}: {len(after.values)} values", **params)

    # -- users ----------------------------------------------------------------

    def _user(self, change: UserProficiencyChange) -> None:
        for step, entries in change.steps:
            self._user_step(change, step, entries)

    def _user_step(
        self, change: UserProficiencyChange, step: str, entries: tuple[ProficiencyEntry, ...]
    ) -> None:
        pending = list(entries)
        for _ in range(MAX_AMBIGUOUS_RETRIES):
            try:
                self._write(
                    change,
                    _USER_OPERATIONS[step],
                    f"{change.username}: {len(pending)} {step}",
                    UserId=change.user_id,
                    UserProficiencies=[_request_entry(step, e) for e in pending],
                )
                return
            except AmbiguousWrite:
                held = self.reader.proficiencies(change.user_id)
                pending = [e for e in pending if not _entry_done(step, e, held)]
                if not pending:
                    return
        raise AmbiguousWrite(
            _USER_OPERATIONS[step], RuntimeError(f"{change.username}: outcome still unknown")
        )


def _request_entry(step: str, entry: ProficiencyEntry) -> dict[str, Any]:
    request: dict[str, Any] = {"AttributeName": entry.attribute, "AttributeValue": entry.value}
    if step != "disassociate":
        request["Level"] = entry.level
    return request


def _entry_done(step: str, entry: ProficiencyEntry, held: dict[tuple[str, str], float]) -> bool:
    key = (entry.attribute, entry.value)
    if step == "disassociate":
        return key not in held
    return held.get(key) == entry.level


def _attribute_matches(live: Attribute | None, wanted: Attribute | None) -> bool:
    if live is None or wanted is None:
        return live is wanted
    return (set(live.values), set(live.purposes), live.enable_value_validation_on_association) == (
        set(wanted.values),
        set(wanted.purposes),
        wanted.enable_value_validation_on_association,
    )
