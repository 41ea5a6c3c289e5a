"""`emulator serve`: the local Connect emulator over HTTP."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from types import FrameType

import click

from reconciler.cli.common import LOGGING, ExitCode, epilog, global_options, options
from reconciler.emulator import (
    ConnectEmulator,
    FaultPlan,
    SnapshotError,
    load_snapshot,
    save_snapshot,
)
from reconciler.emulator.behaviour import MAX_LAG
from reconciler.emulator.server import MAX_QUOTA_SCALE
from reconciler.emulator.snapshot import MAX_QUOTA, empty_backend
from reconciler.service import limits


@click.group()
def emulator() -> None:
    """The local Connect emulator (speaks the real API; for demos and CI)."""


@emulator.command(
    epilog=epilog(
        "0 when interrupted, 1 bad options or snapshot",
        "connect-reconciler emulator serve --snapshot examples/demo-snapshot.json --port 8421",
    )
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8421, show_default=True, help="Port (0 picks a free one).")
@click.option(
    "--snapshot",
    "snapshot_path",
    type=click.Path(path_type=Path),
    help="Seed state from this snapshot.",
)
@click.option("--persist", is_flag=True, help="Write the state back to --snapshot on exit.")
@click.option(
    "--quota-scale",
    type=click.FloatRange(min=0, min_open=True, max=MAX_QUOTA_SCALE),
    help="Enforce API quotas, sped up this many times (1 = real time).",
)
@click.option(
    "--search-delay",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Seconds SearchUsers trails writes by (the service's search index may lag).",
)
@click.option(
    "--faults", default="", help="e.g. error=0.05,throttle=0.2,drop_before=0.01,latency=0.01,seed=7"
)
@click.option(
    "--behaviour",
    "behaviours",
    multiple=True,
    metavar="KEY=CHOICE",
    help="An answer where Connect's documentation is silent, e.g. "
    "list-condition=any-proficiency (repeatable; docs/emulator-fidelity.md lists them).",
)
@click.option(
    "--consistency-lag",
    type=click.FloatRange(0, MAX_LAG),
    help="Seconds a write may take to reach each read path (random per write, seeded by "
    "--behaviour seed=N; run --quota-scale times faster, like the quotas).",
)
@click.option(
    "--max-proficiencies-per-user",
    type=click.IntRange(1, MAX_QUOTA),
    help="The account's proficiencies-per-agent quota "
    f"[default: the snapshot's Quotas, else {limits.DEFAULT_MAX_PROFICIENCIES_PER_USER}].",
)
@click.option(
    "--max-attributes",
    type=click.IntRange(1, MAX_QUOTA),
    help="The account's predefined-attributes-per-instance quota "
    f"[default: the snapshot's Quotas, else {limits.DEFAULT_MAX_ATTRIBUTES_PER_INSTANCE}].",
)
@global_options(*LOGGING)
@click.pass_context
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    snapshot_path: Path | None,
    persist: bool,
    quota_scale: float | None,
    search_delay: float,
    faults: str,
    behaviours: tuple[str, ...],
    consistency_lag: float | None,
    max_proficiencies_per_user: int | None,
    max_attributes: int | None,
) -> None:
    """Serve the Connect API on HTTP until interrupted."""
    options(ctx)
    try:
        fault_plan = FaultPlan.parse(faults)
        lag = () if consistency_lag is None else (f"consistency-lag={consistency_lag}",)
        settings = {
            "behaviour": (*behaviours, *lag),
            "search_index_delay": search_delay,
            "max_proficiencies_per_user": max_proficiencies_per_user,
            "max_attributes": max_attributes,
        }
        backend = (
            load_snapshot(snapshot_path, **settings) if snapshot_path else empty_backend(**settings)
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    except SnapshotError as exc:  # a bad file, not bad usage: exit 1 as other commands
        click.echo(f"error: {exc}", err=True)
        sys.exit(ExitCode.ERROR)
    if persist and snapshot_path is None:
        raise click.UsageError("--persist needs --snapshot FILE")
    server = ConnectEmulator(
        backend, host=host, port=port, quota_scale=quota_scale, faults=fault_plan
    )
    # SIGTERM (docker stop, systemd, kill) ends it as Ctrl-C does: state is
    # saved. SIGINT too, whatever was inherited (a shell starting it in the
    # background hands it SIGINT ignored, and kill -INT would then do nothing).
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, _interrupt)
    try:
        # Inside the try: a Ctrl-C as soon as this line shows still persists.
        click.echo(
            f"Connect emulator at {server.url} (instance {backend.instance['Id']}); "
            "Ctrl-C stops it."
        )
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if persist and snapshot_path is not None:
            save_snapshot(backend, snapshot_path)
            click.echo(f"state written to {snapshot_path}")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
