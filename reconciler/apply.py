"""Execute a plan: phase by phase, users concurrently, every call paced.

A write whose connection dropped may or may not have happened (AmbiguousWrite);
the applier re-reads that object and sends only what is still missing, so a
retry never applies twice nor fails on "already associated"; each re-send is
a retry and draws on the pacer's retry budget. A phase that
did not fully succeed stops the later phases (removing a value some user
still holds would fail or strand them); re-running apply re-plans from live
state and finishes the work. When the service keeps failing (the pacer's
retry budget is spent) or the user presses Ctrl-C, no new change is started,
those in flight finish, and the rest is listed as not started.

Everything is journaled (docs/journal-format.md): a header, every call with
the values sent, its result and each retry, every change's outcome, and a
closing line saying completed, partial or interrupted.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from reconciler import __version__
from reconciler.connect.client import access_denied
from reconciler.connect.pacer import AmbiguousWrite, QuotaPacer, RetryBudgetExhausted
from reconciler.connect.reader import OWNER_TAG, LiveStateReader
from reconciler.plan.changes import (
    AttributeChange,
    ChangeKind,
    OwnerTag,
    Phase,
    ProficiencyEntry,
    Step,
    UserProficiencyChange,
    UserStep,
)
from reconciler.plan.plan import Plan, document_digest
from reconciler.state import Attribute

log = logging.getLogger(__name__)

# How often one write is re-checked and re-sent after its outcome was unknown.
MAX_AMBIGUOUS_RETRIES = 5
# A write refused because what this apply just wrote has not reached the
# service's checks yet is sent again, backing off from 1 s to 30 s, for at
# most this long (service seconds): the API Reference's eventual-consistency
# page says changes take "less than a few seconds", "in some cases several
# minutes".
PROPAGATION_SECONDS = 300.0
PROPAGATION_FIRST_DELAY = 1.0
PROPAGATION_MAX_DELAY = 30.0
# How long owner tags that all show another owner are waited on for ours
# (service seconds): a tag not there at all is waited on for the whole
# propagation wait, one that shows a rival's had been written since the plan.
CONTESTED_SECONDS = 10.0
# How many times a value list another writer replaced is merged and sent again.
MAX_VALUE_RESENDS = 5
# The errors the documentation says a not-yet-visible change may cause, and
# the refusals of a removal that still sees holders this apply just dropped.
# (casefolded attribute, value) an apply wrote; a value of None: the attribute itself
Written = set[tuple[str, str | None]]
_UNSEEN = {
    "ResourceNotFoundException",
    "InvalidRequestException",
    "InvalidParameterException",
    "ResourceInUseException",
}
JOURNAL_FORMAT_VERSION = "1"

NOT_STARTED_EARLIER_PHASE = "not started: an earlier phase failed"
NOT_STARTED_FAILING = "not started: the service keeps failing (retry budget spent)"
NOT_STARTED_INTERRUPTED = "not started: interrupted"
NOT_STARTED_DENIED = "not started: access denied (apply again cannot help until it is allowed)"


class OwnedElsewhere(Exception):
    """A user another configuration's owner tag holds: not changed."""


