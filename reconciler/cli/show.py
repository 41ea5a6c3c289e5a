"""`show FILE`: render a saved plan without reading Connect."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from reconciler.cli.common import LOGGING, ExitCode, epilog, global_options, options, use_color
from reconciler.plan.render import RENDERERS, renderer_for
from reconciler.plan.saved import SavedPlanError, load_plan


@click.command(
    epilog=epilog(
        "0 shown, 1 the file cannot be read or is not a saved plan",
        "connect-reconciler show plan.json --format markdown",
    )
)
@click.argument("planfile", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--format", "fmt", type=click.Choice(sorted(RENDERERS)), default="text", show_default=True
)
@global_options(*LOGGING)
@click.pass_context
def show(ctx: click.Context, planfile: Path, fmt: str) -> None:
    """Render the plan saved in PLANFILE (offline: Connect is not read)."""
    opts = options(ctx)
    try:
        saved = load_plan(planfile)
    except OSError as exc:
        click.echo(f"error: cannot read {planfile}: {exc.strerror or exc}", err=True)
        sys.exit(ExitCode.ERROR)
    except SavedPlanError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(ExitCode.ERROR)
    renderer = renderer_for(fmt, terminal=use_color(opts))
    click.echo(renderer.render(saved))
