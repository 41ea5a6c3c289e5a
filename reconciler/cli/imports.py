"""`import changes`: a bulk attribute updater change file as manifest edits."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from reconciler.adopt.change_file import import_changes, parse_change_file
from reconciler.adopt.declarations import ManifestFiles
from reconciler.cli.common import (
    ExitCode,
    connected,
    epilog,
    global_options,
    load_or_exit,
    options,
    refuse_layered,
)
from reconciler.files import write_atomically
from reconciler.manifest import ManifestInvalid
from reconciler.manifest.source import read_bounded
from reconciler.quoting import counted


@click.group("import")
def import_group() -> None:
    """Bring changes made elsewhere into the manifests, for review."""


@import_group.command(
    "changes",
    epilog=epilog(
        "0 manifests edited, 1 error (no file changed)",
        "connect-reconciler import changes user_attribute_updates.csv --into config/",
    ),
)
@click.argument("change_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option(
    "--into",
    "into",
    required=True,
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="The manifest directory to edit.",
)
@global_options()
@click.pass_context
def changes(ctx: click.Context, change_file: Path, into: Path) -> None:
    """Edit the manifests in DIR as the rows of CHANGE_FILE say
    (identifier,identifier_type,action,attribute,value,level, the AWS bulk
    attribute updater's format); `plan` then shows them for review. Connect
    is read only to resolve user_id identifiers (one ListUsers)."""
    opts = options(ctx)
    opts.config = into
    manifest = load_or_exit(opts)
    refuse_layered(manifest, "import changes --into")
    try:
        parsed = parse_change_file(read_bounded(change_file, str(change_file)), str(change_file))
        usernames_by_id = None
        if any(row.identifier_type == "user_id" for row in parsed.rows):
            with connected(opts, manifest) as connection:
                usernames_by_id = connection.reader.usernames_by_id()
        files = ManifestFiles(into, manifest.settings.csv_ignore_columns)
        imported = import_changes(parsed, manifest, files, usernames_by_id)
    except ManifestInvalid as invalid:
        for error in invalid.errors:
            click.echo(str(error), err=True)
        count = len(invalid.errors)
        click.echo(f"{counted(count, 'error')}; no manifest was changed.", err=True)
        sys.exit(ExitCode.ERROR)
    for path, text in imported.texts.items():
        write_atomically(path, text)
    for path, done in sorted(imported.done.items()):
        click.echo(f"{path}: {counted(len(done), 'change')}")
        for line in done:
            click.echo(f"  {line}")
    if not imported.done:
        click.echo("no rows: nothing changed")
