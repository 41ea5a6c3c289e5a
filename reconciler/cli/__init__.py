"""The `connect-reconciler` command: parse, call, print, map to exit codes.

One module per command (as octoDNS keeps `octodns/cmds/`); `common` holds the
global options, exit codes and the connection every command shares.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from reconciler.cli.apply import apply
from reconciler.cli.common import ExitCode, global_options, log
from reconciler.cli.coverage import coverage
from reconciler.cli.doctor import doctor
from reconciler.cli.drift import drift
from reconciler.cli.emulator import emulator
from reconciler.cli.explain import explain_command
from reconciler.cli.export import export
from reconciler.cli.imports import import_group
from reconciler.cli.parity import parity_command
from reconciler.cli.plan import plan
from reconciler.cli.schema import schema
from reconciler.cli.show import show
from reconciler.cli.validate import validate
from reconciler.service.model import ModelTooOld


class ConnectReconciler(click.Group):
    """The command group. A usage error exits 1, not click's 2: here 2 means
    changes present, drift or an unmet requirement (docs/design.md §2), and a typo
    must not read as one."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            return super().main(*args, **kwargs)
        except click.UsageError as error:
            error.show()
            sys.exit(ExitCode.ERROR)
        except click.ClickException as error:
            error.show()
            sys.exit(error.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(ExitCode.ERROR)


@click.group(cls=ConnectReconciler, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="connect-reconciler")
@global_options()
def cli() -> None:
    """Amazon Connect routing attributes and proficiencies as code."""


COMMANDS = (
    validate,
    plan,
    apply,
    show,
    drift,
    coverage,
    parity_command,
    explain_command,
    export,
    import_group,
    doctor,
    schema,
)
for command in (*COMMANDS, emulator):
    cli.add_command(command)


def main() -> None:
    """Console entry point: no traceback for expected failures."""
    try:
        cli()
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
