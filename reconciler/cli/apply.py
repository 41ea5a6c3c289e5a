"""`apply`: plan and apply, or apply exactly a saved plan."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from reconciler.apply import Applier, Journal
from reconciler.cli.common import (
    ExitCode,
    connected,
    epilog,
    global_options,
    load_or_exit,
    options,
    prompt,
    use_color,
)
from reconciler.cli.plan import narrowing_options, narrowing_or_exit, read_option
from reconciler.connect.lock import LockError, SnapshotLock
from reconciler.connect.target import Connection, emulator_snapshot
from reconciler.manifest import Manifest
from reconciler.plan.plan import Plan
from reconciler.plan.planner import Narrowing, make_plan
from reconciler.plan.render import TextRenderer
from reconciler.plan.saved import (
    RefusedPlan,
    SavedPlanError,
    check_saved_plan,
    load_plan,
    reread,
    stale_objects,
)


def saved_plan_or_exit(
    path: Path, manifest: Manifest, region: str | None, connection: Connection
) -> Plan:
    """The saved plan if it is exactly what would be applied now; else the
    reasons and exit 4 (exit 1 if the file cannot be read)."""
    try:
        saved = load_plan(path)
        check_saved_plan(saved, manifest, region, connection.reader)
    except OSError as exc:
        click.echo(f"error: cannot read {path}: {exc.strerror or exc}", err=True)
        sys.exit(ExitCode.ERROR)
    except SavedPlanError as exc:
        click.echo(f"refusing to apply: {exc}", err=True)
        sys.exit(ExitCode.STALE_PLAN)
    except RefusedPlan as refused:
        click.echo(f"refusing to apply {path}: {refused.reason} (run plan again):", err=True)
        for problem in refused.problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(ExitCode.STALE_PLAN)


def checked_plan(manifest: Manifest, connection: Connection, narrowing: Narrowing) -> Plan:
    """A fresh plan. One read by search may rest on a search index that
    trails writes (DESIGN §3), so every user it touches is re-read with
    ListUserProficiencies first, as for a saved plan: fail closed (exit 4)."""
    plan = make_plan(manifest, connection.reader, narrowing)
    if plan.read is not None and plan.read.strategy == "search" and not plan.errors:
        stale = stale_objects(plan, reread(plan, manifest, connection.reader))
        if stale:
            click.echo("refusing to apply the plan: it is stale (run plan again):", err=True)
            for problem in stale:
                click.echo(f"  {problem}", err=True)
            sys.exit(ExitCode.STALE_PLAN)
    return plan


@contextmanager
def snapshot_locked_or_exit(snapshot: Path | None, timeout: float) -> Iterator[SnapshotLock | None]:
    """An emulator:FILE target locked from its read to its write-back; exit 1
    if another apply holds it past `timeout` or FILE cannot be written."""
    if snapshot is None:
        yield None
        return
    lock = SnapshotLock(snapshot, timeout)
    try:
        lock.acquire()
    except LockError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(ExitCode.ERROR)
    try:
        yield lock
    finally:
        lock.release()


def confirm_or_exit(rendered: str) -> None:
    """Show the plan and ask, as Terraform does; never wait on a non-terminal."""
    click.echo(rendered)
    if not sys.stdin.isatty():
        click.echo(
            "refusing to apply: no terminal to confirm on; "
            "review with `plan` and pass --auto-approve",
            err=True,
        )
        sys.exit(ExitCode.ERROR)
    if prompt("Apply these changes? Only 'yes' is accepted") != "yes":
        click.echo("Apply cancelled.", err=True)
        sys.exit(ExitCode.ERROR)


def default_journal() -> Path:
    """Where a journal goes when --journal is not given."""
    return Path(".connect-reconciler") / time.strftime(
        "journal-%Y%m%dT%H%M%SZ.jsonl", time.gmtime()
    )


@click.command(
    epilog=epilog(
        "0 applied or nothing to do, 1 error, 3 refused by a guard, "
        "4 stale or altered saved plan, 5 partially applied",
        "connect-reconciler apply plan.json",
    )
)
@click.argument("planfile", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--auto-approve", is_flag=True, help="Do not ask for confirmation (apply FILE never asks)."
)
@click.option("--force", is_flag=True, help="Apply even though a guard refuses.")
@click.option(
    "--parallelism",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    help="Users changed at once.",
)
@click.option(
    "--lock-timeout",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Seconds to wait for another apply to an emulator:FILE target to finish.",
)
@click.option(
    "--journal", type=click.Path(path_type=Path, dir_okay=False), help="Journal file (JSON lines)."
)
@narrowing_options
@read_option
@global_options()
@click.pass_context
def apply(
    ctx: click.Context,
    planfile: Path | None,
    auto_approve: bool,
    force: bool,
    parallelism: int,
    lock_timeout: float,
    journal: Path | None,
    users: tuple[str, ...],
    attributes: tuple[str, ...],
    changed_since: str | None,
    read: str,
) -> None:
    """Plan and apply, or apply exactly a saved PLANFILE."""
    opts = options(ctx)
    manifest = load_or_exit(opts)
    renderer = TextRenderer(color=use_color(opts))
    snapshot = emulator_snapshot(opts.target)
    with (
        snapshot_locked_or_exit(snapshot, lock_timeout) as lock,
        connected(opts, manifest) as connection,
    ):
        connection.lock = lock
        connection.reader.strategy = read
        if planfile is not None:
            if users or attributes or changed_since:
                click.echo("error: a saved plan keeps its own narrowing; drop --user/"
                           "--attribute/--changed-since", err=True)  # fmt: skip
                sys.exit(ExitCode.ERROR)
            region = opts.region or manifest.instance.region_name
            todo = saved_plan_or_exit(planfile, manifest, region, connection)
        else:
            narrowing = narrowing_or_exit(opts, manifest, connection.reader, users, attributes,
                                          changed_since)  # fmt: skip
            todo = checked_plan(manifest, connection, narrowing)
        if todo.errors:
            click.echo(renderer.render(todo))
            sys.exit(ExitCode.ERROR)
        if not todo.has_changes:
            click.echo("No changes. Connect matches the manifests.")
            sys.exit(ExitCode.OK)
        if todo.guards and not force:
            click.echo(renderer.render(todo))
            click.echo("refused by a guard; review the plan and pass --force to override", err=True)
            sys.exit(ExitCode.GUARD)
        if planfile is None and not auto_approve:  # a saved plan was reviewed: never ask
            confirm_or_exit(renderer.render(todo))
        started = time.perf_counter()
        journal_file = Journal(journal or default_journal())
        try:
            applier = Applier(connection.pacer, connection.reader, manifest.instance.instance_id,
                              journal_file, parallelism, connection.reader.progress)  # fmt: skip
            outcome = applier.apply(todo)
        finally:
            journal_file.close()
            connection.save()
    elapsed = time.perf_counter() - started
    calls = ", ".join(f"{op} {n}" for op, n in sorted(outcome.calls.items()))
    click.echo(
        f"Applied {len(outcome.applied)} change(s), {len(outcome.failed)} failed, "
        f"{len(outcome.skipped)} skipped in {elapsed:.1f} s. Calls: {calls}. "
        f"Throttles absorbed: {outcome.throttles_absorbed}. Journal: {journal_file.path}"
    )
    if not outcome.ok:
        for name, error in sorted(outcome.failed.items()):
            click.echo(f"  failed: {name}: {error}", err=True)
        for name in outcome.skipped:
            click.echo(f"  skipped: {name}", err=True)
        click.echo("Partially applied. Run apply again to finish.", err=True)
        sys.exit(ExitCode.PARTIAL)
