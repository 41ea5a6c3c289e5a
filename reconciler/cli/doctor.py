"""`doctor`: read-only checks of an instance and of what its search answers."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from reconciler.cli.common import ExitCode, connected, epilog, global_options, load_or_exit, options
from reconciler.connect.doctor import FAIL, Doctor, render
from reconciler.targets import identity_check


@click.command(
    epilog=epilog(
        "0 no check failed, 1 a check failed",
        "connect-reconciler doctor --format json",
    )
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
)
@click.option("--instance-id", help="The instance to check (default: the manifests').")
@global_options()
@click.pass_context
def doctor(ctx: click.Context, fmt: str, instance_id: str | None) -> None:
    """Check credentials, the instance, every read the commands make, and
    probe how this service answers what the documentation leaves open
    (read-only: safe against production)."""
    opts = options(ctx)
    manifest = (
        load_or_exit(opts, fmt) if instance_id is None or Path(opts.config).is_dir() else None
    )
    region = opts.region or (manifest.instance.region_name if manifest else None)
    identity = identity_check(opts.target, opts.profile, region, opts.endpoint_url)
    with connected(opts, manifest, instance_id) as connection:
        checks = Doctor(connection.reader, identity).checks()
    click.echo(render(checks, fmt))
    sys.exit(ExitCode.ERROR if any(c.status == FAIL for c in checks) else ExitCode.OK)
