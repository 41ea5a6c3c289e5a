"""`export`: live state as manifests, in place, or as an emulator snapshot."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from reconciler.adopt.export import instance_region, manifest_files, read_live
from reconciler.adopt.snapshot import snapshot_document
from reconciler.adopt.update import group_contributions, update_manifests
from reconciler.cli.common import (
    ExitCode,
    connected,
    epilog,
    global_options,
    load_or_exit,
    options,
    refuse_layered,
)
from reconciler.files import write_json_atomically
from reconciler.manifest import ManifestInvalid
from reconciler.quoting import unknown_names


@click.command(
    epilog=epilog(
        "0 written, 1 error",
        "connect-reconciler export --instance-id INSTANCE_ID --region eu-west-2 --out config/",
    )
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write new manifests here.",
)
@click.option(
    "--update",
    "update_dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Change the manifests here in place to match live.",
)
@click.option("--snapshot", "snapshot_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Write an emulator snapshot of the live instance.")  # fmt: skip
@click.option("--users", "users", multiple=True, default=("all",), show_default=True,
              help="all, or usernames to export (repeatable).")  # fmt: skip
@click.option(
    "--infer-sets",
    type=click.IntRange(min=2),
    help="Factor bundles held by at least N users into sets.",
)
@click.option(
    "--instance-id", help="The instance to export (default: the manifests' or the snapshot's)."
)
@click.option("--users-format", type=click.Choice(["yaml", "csv"]), default="yaml",
              show_default=True, help="--out: users in users.yaml, or in users.csv.")  # fmt: skip
@global_options()
@click.pass_context
def export(
    ctx: click.Context,
    out_dir: Path | None,
    update_dir: Path | None,
    snapshot_file: Path | None,
    users: tuple[str, ...],
    infer_sets: int | None,
    instance_id: str | None,
    users_format: str,
) -> None:
    """Write live state as manifests (--out), into existing ones (--update),
    or as an emulator snapshot (--snapshot)."""
    opts = options(ctx)
    if sum(x is not None for x in (out_dir, update_dir, snapshot_file)) != 1:
        raise click.UsageError("give exactly one of --out DIR, --update DIR, --snapshot FILE")
    if users_format != "yaml" and out_dir is None:
        raise click.UsageError("--users-format applies to --out DIR only")
    if update_dir is not None:
        opts.config = update_dir
    manifest = (
        load_or_exit(opts)
        if update_dir is not None or (instance_id is None and opts.config.is_dir())
        else None
    )
    if update_dir is not None and manifest is not None:
        refuse_layered(manifest, "export --update")
    wanted = None if users == ("all",) else set(users)
    with connected(opts, manifest, instance_id) as connection:
        if snapshot_file is not None:
            write_json_atomically(snapshot_file, snapshot_document(connection.reader))
            click.echo(f"snapshot of {connection.instance_id} written to {snapshot_file}")
            return
        groups = manifest.groups if update_dir is not None and manifest else []
        live = read_live(connection.reader, wanted, [g.selector for g in groups])
        # --update may name a user the manifests declare and live no longer
        # has (to drop them); any other name that matches nothing is a typo.
        declared = set(manifest.desired.users) if update_dir is not None and manifest else set()
        unknown = set(live.missing_users) - declared
        if unknown:
            known = connection.reader.usernames_by_id().values()
            problem = unknown_names("user", unknown, known)
            click.echo(f"error: --users: {problem}", err=True)
            sys.exit(ExitCode.ERROR)
        region = opts.region or (manifest.instance.region_name if manifest else None)
        if out_dir is not None and region is None:
            region = instance_region(connection.reader)
    if update_dir is not None:
        assert manifest is not None
        try:
            result = update_manifests(
                update_dir,
                live,
                wanted,
                group_contributions(groups, live),
                manifest.settings.csv_ignore_columns,
            )
        except ManifestInvalid as invalid:
            for error in invalid.errors:
                click.echo(str(error), err=True)
            click.echo("the updated manifests would not load; nothing was written", err=True)
            sys.exit(ExitCode.ERROR)
        names = ", ".join(map(str, result.changed)) or "none"
        click.echo(f"updated {len(result.changed)} file(s): {names}")
        for username, missing in sorted(result.group_conflicts.items()):
            click.echo(
                f"warning: {username}: groups give {', '.join(missing)}, not held live; "
                "change the group or the user's routing profile",
                err=True,
            )
        return
    assert out_dir is not None
    files = manifest_files(
        live.state, connection.instance_id, region, time.time(), infer_sets, users_format
    )
    existing = [name for name in files.files if (out_dir / name).exists()]
    if existing:
        click.echo(
            f"error: {out_dir} already has {', '.join(existing)}; use --update {out_dir}", err=True
        )
        sys.exit(ExitCode.ERROR)
    for path in files.write(out_dir):
        click.echo(f"wrote {path}")
    if infer_sets is not None:
        click.echo(
            f"--infer-sets {infer_sets}: {files.inferred_sets} set(s) inferred"
            if files.inferred_sets
            else f"--infer-sets {infer_sets}: no set inferred: at most {files.largest_bundle} "
            "user(s) hold the same proficiencies; each user lists their own",
            err=True,
        )