class Journal:
    """JSON lines (docs/journal-format.md), flushed line by line; thread-safe."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, type: str, **record: Any) -> None:
        """One line: its `type`, the time (UTC, ms) and `record`."""
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        line = json.dumps({"type": type, "time": now, **record}, default=str)
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def header(
        self,
        plan: Plan,
        *,
        instance: str,
        region: str | None,
        target: str,
        owner: str | None,
    ) -> None:
        """The first line: what is applied, where, by which version."""
        self.write(
            "header",
            format_version=JOURNAL_FORMAT_VERSION,
            tool_version=__version__,
            instance=instance,
            region=region,
            manifest_digest=plan.manifest_digest,
            plan_digest=document_digest(plan.to_data()),  # the JSON a reviewer saw
            target=target,
            owner=owner,
            changes=len(plan.all_changes),
        )

    def close(self) -> None:
        self._file.close()


@dataclass
class ApplyResult:
    """What happened, for the summary and the exit code."""

    applied: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # change -> error
    skipped: list[str] = field(default_factory=list)  # not started
    calls: Counter[str] = field(default_factory=Counter)
    throttles_absorbed: int = 0
    stopped: str | None = None  # why changes were left unstarted, if they were

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped

    @property
    def status(self) -> str:
        """The journal's closing status."""
        if self.stopped == NOT_STARTED_INTERRUPTED:
            return "interrupted"
        return "completed" if self.ok else "partial"


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
        self._stop_reason: str | None = None  # set once: start no more changes
        self.propagation_seconds = PROPAGATION_SECONDS
        # What this apply has written that the service may not see yet:
        # (casefolded attribute, value) it created or dropped from users; a
        # value of None stands for the attribute itself.
        self._created: Written = set()
        self._dropped: Written = set()
        self._written_lock = threading.Lock()
        # users whose owner tag another configuration won (see _confirm_claims)
        self._owned_elsewhere: dict[str, str] = {}
        # value lists this apply sent, checked once more at the end (_values_still_hold)
        self._updated: list[tuple[AttributeChange, dict[str, Any]]] = []

    def apply(self, plan: Plan) -> ApplyResult:
        """Apply every change in plan order and close the journal's record;
        never raises for an API error. Ctrl-C (SIGINT) starts nothing more:
        the changes in flight finish, the rest are listed as not started, the
        journal says `interrupted`, and KeyboardInterrupt is raised. A second
        Ctrl-C abandons the changes in flight."""
        result = ApplyResult()
        calls_before = Counter(self.pacer.calls)
        retries_before = sum(self.pacer.retries.values())
        try:
            with self._interruptible():
                self._phases(plan, result)
        finally:
            result.calls = Counter(self.pacer.calls) - calls_before
            result.throttles_absorbed = sum(self.pacer.retries.values()) - retries_before
            if self._stop_reason == NOT_STARTED_INTERRUPTED:
                result.stopped = NOT_STARTED_INTERRUPTED
                done = {*result.applied, *result.failed, *result.skipped}
                result.skipped += [c.identity for c in plan.all_changes if c.identity not in done]
            self.journal.write(
                "end",
                status=result.status,
                applied=len(result.applied),
                failed=sorted(result.failed),
                not_started=list(result.skipped),
                reason=result.stopped,
            )
        if result.stopped == NOT_STARTED_INTERRUPTED:
            raise KeyboardInterrupt
        return result

    @contextmanager
    def _interruptible(self) -> Iterator[None]:
        """While applying, the first SIGINT only stops new changes (a
        KeyboardInterrupt could land anywhere, even between a worker's call
        and its journal line); the second one interrupts at once."""
        if threading.current_thread() is not threading.main_thread():
            yield  # signal handlers belong to the main thread
            return

        def stop(signum: int, frame: FrameType | None) -> None:
            log.warning("interrupted: starting nothing more; Ctrl-C again to abandon")
            self._stop_reason = NOT_STARTED_INTERRUPTED
            signal.signal(signal.SIGINT, previous)

        previous = signal.signal(signal.SIGINT, stop)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _phases(self, plan: Plan, result: ApplyResult) -> None:
        done = 0
        steps = plan.all_changes
        total = len(steps)
        # Phase by phase; owner tags first: claim the users before changing them.
        for phase in Phase:
            changes = [c for c in steps if c.phase == phase]
            if self._stop_reason == NOT_STARTED_INTERRUPTED:
                return  # apply lists what is left
            if changes and (result.failed or result.skipped):
                reason = self._stop_reason or NOT_STARTED_EARLIER_PHASE
                result.stopped = result.stopped or reason
                for change in changes:
                    self._journal_change(change, "not_started", reason=reason)
                    result.skipped.append(change.identity)
                continue
            if phase == Phase.USERS:
                claimed = [c for c in steps if isinstance(c, OwnerTag)]
                self._confirm_claims([c for c in claimed if c.identity in result.applied])
            with ThreadPoolExecutor(
                max_workers=self.parallelism, thread_name_prefix="apply"
            ) as pool:
                for change, (status, detail) in zip(
                    changes, pool.map(self._run, changes), strict=True
                ):
                    done += 1
                    self.progress("Applying", done, total)
                    if status == "applied":
                        result.applied.append(change.identity)
                    elif status == "failed":
                        result.failed[change.identity] = detail
                    else:
                        result.skipped.append(change.identity)
                        result.stopped = detail
        if self._stop_reason != NOT_STARTED_INTERRUPTED:
            self._values_still_hold(result)

    def _values_still_hold(self, result: ApplyResult) -> None:
        """Another writer's whole list, built from a read that missed ours,
        may land after our read-back found ours there, and the agents this
        apply then gave our values keep them without the list holding them.
        So every list this apply sent is read back once more at the end, and
        repaired as right after the write."""

        def hold(sent: tuple[AttributeChange, dict[str, Any]]) -> str | None:
            try:
                self._values_hold(*sent)
            except (ClientError, BotoCoreError, AmbiguousWrite) as error:
                return str(error)
            return None

        with ThreadPoolExecutor(max_workers=self.parallelism, thread_name_prefix="hold") as pool:
            for (change, _), error in zip(
                self._updated, pool.map(hold, self._updated), strict=True
            ):
                if error is not None:
                    log.warning("%s failed: %s", change.identity, error)
                    self._journal_change(change, "failed", error=error)
                    if change.identity in result.applied:
                        result.applied.remove(change.identity)
                    result.failed[change.identity] = error

    def _journal_change(self, change: Step, result: str, **details: Any) -> None:
        self.journal.write("change", change=change.identity, result=result, **details)

    def _run(self, change: Step) -> tuple[str, str]:
        """Apply one change: ("applied", ""), ("failed", error) or
        ("not_started", why)."""
        if self._stop_reason is not None:
            self._journal_change(change, "not_started", reason=self._stop_reason)
            return "not_started", self._stop_reason
        started = time.perf_counter()
        try:
            if isinstance(change, OwnerTag):
                self._tag(change)
            elif isinstance(change, AttributeChange):
                self._attribute(change)
            else:
                self._user(change)
        except (ClientError, BotoCoreError, AmbiguousWrite, OwnedElsewhere) as error:
            log.warning("%s failed: %s", change.identity, error)
            denied = access_denied(error)
            if self._stop_reason is None and (denied or isinstance(error, RetryBudgetExhausted)):
                # Denied: every other write of this kind would be too; stop at once.
                self._stop_reason = NOT_STARTED_DENIED if denied else NOT_STARTED_FAILING
            message = denied or str(error)
            duration = round(time.perf_counter() - started, 3)
            self._journal_change(change, "failed", error=message, duration=duration)
            return "failed", message
        self._journal_change(change, "applied", duration=round(time.perf_counter() - started, 3))
        return "applied", ""

    def _write(self, change: Step, operation: str, on_instance: bool = True, **params: Any) -> None:
        """One paced write (of the instance's, unless `on_instance` is False:
        TagResource names its resource by ARN), journaled with the values
        sent and every retry."""
        name = change.identity
        started = time.perf_counter()

        def retried(attempt: int, error: Exception, delay: float) -> None:
            self.journal.write(
                "retry",
                change=name,
                operation=operation,
                attempt=attempt,
                error=str(error),
                delay=round(delay / self.pacer.time_scale, 3),
            )

        outcome: dict[str, Any] = {"result": "ok"}
        try:
            instance = {"InstanceId": self.instance_id} if on_instance else {}
            self.pacer.call(operation, on_retry=retried, **instance, **params)
        except (ClientError, BotoCoreError, AmbiguousWrite) as error:
            outcome = {
                "result": "ambiguous" if isinstance(error, AmbiguousWrite) else "error",
                "error": str(error),
            }
            raise
        finally:
            self.journal.write(
                "call",
                change=name,
                operation=operation,
                request=params,
                **outcome,
                duration=round(time.perf_counter() - started, 3),
            )

    def _propagated(
        self,
        change: Step,
        relies_on: Written,
        written: Written,
        operation: str,
        **params: Any,
    ) -> None:
        """One write; refused while something it relies on that this apply
        just wrote (`relies_on` & `written`) may not have reached the
        service's checks, it is sent again with bounded backoff. These
        retries are journaled (`propagation`) and draw nothing from the
        retry budget: the service is not failing, only catching up. A value
        this apply did not write is never retried so."""
        pauses = self._propagation_pauses()
        attempt = 0
        while True:
            try:
                self._write(change, operation, **params)
                return
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code")
                with self._written_lock:
                    ours = bool(relies_on & written)
                pause = next(pauses, None) if code in _UNSEEN and ours else None
                if pause is None:
                    raise
                refusal = str(error)
            attempt += 1
            self.journal.write("retry", change=change.identity, operation=operation,
                               attempt=attempt, error=refusal, delay=round(pause, 3),
                               propagation=True)  # fmt: skip
            log.info("%s: %s not visible yet; again in %.1f s", change.identity, operation, pause)
            self.pacer.pause(pause)

    def _propagation_pauses(self) -> Iterator[float]:
        """How long to wait for a write to show, one pause after another:
        1 s doubling to 30 s, until `propagation_seconds` are spent (the
        caller sleeps each)."""
        waited, delay = 0.0, PROPAGATION_FIRST_DELAY
        while waited < self.propagation_seconds:
            pause = min(delay, self.propagation_seconds - waited)
            yield pause
            waited += pause
            delay = min(delay * 2, PROPAGATION_MAX_DELAY)

    def _before_resend(self, attempt: int, unknown: AmbiguousWrite) -> None:
        """A re-send after an unknown outcome is a retry: it draws on the
        retry budget (RetryBudgetExhausted when spent); none after the last."""
        if attempt < MAX_AMBIGUOUS_RETRIES:
            self.pacer.spend_retry(unknown.operation, unknown.cause)

    # -- owner tags -----------------------------------------------------------

    def _tag(self, tag: OwnerTag) -> None:
        # Tagging again with the same value changes nothing: an unknown
        # outcome is simply sent again.
        for attempt in range(1, MAX_AMBIGUOUS_RETRIES + 1):
            try:
                self._write(
                    tag,
                    tag.kind.operation,
                    on_instance=False,
                    resourceArn=tag.arn,
                    tags={OWNER_TAG: tag.owner},
                )
                return
            except AmbiguousWrite as unknown:
                self._before_resend(attempt, unknown)
        raise AmbiguousWrite(
            tag.kind.operation, RuntimeError(f"{tag.username}: outcome still unknown")
        )

    def _confirm_claims(self, tags: list[OwnerTag]) -> None:
        """Ownership that holds when two configurations claim one agent at
        once: last writer wins the tag. The tags this apply wrote are read
        back (ListTagsForResource) until they show, as any write may take a
        while to be seen: a tag still not ours once twice as long has passed
        as the first of ours took to show was overwritten, and so were tags
        that all show another owner for CONTESTED_SECONDS (bounded by the
        propagation wait). Then, after as long again as ours took, each is
        read once more: a rival's tag written as late is visible by then. A
        user whose tag is not ours is not changed (OwnedElsewhere)."""
        if not tags:
            return
        owner_of = {tag.username: self._owner(tag) for tag in tags}
        unseen = [t for t in tags if owner_of[t.username] != t.owner]
        first_seen = 0.0 if len(unseen) < len(tags) else None
        waited = 0.0
        for pause in self._propagation_pauses():
            if not unseen:
                break
            if first_seen is not None and waited >= 2 * first_seen + PROPAGATION_FIRST_DELAY:
                break  # ours show elsewhere: these were overwritten
            if waited >= CONTESTED_SECONDS and all(owner_of[t.username] for t in unseen):
                break  # every one shows another owner's tag, none of ours ever did
            self.pacer.pause(pause)
            waited += pause
            for tag in unseen:
                owner_of[tag.username] = self._owner(tag)
            still = [t for t in unseen if owner_of[t.username] != t.owner]
            if first_seen is None and len(still) < len(unseen):
                first_seen = waited
            unseen = still
        settle = first_seen if first_seen is not None else min(waited, CONTESTED_SECONDS)
        self.pacer.pause(max(settle, PROPAGATION_FIRST_DELAY))
        owner_of = {tag.username: self._owner(tag) for tag in tags}
        for tag in tags:
            holder = owner_of[tag.username]
            if holder != tag.owner:
                self._owned_elsewhere[tag.username] = holder or "nobody (the tag is gone)"
                self.journal.write("lost_claim", change=tag.identity, owner=holder)

    def _owner(self, tag: OwnerTag) -> str | None:
        """The user's owner tag as read now; unreadable counts as not ours."""
        try:
            tags = self.pacer.call("ListTagsForResource", resourceArn=tag.arn).get("tags") or {}
        except (ClientError, BotoCoreError) as error:
            return f"unknown: its tags cannot be read ({error})"
        owner = tags.get(OWNER_TAG)
        return None if owner is None else str(owner)

    # -- attributes ---------------------------------------------------------

    def _attribute(self, change: AttributeChange) -> None:
        for attempt in range(1, MAX_AMBIGUOUS_RETRIES + 1):
            try:
                self._attribute_call(change)
                return
            except AmbiguousWrite as unknown:
                live = self.reader.attributes({change.name}).get(change.name)
                if _attribute_matches(live, change.after):
                    return
                self._before_resend(attempt, unknown)
                if change.kind is ChangeKind.CREATE_ATTRIBUTE and live is not None:
                    # The create did happen, but not as wanted: finish as an update.
                    change = AttributeChange(
                        ChangeKind.UPDATE_ATTRIBUTE, change.name, live, change.after, change.phase
                    )
        raise AmbiguousWrite(
            change.kind.operation,
            RuntimeError(f"{change.name}: outcome still unknown"),
        )

    def _attribute_call(self, change: AttributeChange) -> None:
        operation = change.kind.operation
        after = change.after
        folded = change.name.casefold()
        relies_on = _relied_on(change)
        if after is None:
            self._propagated(change, relies_on, self._dropped, operation, Name=change.name)
            return
        values = list(after.values)
        if change.kind is ChangeKind.UPDATE_ATTRIBUTE:
            values = self._values_now(change)
        params: dict[str, Any] = {
            "Name": change.name,
            "Values": {"StringList": values},
            "Purposes": list(after.purposes),
            "AttributeConfiguration": {
                "EnableValueValidationOnAssociation": after.enable_value_validation_on_association
            },
        }
        try:
            if change.kind is ChangeKind.UPDATE_ATTRIBUTE:
                params = self._sent_values(change, params)
            else:
                self._propagated(
                    change, relies_on, self._dropped | self._created, operation, **params
                )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if (
                change.kind is not ChangeKind.CREATE_ATTRIBUTE
                or code != "DuplicateResourceException"
            ):
                raise
            # Another apply created it meanwhile: done if it is what we want,
            # else finish as an update of what is there now, once it shows.
            live = self._visible(change.name)
            with self._written_lock:  # it exists (the service said so): its users may wait for it
                self._created |= {(folded, None)} | {(folded, v) for v in after.values}
            if not _attribute_matches(live, after):
                self._attribute_call(
                    AttributeChange(
                        ChangeKind.UPDATE_ATTRIBUTE, change.name, live, after, change.phase
                    )
                )
            return
        with self._written_lock:
            made = change.added_values if change.before else list(after.values)
            # the attribute itself only when this apply created it
            itself = {(folded, None)} if change.kind is ChangeKind.CREATE_ATTRIBUTE else set()
            self._created |= itself | {(folded, v) for v in made}
        if change.kind is ChangeKind.UPDATE_ATTRIBUTE:
            self._values_hold(change, params)
            with self._written_lock:
                self._updated.append((change, params))

    def _sent_values(self, change: AttributeChange, params: dict[str, Any]) -> dict[str, Any]:
        """Send an update's value list; the parameters sent. A list refused
        while a fresh read shows values it lacks was built from a read that
        trailed another writer's (the service may refuse to drop a value an
        agent holds): it is merged again and re-sent, backing off, bounded."""
        sent = params["Values"]["StringList"]
        resends = zip(range(1, MAX_VALUE_RESENDS + 1), self._propagation_pauses(), strict=False)
        while True:
            try:
                self._propagated(
                    change, _relied_on(change), self._dropped | self._created,
                    change.kind.operation, **params,
                )  # fmt: skip
                return params
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code")
                resend = next(resends, None) if code in _UNSEEN else None
                if resend is None:
                    raise
                attempt, pause = resend
                fresh = self._values_now(change)
                if set(fresh) == set(sent):
                    self.pacer.pause(pause)  # the read may trail the other write too
                    fresh = self._values_now(change)
                if set(fresh) == set(sent):
                    raise
                self.journal.write("retry", change=change.identity,
                                   operation=change.kind.operation, attempt=attempt,
                                   error=str(error), delay=pause, propagation=True)  # fmt: skip
                sent, params = fresh, {**params, "Values": {"StringList": fresh}}

    def _values_hold(self, change: AttributeChange, params: dict[str, Any]) -> None:
        """A value list sent while another writer sent theirs, both from a
        read that saw neither, loses one: last writer wins. So the list is
        read back after a pause, and once it shows what was sent, after as
        long again once more; a value of ours missing is merged into the
        list as it is then and sent again (backing off, bounded), as the
        other writer does with theirs."""
        resends = zip(range(1, MAX_VALUE_RESENDS + 1), self._propagation_pauses(), strict=False)
        for attempt, delay in resends:
            self.pacer.pause(delay)
            if self._shows(change):
                self.pacer.pause(delay)  # a rival's list sent as late shows by now
                if self._shows(change):
                    return
            params = {**params, "Values": {"StringList": self._values_now(change)}}
            self.journal.write("retry", change=change.identity, operation=change.kind.operation,
                               attempt=attempt, error="the value list does not show ours",
                               delay=delay, propagation=True)  # fmt: skip
            params = self._sent_values(change, params)

    def _visible(self, name: str) -> Attribute | None:
        """The attribute as described once it shows (it exists: the service
        said so), backing off for at most the propagation wait."""
        live = self.reader.attribute(name)
        for pause in self._propagation_pauses():
            if live is not None:
                break
            self.pacer.pause(pause)
            live = self.reader.attribute(name)
        return live

    def _shows(self, change: AttributeChange) -> bool:
        """Whether the attribute now holds the values `change` adds and none it removes."""
        now = self.reader.attribute(change.name)
        held = set(now.values) if now else set()
        return set(change.added_values) <= held and not set(change.removed_values) & held

    def _values_now(self, change: AttributeChange) -> list[str]:
        """The value list to send for an update: the plan's additions and
        removals applied to the attribute as DescribePredefinedAttribute gives
        it now, not as the plan read it. The API takes only whole lists, so a
        value another writer added since is kept (and journaled), never
        dropped; connect:Language's changes only ever add."""
        now = self.reader.attribute(change.name)
        current = list(now.values) if now else list(change.before.values if change.before else ())
        removed = set(change.removed_values)
        seen = set(change.before.values) if change.before else set()
        others = [v for v in current if v not in seen]
        if others:
            log.info("%s: keeping value(s) added since the plan: %s", change.name, others)
            self.journal.write("kept_values", change=change.identity, values=others)
        return [v for v in current if v not in removed] + [
            v for v in change.added_values if v not in current
        ]

    # -- users ----------------------------------------------------------------

    def _user(self, change: UserProficiencyChange) -> None:
        holder = self._owned_elsewhere.get(change.username)
        if holder is not None:
            raise OwnedElsewhere(
                f"{change.username} is owned by {holder!r} (tag {OWNER_TAG}): another "
                "configuration claimed it at the same time and its tag won; not changed"
            )
        for step, entries in change.steps:
            self._user_step(change, step, entries)

    def _user_step(
        self, change: UserProficiencyChange, step: UserStep, entries: tuple[ProficiencyEntry, ...]
    ) -> None:
        pending = list(entries)
        for attempt in range(1, MAX_AMBIGUOUS_RETRIES + 1):
            keys: Written = {(e.attribute.casefold(), e.value) for e in pending}
            relies_on = keys | {(attribute, None) for attribute, _ in keys}
            try:
                self._propagated(
                    change,
                    relies_on,
                    self._created,
                    step.operation,
                    UserId=change.user_id,
                    UserProficiencies=[_request_entry(step, e) for e in pending],
                )
                if step is UserStep.DISASSOCIATE:
                    with self._written_lock:
                        self._dropped |= keys | {(attribute, None) for attribute, _ in keys}
                return
            except AmbiguousWrite as unknown:
                held = self.reader.proficiencies(change.user_id)
                pending = [e for e in pending if not _entry_done(step, e, held)]
                if not pending:
                    return
                self._before_resend(attempt, unknown)
        raise AmbiguousWrite(
            step.operation, RuntimeError(f"{change.username}: outcome still unknown")
        )


def _request_entry(step: UserStep, entry: ProficiencyEntry) -> dict[str, Any]:
    request: dict[str, Any] = {"AttributeName": entry.attribute, "AttributeValue": entry.value}
    if step is not UserStep.DISASSOCIATE:
        request["Level"] = entry.level
    return request


def _entry_done(
    step: UserStep, entry: ProficiencyEntry, held: dict[tuple[str, str], float]
) -> bool:
    key = (entry.attribute, entry.value)
    if step is UserStep.DISASSOCIATE:
        return key not in held
    return held.get(key) == entry.level


def _relied_on(change: AttributeChange) -> Written:
    """What an attribute write relies on: the attribute, and the values it
    removes (their holders must be gone)."""
    folded = change.name.casefold()
    removed = change.removed_values or (change.before.values if change.before else ())
    return {(folded, None)} | {(folded, v) for v in removed}


def _attribute_matches(live: Attribute | None, wanted: Attribute | None) -> bool:
    if live is None or wanted is None:
        return live is wanted
    return (set(live.values), set(live.purposes), live.enable_value_validation_on_association) == (
        set(wanted.values),
        set(wanted.purposes),
        wanted.enable_value_validation_on_association,
    )
