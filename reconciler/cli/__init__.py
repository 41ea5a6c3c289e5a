"""The `connect-reconciler` command: parse, call, print, map to exit codes.

One module per command (as octoDNS keeps `octodns/cmds/`); `common` holds the
global options, exit codes and the connection every command shares.
"""

from __future__ import annotations

import sys

import click

from reconciler.cli.apply import apply
from reconciler.cli.common import ExitCode, global_options, log
from reconciler.cli.coverage import coverage
from reconciler.cli.drift import drift
from reconciler.cli.emulator import emulator
from reconciler.cli.export import export
from reconciler.cli.plan import plan
from reconciler.cli.schema import schema
from reconciler.cli.show import show
from reconciler.cli.validate import validate
from reconciler.connect.model_check import ModelTooOld


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="connect-reconciler")
@global_options()
def cli() -> None:
    """Amazon Connect routing attributes and proficiencies as code."""


for command in (validate, plan, apply, show, drift, coverage, export, schema, emulator):
    cli.add_command(command)


def main() -> None:
    """Console entry point: no traceback for expected failures."""
    try:
        cli(standalone_mode=True)
    except ModelTooOld as exc:  # raised by the first command to need the model
        click.echo(f"error: {exc}", err=True)
        sys.exit(ExitCode.ERROR)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug: say so in one line; -vv shows where
        log.debug("unexpected failure", exc_info=True)
        click.echo(
            f"error: unexpected {type(exc).__name__}: {exc} (run with -vv for details)", err=True
        )
        sys.exit(ExitCode.ERROR)
