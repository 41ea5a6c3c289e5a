"""`validate`: offline schema and reference checks."""

from __future__ import annotations

import click

from reconciler.cli.common import fail_on_invalid, global_options, options
from reconciler.manifest import ManifestInvalid, load_manifest


@click.command()
@global_options
@click.pass_context
def validate(ctx: click.Context) -> None:
    """Check the manifests offline (schema and references); no API call."""
    opts = options(ctx)
    try:
        manifest = load_manifest(opts.config)
    except ManifestInvalid as invalid:
        fail_on_invalid(invalid)
    if not opts.quiet:
        click.echo(
            f"{opts.config}: valid ({len(manifest.files)} files, "
            f"{len(manifest.desired.attributes)} attributes, {len(manifest.desired.users)} users, "
            f"{len(manifest.groups)} groups, {len(manifest.requirements)} routing requirements)"
        )
