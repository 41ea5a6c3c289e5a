"""Where API calls go: AWS, or an embedded emulator seeded from a snapshot."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.connect.client import caller_identity, connect_client
from reconciler.connect.pacer import QuotaBuckets, QuotaPacer
from reconciler.connect.reader import LiveStateReader, Progress
from reconciler.emulator import ConnectEmulator, load_snapshot, save_snapshot
from reconciler.emulator.lock import LockError, SnapshotLock, file_digest
from reconciler.service.quotas import Quota

log = logging.getLogger(__name__)

EMULATOR_PREFIX = "emulator:"
# The embedded emulator enforces the real quotas this many times faster, and
# the pacer keeps pace: a demo or a CI plan of a snapshot runs in seconds
# while pacing and throttling behave as against AWS.
EMBEDDED_TIME_SCALE = 100.0


class TargetError(Exception):
    """A target that cannot be used (bad name, snapshot of another instance)."""


@dataclass
class Connection:
    """An open target: the paced client and, for emulator targets, the emulator."""

    instance_id: str
    pacer: QuotaPacer
    reader: LiveStateReader
    emulator: ConnectEmulator | None = None
    snapshot: Path | None = None
    lock: SnapshotLock | None = None  # held by apply from the read to the write-back

    def save(self) -> None:
        """Write an emulator target's state back to its snapshot (atomically).
        Under a lock, only if the snapshot is unchanged since it was read;
        else the state goes next to it and TargetError says where."""
        if self.emulator is None or self.snapshot is None:
            return
        if self.lock is not None:
            try:
                self.lock.check_unchanged()
            except LockError as exc:
                kept = self.snapshot.with_name(f"{self.snapshot.name}.unsaved-{os.getpid()}.json")
                save_snapshot(self.emulator.backend, kept)
                raise TargetError(
                    f"{exc}; it was not overwritten: this apply's state is in {kept}"
                ) from None
        save_snapshot(self.emulator.backend, self.snapshot)
        if self.lock is not None:
            self.lock.read_digest = file_digest(self.snapshot)


@dataclass
class QuotaGroup:
    """The instances of one account and region in a run over several
    environments: their pacers take one bucket per API, and embedded
    emulators throttle on one set, as Connect's account quotas do."""

    account: str
    region: str
    buckets: QuotaBuckets
    emulator: ConnectEmulator | None = None  # the first; the others share its buckets
    members: list[tuple[str, QuotaPacer]] = field(default_factory=list)  # (environment, pacer)


class SharedQuotas:
    """The QuotaGroup of each (account, region) a run reaches."""

    def __init__(self) -> None:
        self.groups: dict[tuple[str, str, float], QuotaGroup] = {}
        self._lock = threading.Lock()

    def join(
        self,
        account: str,
        region: str,
        overrides: dict[str, Quota],
        time_scale: float,
        member: str,
        client: Any,
        emulator: ConnectEmulator | None = None,
    ) -> QuotaPacer:
        """A pacer for `client` on the group's buckets, recorded as
        `member`'s; an embedded `emulator` throttles on the group's first
        one's buckets. Members must agree on `settings.quotas`: the quota is
        the account's, and which one came first must not decide it."""
        with self._lock:
            key = (account, region, time_scale)
            group = self.groups.get(key)
            if group is None:
                group = QuotaGroup(account, region, QuotaBuckets(overrides, time_scale))
                self.groups[key] = group
            elif group.buckets.overrides != overrides:
                raise TargetError(
                    f"{member} and {', '.join(n for n, _ in group.members)} are in account "
                    f"{account}, {region}, whose quotas they share, but their settings.quotas "
                    "differ: give them the same (in a layer they share)"
                )
            if emulator is not None:
                if group.emulator is None:
                    group.emulator = emulator
                else:
                    emulator.share_quotas(group.emulator)
            pacer = QuotaPacer(client, overrides, time_scale=time_scale, buckets=group.buckets)
            group.members.append((member, pacer))
            return pacer


@dataclass(frozen=True)
class Sharing:
    """Where a connection joins a run's shared quotas: `account` is known
    from the manifests (an ARN), the endpoint, or STS; an emulator target's
    comes from its snapshot."""

    quotas: SharedQuotas
    member: str
    account: str | None = None


def identity_check(
    target: str, profile: str | None, region: str | None, endpoint_url: str | None
) -> Callable[[], dict[str, Any]] | None:
    """Who the credentials are (STS GetCallerIdentity), for AWS's credential
    chain only: an endpoint or the emulator has no such identity."""
    if target != "aws" or endpoint_url is not None:
        return None
    return lambda: caller_identity(profile, region)


def emulator_snapshot(target: str) -> Path | None:
    """The snapshot file of an `emulator:FILE` target, symbolic links
    resolved (one lock and one write-back per file, however it is named);
    None for other targets."""
    if not target.startswith(EMULATOR_PREFIX):
        return None
    return Path(target.removeprefix(EMULATOR_PREFIX)).resolve()


@contextmanager
def open_target(
    target: str,
    instance_id: str | None,
    *,
    region: str | None = None,
    quotas: dict[str, Quota] | None = None,
    profile: str | None = None,
    endpoint_url: str | None = None,
    progress: Progress | None = None,
    max_proficiencies_per_user: int | None = None,
    sharing: Sharing | None = None,
) -> Iterator[Connection]:
    """Connect to `target` ("aws" or "emulator:SNAPSHOT.json"). The instance
    is `instance_id`, or for an emulator target the snapshot's when None.
    `max_proficiencies_per_user` (the manifest's setting, when it sets one)
    is the emulated account's cap, over the snapshot's `Quotas`. With
    `sharing`, the pacer joins the run's quota group of its account and region."""
    overrides = quotas or {}
    if target == "aws":
        if instance_id is None:
            raise TargetError(
                "which instance? give --instance-id or an `instance:` block in the manifests"
            )
        client = connect_client(region, profile, endpoint_url)
        if sharing is None:
            pacer = QuotaPacer(client, overrides)
        else:
            account = sharing.account or endpoint_url or "default"
            pacer = sharing.quotas.join(
                account, region or "default", overrides, 1.0, sharing.member, client
            )
        yield Connection(instance_id, pacer, LiveStateReader(pacer, instance_id, progress=progress))
        return
    snapshot = emulator_snapshot(target)
    if snapshot is None:
        raise TargetError(f"unknown target {target!r}: use aws or emulator:SNAPSHOT.json")
    backend = load_snapshot(snapshot, max_proficiencies_per_user=max_proficiencies_per_user)
    instance_id = instance_id or backend.instance["Id"]
    if instance_id not in (backend.instance["Id"], backend.instance.get("Arn")):
        raise TargetError(
            f"{snapshot} is a snapshot of instance {backend.instance['Id']}, "
            f"but the manifests manage {instance_id}"
        )
    emulator = ConnectEmulator(backend, quota_scale=EMBEDDED_TIME_SCALE, quotas=overrides).start()
    try:
        client = connect_client(endpoint_url=emulator.url, emulator=True)
        if sharing is None:
            pacer = QuotaPacer(client, overrides, time_scale=EMBEDDED_TIME_SCALE)
        else:
            _, _, _, region_of, account, _ = backend.instance["Arn"].split(":", 5)
            pacer = sharing.quotas.join(
                account, region_of, overrides, EMBEDDED_TIME_SCALE, sharing.member, client, emulator
            )
        reader = LiveStateReader(pacer, instance_id, progress=progress)
        yield Connection(instance_id, pacer, reader, emulator, snapshot)
    finally:
        emulator.stop()
