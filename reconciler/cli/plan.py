"""`plan`: read Connect and show what apply would change."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from reconciler.cli.common import (
    ExitCode,
    GlobalOptions,
    connected,
    global_options,
    load_or_exit,
    options,
)
from reconciler.plan.plan import Plan
from reconciler.plan.planner import Narrowing, make_plan
from reconciler.plan.render import RENDERERS, renderer_for
from reconciler.plan.saved import save_plan


def plan_exit_code(plan: Plan, detailed: bool) -> int:
    """DESIGN §2: 1 errors, 3 a guard would refuse, 2 changes (if asked), 0."""
    if plan.errors:
        return ExitCode.ERROR
    if plan.guards:
        return ExitCode.GUARD
    return ExitCode.CHANGES if detailed and plan.has_changes else ExitCode.OK


def narrowing(users: tuple[str, ...], attributes: tuple[str, ...]) -> Narrowing:
    """The narrowing `--user` / `--attribute` ask for (none when not given)."""
    return Narrowing(
        frozenset(users) if users else None, frozenset(attributes) if attributes else None
    )


def apply_command(out: Path, opts: GlobalOptions) -> str:
    """The command that applies the plan saved to `out` against what was read."""
    words = ["connect-reconciler", "apply", str(out), "--config", str(opts.config)]
    if opts.target != GlobalOptions.target:
        words += ["--target", opts.target]
    for option, value in (("--region", opts.region), ("--endpoint-url", opts.endpoint_url)):
        if value is not None:
            words += [option, value]
    return shlex.join(words)


@click.command()
@click.option("--out", type=click.Path(path_type=Path), help="Save the plan for `apply FILE`.")
@click.option(
    "--format", "fmt", type=click.Choice(sorted(RENDERERS)), default="text", show_default=True
)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes.")
@click.option("--user", "users", multiple=True, help="Plan only this user (repeatable).")
@click.option(
    "--attribute", "attributes", multiple=True, help="Plan only this attribute (repeatable)."
)
@click.option(
    "--take-ownership",
    is_flag=True,
    help="Manage users another settings.owner tagged (they are tagged with ours).",
)
@global_options
@click.pass_context
def plan(
    ctx: click.Context,
    out: Path | None,
    fmt: str,
    detailed_exitcode: bool,
    users: tuple[str, ...],
    attributes: tuple[str, ...],
    take_ownership: bool,
) -> None:
    """Read Connect and show what apply would change."""
    opts = options(ctx)
    manifest = load_or_exit(opts)
    with connected(opts, manifest) as connection:
        result = make_plan(
            manifest,
            connection.reader,
            narrowing(users, attributes),
            take_ownership=take_ownership,
        )
    result.region = opts.region or result.region  # the region read is the one a saved plan is for
    renderer = renderer_for(fmt, terminal=sys.stdout.isatty())
    click.echo(renderer.render(result))
    if out is not None:
        if result.errors:
            click.echo(f"not saved to {out}: the plan has errors", err=True)
        else:
            save_plan(result, out)
            click.echo(f"saved to {out}; apply it with: {apply_command(out, opts)}", err=True)
    sys.exit(plan_exit_code(result, detailed_exitcode))
