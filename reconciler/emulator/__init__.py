"""A local Amazon Connect that speaks the real wire protocol (docs/design.md §4)."""

from reconciler.emulator.backend import ConnectBackend
from reconciler.emulator.server import CallStats, ConnectEmulator, FaultPlan
from reconciler.emulator.snapshot import (
    SnapshotError,
    backend_from_snapshot,
    load_snapshot,
    save_snapshot,
    snapshot_of,
)

__all__ = [
    "CallStats",
    "ConnectBackend",
    "ConnectEmulator",
    "FaultPlan",
    "SnapshotError",
    "backend_from_snapshot",
    "load_snapshot",
    "save_snapshot",
    "snapshot_of",
]
