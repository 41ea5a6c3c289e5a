"""`apply`: plan and apply, or apply exactly a saved plan."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click

from reconciler.apply import NOT_STARTED_DENIED, Applier, ApplyResult, Journal
from reconciler.cli.common import (
    ExitCode,
    connected,
    epilog,
    exit_with,
    global_options,
    load_or_exit,
    options,
    prompt,
    use_color,
)
from reconciler.cli.plan import NarrowingAsked, narrowing_options, planned_or_exit, read_option
from reconciler.emulator.lock import LockError, SnapshotLock
from reconciler.manifest import Manifest
from reconciler.plan.causes import Base
from reconciler.plan.narrowing import Narrowing
from reconciler.plan.plan import Plan
from reconciler.plan.render import narrowing_lines, no_changes_line, renderer_for
from reconciler.plan.saved import SavedPlanError, load_plan
from reconciler.plan.verify import RefusedPlan, check_reviewed_plan, check_saved_plan, fresh_plan
from reconciler.targets import Connection, emulator_snapshot


def plan_file_or_exit(
    path: Path,
    manifest: Manifest,
    region: str | None,
    connection: Connection,
    reviewed: bool,
    merged: Narrowing | None = None,
) -> Plan:
    """What to apply for the plan saved at `path`: the plan itself, if it is
    exactly what would be applied now; with `reviewed` (made on another
    commit), the plan of the manifests now, if its changes are the file's
    (narrowed to what the merge changed, `merged`, when given). Else the
    reasons (on stdout for `reviewed`, for a CI job to post) and exit 4;
    exit 1 if the file cannot be read."""
    try:
        saved = load_plan(path)
        if reviewed:
            return check_reviewed_plan(saved, manifest, region, connection.reader, merged)
        saved.guards = check_saved_plan(saved, manifest, region, connection.reader)
    except OSError as exc:
        click.echo(f"error: cannot read {path}: {exc.strerror or exc}", err=True)
        sys.exit(ExitCode.ERROR)
    except SavedPlanError as exc:
        click.echo(f"refusing to apply: {exc}", err=True)
        sys.exit(ExitCode.STALE_PLAN)
    except RefusedPlan as refused:
        refuse(str(path), refused, err=not reviewed)
    return saved


def saved_environment(path: Path) -> tuple[str, ...]:
    """The environment a saved plan names (none for a plan of a directory
    without environments, or a file that is not a plan: load_plan says so)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ()
    name = data.get("environment") if isinstance(data, dict) else None
    return (name,) if isinstance(name, str) else ()


def refuse_verify_only(manifest: Manifest) -> None:
    """Exit 1, before any call, for an environment declared `apply: false`."""
    environment = manifest.environment
    if environment is not None and not environment.apply:
        exit_with(
            f"environment {environment.name!r} is verify-only (`apply: false`, declared at "
            f"{environment.where}): plan, drift, coverage and parity read it, apply never "
            "writes to it"
        )


def refuse(what: str, refused: RefusedPlan, err: bool = True) -> NoReturn:
    """Say why `what` is not applied, one line per problem (on stdout when
    not `err`, for a CI job to post), and exit 4."""
    click.echo(f"refusing to apply {what}: {refused.reason} (run plan again):", err=err)
    for problem in refused.problems:
        click.echo(f"  {problem}", err=err)
    sys.exit(ExitCode.STALE_PLAN)


def fresh_plan_or_exit(
    manifest: Manifest,
    connection: Connection,
    narrowing: Narrowing,
    take_ownership: bool,
    base: Base | None = None,
) -> Plan:
    """A fresh plan checked as apply needs it (plan.verify), or exit 4."""
    try:
        return fresh_plan(manifest, connection.reader, narrowing, take_ownership, base)
    except RefusedPlan as refused:
        refuse("the plan", refused)


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


# Where journals go without --journal; README says to ignore it (.gitignore does).
DEFAULT_JOURNAL_DIRECTORY = Path(".connect-reconciler")


