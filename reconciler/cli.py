"""The `connect-reconciler` command: parse, call, print, map to exit codes."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from reconciler.apply import Applier, Journal
from reconciler.atomic import write_json_atomically
from reconciler.connect.quotas import Quota
from reconciler.connect.target import Connection, TargetError, open_target
from reconciler.coverage import ContactSteps, contact_steps, parse_since
from reconciler.emulator import (
    ConnectEmulator,
    FaultPlan,
    SnapshotError,
    load_snapshot,
    save_snapshot,
)
from reconciler.emulator.protocol import to_epoch
from reconciler.emulator.snapshot import empty_backend
from reconciler.export import (
    group_contributions,
    instance_region,
    manifest_files,
    read_live,
    snapshot_document,
    update_manifests,
)
from reconciler.manifest import Manifest, ManifestInvalid, json_schema, load_manifest
from reconciler.plan.plan import Plan
from reconciler.plan.planner import Narrowing, make_plan
from reconciler.plan.render import RENDERERS, JsonRenderer, TextRenderer, coverage_report
from reconciler.plan.saved import SavedPlanError, load_plan, save_plan, stale_objects

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


def plan_exit_code(plan: Plan, detailed: bool) -> int:
    """DESIGN §2: 1 errors, 3 a guard would refuse, 2 changes (if asked), 0."""
    if plan.errors:
        return ExitCode.ERROR
    if plan.guards:
        return ExitCode.GUARD
    return ExitCode.CHANGES if detailed and plan.has_changes else ExitCode.OK


def narrowing(users: tuple[str, ...], attributes: tuple[str, ...]) -> Narrowing:
    return Narrowing(
        frozenset(users) if users else None, frozenset(attributes) if attributes else None
    )


@cli.command()
@click.option("--out", type=click.Path(path_type=Path), help="Save the plan for `apply FILE`.")
@click.option(
    "--format", "fmt", type=click.Choice(sorted(RENDERERS)), default="text", show_default=True
)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes.")
@click.option("--user", "users", multiple=True, help="Plan only this user (repeatable).")
@click.option(
    "--attribute", "attributes", multiple=True, help="Plan only this attribute (repeatable)."
)
@global_options
@click.pass_context
def plan(
    ctx: click.Context,
    out: Path | None,
    fmt: str,
    detailed_exitcode: bool,
    users: tuple[str, ...],
    attributes: tuple[str, ...],
) -> None:
    """Read Connect and show what apply would change."""
    opts = options(ctx)
    manifest = load_or_exit(opts)
    with connected(opts, manifest) as connection:
        result = make_plan(manifest, connection.reader, narrowing(users, attributes))
    renderer = TextRenderer(color=sys.stdout.isatty()) if fmt == "text" else RENDERERS[fmt]()
    click.echo(renderer.render(result))
    if out is not None:
        if result.errors:
            click.echo(f"not saved to {out}: the plan has errors", err=True)
        else:
            save_plan(result, out)
            click.echo(f"saved to {out}; apply it with: connect-reconciler apply {out}", err=True)
    sys.exit(plan_exit_code(result, detailed_exitcode))


def saved_plan_or_exit(path: Path, manifest: Manifest, connection: Connection) -> Plan:
    """The saved plan if it still holds; else the reason and exit 4 (stale)."""
    try:
        saved = load_plan(path)
    except SavedPlanError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(ExitCode.ERROR)
    problems = []
    if saved.instance_id != manifest.instance.instance_id:
        problems.append(
            f"the plan is for instance {saved.instance_id}, "
            f"the manifests manage {manifest.instance.instance_id}"
        )
    elif saved.manifest_digest != manifest.digest:
        problems.append("the manifests changed since the plan was saved")
    else:
        problems = stale_objects(saved, connection.reader)
    if problems:
        click.echo(f"refusing to apply {path}: it is stale (run plan again):", err=True)
        for problem in problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(ExitCode.STALE_PLAN)
    return saved


def confirm_or_exit(rendered: str) -> None:
    """Show the plan and ask, as Terraform does; never wait on a non-terminal."""
    click.echo(rendered)
    if not sys.stdin.isatty():
        click.echo(
            "refusing to apply: no terminal to confirm on; "
            "review with `plan` and pass --auto-approve",
            err=True,
        )
        sys.exit(ExitCode.ERROR)
    if (
        click.prompt("Apply these changes? Only 'yes' is accepted", default="", show_default=False)
        != "yes"
    ):
        click.echo("Apply cancelled.", err=True)
        sys.exit(ExitCode.ERROR)


def default_journal() -> Path:
    return Path(".connect-reconciler") / time.strftime(
        "journal-%Y%m%dT%H%M%SZ.jsonl", time.gmtime()
    )


@cli.command()
@click.argument("planfile", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True, help="Apply even though a guard refuses.")
@click.option(
    "--parallelism",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    help="Users changed at once.",
)
@click.option(
    "--journal", type=click.Path(path_type=Path, dir_okay=False), help="Journal file (JSON lines)."
)
@global_options
@click.pass_context
def apply(
    ctx: click.Context,
    planfile: Path | None,
    auto_approve: bool,
    force: bool,
    parallelism: int,
    journal: Path | None,
) -> None:
    """Plan and apply, or apply exactly a saved PLANFILE."""
    opts = options(ctx)
    manifest = load_or_exit(opts)
    renderer = TextRenderer(color=sys.stdout.isatty())
    with connected(opts, manifest) as connection:
        if planfile is not None:
            todo = saved_plan_or_exit(planfile, manifest, connection)
        else:
            todo = make_plan(manifest, connection.reader)
        if todo.errors:
            click.echo(renderer.render(todo))
            sys.exit(ExitCode.ERROR)
        if not todo.has_changes:
            click.echo("No changes. Connect matches the manifests.")
            sys.exit(ExitCode.OK)
        if todo.guards and not force:
            click.echo(renderer.render(todo))
            click.echo("refused by a guard; review the plan and pass --force to override", err=True)
            sys.exit(ExitCode.GUARD)
        if not auto_approve:
            confirm_or_exit(renderer.render(todo))
        started = time.perf_counter()
        journal_file = Journal(journal or default_journal())
        try:
            applier = Applier(connection.pacer, connection.reader, manifest.instance.instance_id,
                              journal_file, parallelism, connection.reader.progress)  # fmt: skip
            outcome = applier.apply(todo)
        finally:
            journal_file.close()
            connection.save()
    elapsed = time.perf_counter() - started
    calls = ", ".join(f"{op} {n}" for op, n in sorted(outcome.calls.items()))
    click.echo(
        f"Applied {len(outcome.applied)} change(s), {len(outcome.failed)} failed, "
        f"{len(outcome.skipped)} skipped in {elapsed:.1f} s. Calls: {calls}. "
        f"Throttles absorbed: {outcome.throttles_absorbed}. Journal: {journal_file.path}"
    )
    if not outcome.ok:
        for name, error in sorted(outcome.failed.items()):
            click.echo(f"  failed: {name}: {error}", err=True)
        for name in outcome.skipped:
            click.echo(f"  skipped: {name}", err=True)
        click.echo("Partially applied. Run apply again to finish.", err=True)
        sys.exit(ExitCode.PARTIAL)


@cli.command()
@global_options
@click.pass_context
def drift(ctx: click.Context) -> None:
    """Report live vs manifests as JSON, for scheduled jobs (0 in sync, 2 drift)."""
    opts = options(ctx)
    manifest = load_or_exit(opts)
    with connected(opts, manifest) as connection:
        result = make_plan(manifest, connection.reader)
    report = json.loads(JsonRenderer().render(result))
    report["in_sync"] = not result.has_changes
    click.echo(json.dumps(report, indent=2))
    sys.exit(plan_exit_code(result, detailed=True))


@cli.command()
@click.option(
    "--from-contacts", "since", help="Also check routing steps of contacts since: 30m, 24h, 7d, 2w."
)
@click.option("--until", help="End of that contact window, ISO 8601 [now].")
@click.option("--max-contacts", type=click.IntRange(min=1), default=1000, show_default=True)
@global_options
@click.pass_context
def coverage(ctx: click.Context, since: str | None, until: str | None, max_contacts: int) -> None:
    """Eligible agents per routing requirement (and per routing step of recent
    contacts), now and after the plan; exit 2 when one is unmet."""
    opts = options(ctx)
    try:
        window = parse_since(since) if since else None
        end = to_epoch(until) if until else time.time()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    manifest = load_or_exit(opts)
    steps = ContactSteps()
    with connected(opts, manifest) as connection:
        if window is not None:
            steps = contact_steps(connection.reader.contacts(end - window, end, max_contacts))
        result = make_plan(manifest, connection.reader, extra_requirements=steps.requirements())
    if result.errors:
        click.echo(TextRenderer().render(result))
        sys.exit(ExitCode.ERROR)
    click.echo(
        coverage_report(result.coverage, len(manifest.requirements), steps if since else None)
    )
    unmet = [row for row in result.coverage if not row.met]
    sys.exit(ExitCode.CHANGES if unmet else ExitCode.OK)


@cli.command()
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
@global_options
@click.pass_context
def export(
    ctx: click.Context,
    out_dir: Path | None,
    update_dir: Path | None,
    snapshot_file: Path | None,
    users: tuple[str, ...],
    infer_sets: int | None,
    instance_id: str | None,
) -> None:
    """Write live state as manifests (--out), into existing ones (--update),
    or as an emulator snapshot (--snapshot)."""
    opts = options(ctx)
    if sum(x is not None for x in (out_dir, update_dir, snapshot_file)) != 1:
        raise click.UsageError("give exactly one of --out DIR, --update DIR, --snapshot FILE")
    if update_dir is not None:
        opts.config = update_dir
    manifest = (
        load_or_exit(opts)
        if update_dir is not None or (instance_id is None and opts.config.is_dir())
        else None
    )
    wanted = None if users == ("all",) else set(users)
    with connected(opts, manifest, instance_id) as connection:
        if snapshot_file is not None:
            write_json_atomically(snapshot_file, snapshot_document(connection.reader))
            click.echo(f"snapshot of {connection.instance_id} written to {snapshot_file}")
            return
        groups = manifest.groups if update_dir is not None and manifest else []
        live = read_live(connection.reader, wanted, [g.match for g in groups])
        region = opts.region or (manifest.instance.region_name if manifest else None)
        if out_dir is not None and region is None:
            region = instance_region(connection.reader)
    if update_dir is not None:
        result = update_manifests(update_dir, live, wanted, group_contributions(groups, live))
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
    files = manifest_files(live.state, connection.instance_id, region, time.time(), infer_sets)
    existing = [name for name in files.files if (out_dir / name).exists()]
    if existing:
        click.echo(
            f"error: {out_dir} already has {', '.join(existing)}; use --update {out_dir}", err=True
        )
        sys.exit(ExitCode.ERROR)
    for path in files.write(out_dir):
        click.echo(f"wrote {path}")


@cli.command()
@global_options
@click.pass_context
def schema(ctx: click.Context) -> None:
    """Print the manifest JSON Schema (for editors and CI linters)."""
    options(ctx)
    click.echo(json.dumps(json_schema(), indent=2, sort_keys=True))


@cli.group()
def emulator() -> None:
    """The local Connect emulator (speaks the real API; for demos and CI)."""


@emulator.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8421, show_default=True, help="Port (0 picks a free one).")
@click.option(
    "--snapshot",
    "snapshot_path",
    type=click.Path(path_type=Path),
    help="Seed state from this snapshot.",
)
@click.option("--persist", is_flag=True, help="Write the state back to --snapshot on exit.")
@click.option(
    "--quota-scale", type=float, help="Enforce API quotas, sped up this many times (1 = real time)."
)
@click.option(
    "--faults", default="", help="e.g. error=0.05,throttle=0.2,drop_before=0.01,latency=0.01,seed=7"
)
@global_options
@click.pass_context
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    snapshot_path: Path | None,
    persist: bool,
    quota_scale: float | None,
    faults: str,
) -> None:
    """Serve the Connect API on HTTP until interrupted."""
    options(ctx)
    try:
        fault_plan = FaultPlan.parse(faults)
        backend = load_snapshot(snapshot_path) if snapshot_path else empty_backend()
    except (ValueError, SnapshotError) as exc:
        raise click.UsageError(str(exc)) from None
    if persist and snapshot_path is None:
        raise click.UsageError("--persist needs --snapshot FILE")
    server = ConnectEmulator(
        backend, host=host, port=port, quota_scale=quota_scale, faults=fault_plan
    )
    click.echo(
        f"Connect emulator at {server.url} (instance {backend.instance['Id']}); Ctrl-C stops it."
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if persist and snapshot_path is not None:
            save_snapshot(backend, snapshot_path)
            click.echo(f"state written to {snapshot_path}")


def main() -> None:
    """Console entry point: no traceback for expected failures."""
    try:
        cli(standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug: say so in one line; -vv shows where
        log.debug("unexpected failure", exc_info=True)
        click.echo(
            f"error: unexpected {type(exc).__name__}: {exc} (run with -vv for details)", err=True
        )
        sys.exit(ExitCode.ERROR)
