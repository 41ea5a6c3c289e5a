"""What every command shares: global options, exit codes, logging, the
connection to a target, and turning manifest errors into exit 1."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from reconciler.connect.quotas import Quota
from reconciler.connect.target import Connection, TargetError, open_target
from reconciler.emulator import SnapshotError
from reconciler.logs import install_redaction
from reconciler.manifest import Manifest, ManifestInvalid, load_manifest

log = logging.getLogger("reconciler")

# Progress bars appear for reads of at least this many calls.
PROGRESS_THRESHOLD = 20


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
    install_redaction()
    return opts


def fail_on_invalid(errors: ManifestInvalid) -> None:
    """Print every manifest error and exit 1."""
    for error in errors.errors:
        click.echo(str(error), err=True)
    count = len(errors.errors)
    click.echo(f"{count} error{'s' if count != 1 else ''}; nothing was sent to Connect.", err=True)
    sys.exit(ExitCode.ERROR)


def load_or_exit(opts: GlobalOptions) -> Manifest:
    """The manifests, or every error printed and exit 1."""
    try:
        return load_manifest(opts.config)
    except ManifestInvalid as invalid:
        fail_on_invalid(invalid)
        raise  # pragma: no cover - fail_on_invalid exits


@contextmanager
def connected(
    opts: GlobalOptions, manifest: Manifest | None, instance_id: str | None = None
) -> Iterator[Connection]:
    """The target for the manifests (or for `instance_id`), with a progress
    bar on a terminal; API and target errors become one line and exit 1."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    bar = Progress(*columns,
                   console=Console(stderr=True), transient=True)  # fmt: skip
    tasks: dict[str, Any] = {}

    def progress(what: str, done: int, total: int) -> None:
        if total < PROGRESS_THRESHOLD:
            return
        if what not in tasks:
            bar.start()
            tasks[what] = bar.add_task(what, total=total)
        bar.update(tasks[what], completed=done)

    show = progress if sys.stderr.isatty() and not opts.quiet else None
    try:
        quotas = (
            {op: Quota(q.rate, q.burst) for op, q in manifest.settings.quotas.items()}
            if manifest
            else {}
        )
        with open_target(
            opts.target,
            instance_id or (manifest.instance.instance_id if manifest else None),
            region=opts.region or (manifest.instance.region_name if manifest else None),
            quotas=quotas,
            profile=opts.profile,
            endpoint_url=opts.endpoint_url,
            progress=show,
        ) as connection:
            yield connection
    except (TargetError, SnapshotError, BotoCoreError, ClientError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(ExitCode.ERROR)
    finally:
        bar.stop()
