"""`schema`: the manifest JSON Schema."""

from __future__ import annotations

import json

import click

from reconciler.cli.common import global_options, options
from reconciler.manifest import json_schema


@click.command()
@global_options
@click.pass_context
def schema(ctx: click.Context) -> None:
    """Print the manifest JSON Schema (for editors and CI linters)."""
    options(ctx)
    click.echo(json.dumps(json_schema(), indent=2, sort_keys=True))
