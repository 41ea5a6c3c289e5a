"""`apply`: plan and apply, or apply exactly a saved plan."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from reconciler.apply import Applier, Journal
from reconciler.cli.common import (
    ExitCode,
    connected,
    global_options,
    load_or_exit,
    options,
)
from reconciler.cli.plan import narrowing_options, narrowing_or_exit
from reconciler.connect.target import Connection
from reconciler.manifest import Manifest
from reconciler.plan.plan import Plan
from reconciler.plan.planner import make_plan
from reconciler.plan.render import TextRenderer, narrowing_lines
from reconciler.plan.saved import SavedPlanError, load_plan, stale_objects


def saved_plan_or_exit(path: Path, manifest: Manifest, connection: Connection) -> Plan:
    """The saved plan if it still holds; else the reason and exit 4 (stale)."""
    try:
        saved = load_plan(path)
    except SavedPlanError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(ExitCode.ERROR)
    problems = []
    if saved.instance_id != manifest.instance.instance_id:
        problems.append(
            f"the plan is for instance {saved.instance_id}, "
            f"the manifests manage {manifest.instance.instance_id}"
        )
    elif saved.manifest_digest != manifest.digest:
        problems.append("the manifests changed since the plan was saved")
    else:
        problems = stale_objects(saved, connection.reader)
    if problems:
        click.echo(f"refusing to apply {path}: it is stale (run plan again):", err=True)
        for problem in problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(ExitCode.STALE_PLAN)
    return saved


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
    if (
        click.prompt("Apply these changes? Only 'yes' is accepted", default="", show_default=False)
        != "yes"
    ):
        click.echo("Apply cancelled.", err=True)
        sys.exit(ExitCode.ERROR)


def default_journal() -> Path:
    """Where a journal goes when --journal is not given."""
    return Path(".connect-reconciler") / time.strftime(
        "journal-%Y%m%dT%H%M%SZ.jsonl", time.gmtime()
    )


@click.command()
@click.argument("planfile", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True, help="Apply even though a guard refuses.")
@click.option(
    "--parallelism",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    help="Users changed at once.",
)
@click.option(
    "--journal", type=click.Path(path_type=Path, dir_okay=False), help="Journal file (JSON lines)."
)
@narrowing_options
@global_options
@click.pass_context
def apply(
    ctx: click.Context,
    planfile: Path | None,
    auto_approve: bool,
    force: bool,
    parallelism: int,
    journal: Path | None,
    users: tuple[str, ...],
    attributes: tuple[str, ...],
    changed_since: str | None,
) -> None:
    """Plan and apply, or apply exactly a saved PLANFILE."""
    opts = options(ctx)
    manifest = load_or_exit(opts)
    renderer = TextRenderer(color=sys.stdout.isatty())
    with connected(opts, manifest) as connection:
        if planfile is not None:
            if users or attributes or changed_since:
                click.echo("error: a saved plan keeps its own narrowing; drop --user/"
                           "--attribute/--changed-since", err=True)  # fmt: skip
                sys.exit(ExitCode.ERROR)
            todo = saved_plan_or_exit(planfile, manifest, connection)
        else:
            narrowing = narrowing_or_exit(opts, manifest, connection.reader, users, attributes,
                                          changed_since)  # fmt: skip
            todo = make_plan(manifest, connection.reader, narrowing)
        for line in narrowing_lines(todo):  # said even when nothing else is shown
            click.echo(line, err=True)
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
        if not auto_approve:
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
