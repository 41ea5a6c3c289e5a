"""`coverage`: routing requirements (and recent contacts' steps) vs agents."""

from __future__ import annotations

import sys
import time

import click

from reconciler.cli.common import ExitCode, connected, global_options, load_or_exit, options
from reconciler.coverage import ContactSteps, contact_steps, parse_since
from reconciler.emulator.protocol import to_epoch
from reconciler.plan.planner import make_plan
from reconciler.plan.render import TextRenderer, coverage_report


@click.command()
@click.option(
    "--from-contacts", "since", help="Also check routing steps of contacts since: 30m, 24h, 7d, 2w."
)
@click.option("--until", help="End of that contact window, ISO 8601 [now].")
@click.option("--max-contacts", type=click.IntRange(min=1), default=1000, show_default=True)
@global_options
@click.pass_context
def coverage(ctx: click.Context, since: str | None, until: str | None, max_contacts: int) -> None:
    """Eligible agents per routing requirement (and per routing step of recent
    contacts), now and after the plan; exit 2 when one is unmet."""
    opts = options(ctx)
    try:
        window = parse_since(since) if since else None
        end = to_epoch(until) if until else time.time()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    manifest = load_or_exit(opts)
    steps = ContactSteps()
    with connected(opts, manifest) as connection:
        if window is not None:
            steps = contact_steps(connection.reader.contacts(end - window, end, max_contacts))
        result = make_plan(manifest, connection.reader, extra_requirements=steps.requirements())
    if result.errors:
        click.echo(TextRenderer().render(result))
        sys.exit(ExitCode.ERROR)
    click.echo(
        coverage_report(result.coverage, len(manifest.requirements), steps if since else None)
    )
    unmet = [row for row in result.coverage if not row.met]
    sys.exit(ExitCode.CHANGES if unmet else ExitCode.OK)
