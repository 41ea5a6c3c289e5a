"""`drift`: the plan as a JSON report for scheduled jobs."""

from __future__ import annotations

import json
import sys

import click

from reconciler.cli.common import connected, global_options, load_or_exit, options
from reconciler.cli.plan import plan_exit_code, read_option
from reconciler.plan.planner import make_plan
from reconciler.plan.render import JsonRenderer


@click.command()
@read_option
@global_options
@click.pass_context
def drift(ctx: click.Context, read: str) -> None:
    """Report live vs manifests as JSON, for scheduled jobs (0 in sync, 2 drift);
    `--read list` for an authoritative check that never relies on search."""
    opts = options(ctx)
    manifest = load_or_exit(opts)
    with connected(opts, manifest) as connection:
        connection.reader.strategy = read
        result = make_plan(manifest, connection.reader)
    report = json.loads(JsonRenderer().render(result))
    report["in_sync"] = not result.has_changes
    click.echo(json.dumps(report, indent=2))
    sys.exit(plan_exit_code(result, detailed=True))
