"""The `connect-reconciler` command: parse, call, print, map to exit codes."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from reconciler.manifest import ManifestInvalid, json_schema, load_manifest

log = logging.getLogger("reconciler")


class ExitCode:
    """Exit codes of DESIGN §2, for scripts that branch on them."""

    OK = 0
    ERROR = 1
    CHANGES = 2
    GUARD = 3
    STALE_PLAN = 4
    PARTIAL = 5


@dataclass
class GlobalOptions:
    """Options every command accepts, before or after its name."""

    config: Path = Path("config")
    target: str = "aws"
    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    verbose: int = 0
    quiet: bool = False


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    # Given after the command name wins over before it, as in the AWS CLI.
    if value is not None and value != 0 and value is not False:
        ctx.find_root().meta.setdefault("options", {})[param.name] = value


_GLOBAL_OPTIONS = [
    click.option(
        "--config", type=click.Path(path_type=Path), help="Manifest directory [./config]."
    ),
    click.option("--target", help="aws (default) or emulator:SNAPSHOT.json."),
    click.option("--profile", help="AWS named profile."),
    click.option("--region", help="AWS region (overrides the manifest)."),
    click.option("--endpoint-url", help="Send API calls to this endpoint."),
    click.option("-v", "--verbose", count=True, help="More logging (repeat for debug)."),
    click.option("-q", "--quiet", is_flag=True, default=None, help="Only errors."),
]


def global_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Attach the global options to a command; they land in GlobalOptions."""
    for option in reversed(_GLOBAL_OPTIONS):
        command = option(command)
    for param in command.__click_params__:  # type: ignore[attr-defined]
        if param.name in GlobalOptions.__dataclass_fields__:
            param.expose_value = False
            param.callback = _remember
    return command


def options(ctx: click.Context) -> GlobalOptions:
    """The merged global options, with logging configured from them."""
    opts = GlobalOptions(**ctx.find_root().meta.get("options", {}))
    level = logging.ERROR if opts.quiet else [logging.WARNING, logging.INFO][min(opts.verbose, 1)]
    if opts.verbose >= 2:
        level = logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
    return opts


def fail_on_invalid(errors: ManifestInvalid) -> None:
    """Print every manifest error and exit 1."""
    for error in errors.errors:
        click.echo(str(error), err=True)
    count = len(errors.errors)
    click.echo(f"{count} error{'s' if count != 1 else ''}; nothing was sent to Connect.", err=True)
    sys.exit(ExitCode.ERROR)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="connect-reconciler")
@global_options
def cli() -> None:
    """Amazon Connect routing attributes and proficiencies as code."""


@cli.command()
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


@cli.command()
@global_options
@click.pass_context
def schema(ctx: click.Context) -> None:
    """Print the manifest JSON Schema (for editors and CI linters)."""
    options(ctx)
    click.echo(json.dumps(json_schema(), indent=2, sort_keys=True))


def main() -> None:
    """Console entry point: no traceback for expected failures."""
    try:
        cli(standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
