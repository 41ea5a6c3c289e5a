"""`plan`: read Connect and show what apply would change."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from reconciler.cli.common import (
    ExitCode,
    connected,
    epilog,
    global_options,
    load_or_exit,
    options,
    use_color,
)
from reconciler.plan.plan import Plan
from reconciler.plan.planner import Narrowing, make_plan
from reconciler.plan.render import RENDERERS, TextRenderer
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


@click.command(
    epilog=epilog(
        "0 no changes, 1 error, 2 changes (with --detailed-exitcode), 3 a guard would refuse",
        "connect-reconciler plan --config config/ --out plan.json",
    )
)
@click.option("--out", type=click.Path(path_type=Path), help="Save the plan for `apply FILE`.")
@click.option(
    "--format", "fmt", type=click.Choice(sorted(RENDERERS)), default="text", show_default=True
)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes.")
@click.option("--user", "users", multiple=True, help="Plan only this user (repeatable).")
@click.option(
    "--attribute", "attributes", multiple=True, help="Plan only this attribute (repeatable)."
)
@global_options()
@click.pass_context
def plan(
    ctx: click.Context,
    out: Path | None,
    fmt: str,
    detailed_exitcode: bool,
    users: tuple[str, ...],
    attributes: tuple[str, ...],
) -> None:
    """Read Connect and show what apply would change."""
    opts = options(ctx)
    manifest = load_or_exit(opts, fmt)
    with connected(opts, manifest) as connection:
        result = make_plan(manifest, connection.reader, narrowing(users, attributes))
    renderer = TextRenderer(color=use_color(opts)) if fmt == "text" else RENDERERS[fmt]()
    click.echo(renderer.render(result))
    if out is not None:
        if result.errors:
            click.echo(f"not saved to {out}: the plan has errors", err=True)
        else:
            save_plan(result, out)
            click.echo(f"saved to {out}; apply it with: connect-reconciler apply {out}", err=True)
    sys.exit(plan_exit_code(result, detailed_exitcode))
