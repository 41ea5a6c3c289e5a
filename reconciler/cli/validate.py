"""`validate`: offline schema and reference checks."""

from __future__ import annotations

import json

import click

from reconciler.cli.common import (
    OFFLINE,
    environments_chosen_or_exit,
    epilog,
    global_options,
    load_or_exit,
    options,
)
from reconciler.manifest.loader import ENVIRONMENTS_FILE
from reconciler.quoting import counted


@click.command(
    epilog=epilog(
        "0 valid, 1 invalid", "connect-reconciler validate --config config/ --format json"
    )
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: docs/design.md §2's diagnostics document on stdout.",
)
@global_options(*OFFLINE)
@click.pass_context
def validate(ctx: click.Context, fmt: str) -> None:
    """Check the manifests offline (schema and references); no API call.
    With environments, every environment unless --env names some."""
    opts = options(ctx)
    if not opts.env and (opts.config / ENVIRONMENTS_FILE).is_file():
        opts.all_envs = True
    chosen = environments_chosen_or_exit(opts, fmt)
    manifests = [m for _, m in chosen] if chosen is not None else [load_or_exit(opts, fmt)]
    if fmt == "json":
        click.echo(json.dumps({"format_version": "1", "errors": []}, indent=2))
        return
    for manifest in manifests if not opts.quiet else []:
        where = f" environment {manifest.environment.name}" if manifest.environment else ""
        click.echo(
            f"{opts.config}{where}: valid ({counted(len(manifest.files), 'file')}, "
            f"{counted(len(manifest.desired.attributes), 'attribute')}, "
            f"{counted(len(manifest.desired.users), 'user')}, "
            f"{counted(len(manifest.groups), 'group')}, "
            f"{counted(len(manifest.requirements), 'routing requirement')})"
        )
