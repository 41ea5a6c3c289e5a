"""`show FILE`: render a saved plan without reading Connect."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from reconciler.cli.common import ExitCode, global_options, options
from reconciler.plan.render import RENDERERS, renderer_for
from reconciler.plan.saved import SavedPlanError, load_plan


@click.command()
@click.argument("planfile", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--format", "fmt", type=click.Choice(sorted(RENDERERS)), default="text", show_default=True
)
@global_options
@click.pass_context
def show(ctx: click.Context, planfile: Path, fmt: str) -> None:
    """Render the plan saved in PLANFILE (offline: Connect is not read)."""
    options(ctx)
    try:
        saved = load_plan(planfile)
    except OSError as exc:
        click.echo(f"error: cannot read {planfile}: {exc.strerror or exc}", err=True)
        sys.exit(ExitCode.ERROR)
    except SavedPlanError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(ExitCode.ERROR)
    renderer = renderer_for(fmt, terminal=sys.stdout.isatty())
    click.echo(renderer.render(saved))
