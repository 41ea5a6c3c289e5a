"""`schema`: the manifest JSON Schema."""

from __future__ import annotations

import json

import click

from reconciler.cli.common import LOGGING, epilog, global_options, options
from reconciler.manifest import json_schema


@click.command(epilog=epilog("0", "connect-reconciler schema > connect-reconciler.schema.json"))
@global_options(*LOGGING)
@click.pass_context
def schema(ctx: click.Context) -> None:
    """Print the manifest JSON Schema (for editors and CI linters)."""
    options(ctx)
    click.echo(json.dumps(json_schema(), indent=2, sort_keys=True))