def journal_path(directory: Path) -> Path:
    """A new journal file in `directory`: UTC time and pid, so runs never share one."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return directory / f"journal-{stamp}-{os.getpid()}.jsonl"


def run_journaled(
    todo: Plan,
    connection: Connection,
    journal: Journal,
    parallelism: int,
    header: dict[str, Any],
) -> ApplyResult:
    """Apply `todo`, journaled; then write an emulator target back (also after
    a failure or Ctrl-C: what was applied is kept)."""
    journal.header(todo, **header)
    applier = Applier(connection.pacer, connection.reader, connection.instance_id, journal,
                      parallelism, connection.reader.progress)  # fmt: skip
    try:
        return applier.apply(todo)
    finally:
        journal.close()
        connection.save()


def report(outcome: ApplyResult, elapsed: float, journal: Path) -> None:
    """The summary line; what failed or was not started, and exit 5, if any."""
    calls = ", ".join(f"{op} {n}" for op, n in sorted(outcome.calls.items()))
    click.echo(
        f"Applied {len(outcome.applied)} change(s), {len(outcome.failed)} failed, "
        f"{len(outcome.skipped)} not started in {elapsed:.1f} s. Calls: {calls}. "
        f"Throttles absorbed: {outcome.throttles_absorbed}. Journal: {journal}"
    )
    if outcome.ok:
        return
    for name, error in sorted(outcome.failed.items()):
        click.echo(f"  failed: {name}: {error}", err=True)
    if outcome.skipped:
        click.echo(f"  {outcome.stopped}:", err=True)
    for name in outcome.skipped:
        click.echo(f"    {name}", err=True)
    if outcome.stopped == NOT_STARTED_DENIED:
        click.echo(
            "Partially applied and stopped: allow the denied action (docs/iam/apply-policy.json), "
            "then run apply again.",
            err=True,
        )
    else:
        click.echo("Partially applied. Run apply again to finish.", err=True)
    sys.exit(ExitCode.PARTIAL)


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
@click.option(
    "--reviewed",
    is_flag=True,
    help="PLANFILE was reviewed on another commit (a pull request): plan again and apply "
    "only if the changes are the reviewed ones; with --changed-since REF (the merge's first "
    "parent), plan what the merge changed.",
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
    "--take-ownership",
    is_flag=True,
    help="Manage users another settings.owner tagged (they are tagged with ours).",
)
@click.option(
    "--lock-timeout",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Seconds to wait for another apply to an emulator:FILE target to finish.",
)
@click.option(
    "--journal",
    type=click.Path(path_type=Path, file_okay=False),
    default=DEFAULT_JOURNAL_DIRECTORY,
    show_default=True,
    help="Directory for the journal (JSON lines, docs/journal-format.md).",
)
@narrowing_options
@read_option
@global_options()
@click.pass_context
def apply(
    ctx: click.Context,
    planfile: Path | None,
    auto_approve: bool,
    reviewed: bool,
    force: bool,
    parallelism: int,
    take_ownership: bool,
    lock_timeout: float,
    journal: Path,
    asked: NarrowingAsked,
    read: str,
) -> None:
    """Plan and apply, or apply exactly a saved PLANFILE."""
    opts = options(ctx)
    if planfile is not None and take_ownership:
        raise click.UsageError("--take-ownership is for plan: a saved plan says whom it tags")
    if reviewed and planfile is None:
        raise click.UsageError("--reviewed needs the PLANFILE that was reviewed")
    if planfile is not None and not opts.env and not opts.all_envs:
        opts.env = saved_environment(planfile)
    manifest = load_or_exit(opts, against_all=True)
    refuse_verify_only(manifest)
    region = opts.region or manifest.instance.region_name
    renderer = renderer_for("text", terminal=use_color(opts))
    snapshot = emulator_snapshot(opts.target)
    with (
        snapshot_locked_or_exit(snapshot, lock_timeout) as lock,
        connected(opts, manifest) as connection,
    ):
        connection.lock = lock
        connection.reader.strategy = read
        if planfile is not None:
            changed_since_only = asked == NarrowingAsked(changed_since=asked.changed_since)
            if (asked.given and not (reviewed and changed_since_only)) or read != "auto":
                click.echo("error: a saved plan keeps its own narrowing and read; drop --user/"
                           "--attribute/--changed-since/--base/--read (--reviewed takes "
                           "--changed-since alone)", err=True)  # fmt: skip
                sys.exit(ExitCode.ERROR)
            merged = None
            if asked.changed_since is not None:  # the narrowing only: causes are not asked
                merged = planned_or_exit(opts, manifest, connection.reader, asked, with_base=False)[
                    0
                ]
            todo = plan_file_or_exit(planfile, manifest, region, connection, reviewed, merged)
        else:
            narrowing, base = planned_or_exit(opts, manifest, connection.reader, asked)
            todo = fresh_plan_or_exit(manifest, connection, narrowing, take_ownership, base)
        for line in narrowing_lines(todo):  # said even when nothing else is shown
            click.echo(line, err=True)
        if todo.errors:
            click.echo(renderer.render(todo))
            sys.exit(ExitCode.ERROR)
        if not todo.has_changes:
            click.echo(no_changes_line(todo))
            sys.exit(ExitCode.OK)
        if todo.guards and not force:
            click.echo(renderer.render(todo))
            click.echo("refused by a guard; review the plan and pass --force to override", err=True)
            sys.exit(ExitCode.GUARD)
        if planfile is None and not auto_approve:  # a saved plan was reviewed: never ask
            confirm_or_exit(renderer.render(todo))
        else:  # as Terraform: the log of an unattended apply shows what it does
            click.echo(renderer.render(todo))
        started = time.perf_counter()
        try:
            journal_file = Journal(journal_path(journal))
        except OSError as exc:
            click.echo(f"error: cannot write a journal in {journal}: {exc.strerror}", err=True)
            sys.exit(ExitCode.ERROR)
        header = {
            "instance": connection.instance_id,
            "region": region,
            "target": opts.target,
            "owner": manifest.settings.owner,
        }
        try:
            outcome = run_journaled(todo, connection, journal_file, parallelism, header)
        except KeyboardInterrupt:
            click.echo(
                f"Interrupted: changes in flight finished, the rest not started; "
                f"run apply again to finish. Journal: {journal_file.path}",
                err=True,
            )
            sys.exit(ExitCode.INTERRUPTED)
    report(outcome, time.perf_counter() - started, journal_file.path)
