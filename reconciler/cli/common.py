"""What every command shares: global options, exit codes, logging, colour,
the connection to a target, and turning errors into one line and exit 1."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, NoReturn, TextIO

import click
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
)
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from reconciler.connect.client import access_denied, caller_identity
from reconciler.connect.reader import SearchMisread
from reconciler.emulator import SnapshotError
from reconciler.logs import install_redaction
from reconciler.manifest import Manifest, ManifestError, ManifestInvalid, load_manifest
from reconciler.manifest.environments import (
    NAME_PATTERN,
    EnvironmentChoiceError,
    Environments,
    instance_collisions,
    read_environments,
    unknown_environment,
)
from reconciler.manifest.loader import ENVIRONMENTS_FILE, Environment
from reconciler.plan.render import MARKDOWN_LIMIT, MARKDOWN_MARKER
from reconciler.quoting import markdown_cell
from reconciler.service.model import require_model
from reconciler.service.quotas import Quota
from reconciler.targets import Connection, SharedQuotas, Sharing, TargetError, open_target

log = logging.getLogger("reconciler")

# Progress bars appear for reads of at least this many calls.
PROGRESS_THRESHOLD = 20
# Operations whose only resource is the instance: "not found" means it.
_INSTANCE_ONLY = {
    "ListUsers",
    "ListRoutingProfiles",
    "ListUserHierarchyGroups",
    "SearchUsers",
    "SearchPredefinedAttributes",
    "SearchContacts",
}


class ExitCode:
    """Exit codes of docs/design.md §2, for scripts that branch on them."""

    OK = 0
    ERROR = 1
    CHANGES = 2
    GUARD = 3
    STALE_PLAN = 4
    PARTIAL = 5
    INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C


# `--target ENV=TARGET`; a snapshot path may hold `=` but not before a `:`
_ENVIRONMENT_TARGET = re.compile(f"({NAME_PATTERN.pattern})=(.+)")
_ENDPOINTS = ("http://", "https://")


@dataclass
class GlobalOptions:
    """Options every command accepts, before or after its name."""

    config: Path = Path("config")
    targets: tuple[str, ...] = ()  # as given: TARGET, or ENV=TARGET per environment
    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    verbose: int = 0
    quiet: bool = False
    no_color: bool = False
    env: tuple[str, ...] = ()
    all_envs: bool = False
    # The environment these options are for (`for_environment`), and its target.
    environment: str | None = None
    target: str = "aws"
    endpoint_from_target: bool = False  # endpoint_url came from --target URL, not --endpoint-url

    def __post_init__(self) -> None:
        plain = [t for t in self.targets if not _ENVIRONMENT_TARGET.fullmatch(t)]
        if len(plain) > 1:
            raise click.UsageError(
                f"--target given {len(plain)} times: use --target ENV=TARGET for each environment"
            )
        if plain and self.environment is None:
            self._point_at(plain[0])

    def _point_at(self, target: str) -> None:
        # An endpoint is the aws target sent elsewhere (an emulator served over HTTP).
        if target.startswith(_ENDPOINTS):
            self.target, self.endpoint_url, self.endpoint_from_target = "aws", target, True
            return
        self.target = target
        if self.endpoint_from_target:  # another environment's endpoint is not this one's
            self.endpoint_url, self.endpoint_from_target = None, False

    @property
    def said(self) -> str:
        """`ENV: `, before what is said of one environment in a run of several."""
        return f"{self.environment}: " if self.environment else ""

    def environment_targets(self) -> dict[str, str]:
        """The `--target ENV=TARGET` given, by environment."""
        return {
            m.group(1): m.group(2)
            for t in self.targets
            if (m := _ENVIRONMENT_TARGET.fullmatch(t)) is not None
        }

    def for_environment(self, name: str) -> GlobalOptions:
        """These options for environment `name`: its `--target ENV=TARGET`,
        else the plain --target, else aws."""
        chosen = replace(self, environment=name)
        given = self.environment_targets().get(name)
        if given is not None:
            chosen._point_at(given)
        return chosen


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    # Given after the command name wins over before it, as in the AWS CLI.
    if value is not None and value != 0 and value is not False and value != ():
        ctx.find_root().meta.setdefault("options", {})[param.name] = value


_GLOBAL_OPTIONS = {
    "config": click.option(
        "--config", type=click.Path(path_type=Path), help="Manifest directory [./config]."
    ),
    "targets": click.option(
        "--target",
        "targets",
        multiple=True,
        help="aws (default), emulator:SNAPSHOT.json or an endpoint URL; ENV=TARGET "
        "for one environment (repeatable).",
    ),
    "profile": click.option("--profile", help="AWS named profile."),
    "region": click.option("--region", help="AWS region (overrides the manifest)."),
    "endpoint_url": click.option("--endpoint-url", help="Send API calls to this endpoint."),
    "verbose": click.option("-v", "--verbose", count=True, help="More logging (repeat for debug)."),
    "quiet": click.option("-q", "--quiet", is_flag=True, default=None, help="Only errors."),
    "no_color": click.option(
        "--no-color", is_flag=True, default=None, help="No colour (also NO_COLOR, TERM=dumb)."
    ),
    "env": click.option(
        "--env",
        multiple=True,
        metavar="NAME",
        help="The environment of environments.yaml to run against (repeatable).",
    ),
    "all_envs": click.option(
        "--all-envs", is_flag=True, default=None, help="Every environment of environments.yaml."
    ),
}
# What a command that talks to Connect uses; `validate` needs no target.
CONNECTED = tuple(_GLOBAL_OPTIONS)
OFFLINE = ("config", "verbose", "quiet", "no_color", "env", "all_envs")
LOGGING = ("verbose", "quiet", "no_color")


def global_options(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Attach the global options `names` (all when none) to a command, so
    that it offers only those that mean something to it; they land in
    GlobalOptions."""

    def attach(command: Callable[..., Any]) -> Callable[..., Any]:
        for name in reversed(names or CONNECTED):
            command = _GLOBAL_OPTIONS[name](command)
        for param in getattr(command, "__click_params__", []):
            if param.name in GlobalOptions.__dataclass_fields__:
                param.expose_value = False
                param.callback = _remember
        return command

    return attach


def epilog(exit_codes: str, example: str) -> str:
    """The `--help` epilog every command has: its exit codes and one example."""
    return f"\b\nExit codes: {exit_codes}.\n\n\b\nExample:\n  {example}"


def use_color(opts: GlobalOptions, stream: TextIO | None = None) -> bool:
    """Colour only on a terminal, never with --no-color, NO_COLOR set
    (no-color.org: any non-empty value) or TERM=dumb. Every renderer asks here."""
    stream = stream or sys.stdout
    return (
        not opts.no_color
        and not os.environ.get("NO_COLOR")
        and os.environ.get("TERM") != "dumb"
        and stream.isatty()
    )


def options(ctx: click.Context) -> GlobalOptions:
    """The merged global options, with logging configured from them."""
    opts = GlobalOptions(**ctx.find_root().meta.get("options", {}))
    level = logging.ERROR if opts.quiet else [logging.WARNING, logging.INFO][min(opts.verbose, 1)]
    if opts.verbose >= 2:
        level = logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
    install_redaction()
    return opts


def diagnostics_document(invalid: ManifestInvalid) -> dict[str, Any]:
    """docs/design.md §2's JSON form of manifest errors, for `--format json`."""
    return {
        "format_version": "1",
        "errors": [asdict(e) for e in invalid.errors],
    }


def diagnostics_markdown(invalid: ManifestInvalid) -> str:
    """Manifest errors for a PR comment: with the plan's marker, so the
    comment of the last good plan is replaced, never left standing."""
    count = len(invalid.errors)
    lines = [
        MARKDOWN_MARKER,
        "### connect-reconciler: the manifests do not load",
        "",
        "> [!CAUTION]",
        f"> **{count} error{'s' if count != 1 else ''}; nothing was planned or sent to Connect.**",
    ]
    # A comment must fit GitHub's limit, or the last good plan's stays up.
    budget = MARKDOWN_LIMIT - len("\n".join(lines)) - 200
    for shown, e in enumerate(invalid.errors):
        hint = f" _(hint: {markdown_cell(e.hint)})_" if e.hint else ""
        line = f"> - `{e.file}:{e.line}:{e.column}` {markdown_cell(e.message)}{hint}"
        budget -= len(line) + 1
        if budget < 0:
            lines.append(
                f"> - _{count - shown} more not shown (the comment is capped at "
                f"{MARKDOWN_LIMIT:,} characters); run `validate` for every error._"
            )
            break
        lines.append(line)
    return "\n".join(lines)


def fail_on_invalid(errors: ManifestInvalid, fmt: str = "text") -> None:
    """Print every manifest error (as JSON on stdout with fmt "json", so a CI
    job always has something to post) and exit 1."""
    if fmt == "json":
        click.echo(json.dumps(diagnostics_document(errors), indent=2))
    elif fmt == "markdown":
        click.echo(diagnostics_markdown(errors))
    else:
        for error in errors.errors:
            click.echo(str(error), err=True)
    count = len(errors.errors)
    click.echo(f"{count} error{'s' if count != 1 else ''}; nothing was sent to Connect.", err=True)
    sys.exit(ExitCode.ERROR)


def environments_or_exit(opts: GlobalOptions, fmt: str = "text") -> Environments | None:
    """The environments the config directory declares (None without
    environments.yaml); its errors printed as `fmt` asks, and exit 1. An
    --env, --all-envs or --target ENV=TARGET that names nothing is an error."""
    try:
        environments = read_environments(opts.config)
    except ManifestInvalid as invalid:
        fail_on_invalid(invalid, fmt)
        raise  # pragma: no cover - fail_on_invalid exits
    named = opts.environment_targets()
    if environments is None:
        if opts.env or opts.all_envs or named:
            exit_with(
                f"--env, --all-envs and --target ENV=TARGET need environments: "
                f"{opts.config / ENVIRONMENTS_FILE} does not exist"
            )
        return None
    unknown = [name for name in named if name not in environments.by_name]
    if unknown:
        exit_with(f"--target: {unknown_environment(unknown, environments)}")
    return environments


def environments_chosen_or_exit(
    opts: GlobalOptions, fmt: str = "text", several: bool = True, against_all: bool = False
) -> list[tuple[GlobalOptions, Manifest]] | None:
    """Each environment --env/--all-envs chooses, with its options and
    manifests; None when the config directory declares no environments.
    Every manifest error of every chosen environment is printed once (a
    shared layer's would repeat), then exit 1; so is two of them applying
    to one instance (with `against_all`, a chosen one and any other)."""
    environments = environments_or_exit(opts, fmt)
    if environments is None:
        return None
    try:
        chosen = environments.select(opts.env, opts.all_envs, several)
    except EnvironmentChoiceError as exc:
        exit_with(str(exc))
    loaded = list(environments.by_name.values()) if against_all else chosen
    manifests: list[Manifest] = []
    # each error once, with the environments it is found in
    errors: dict[tuple[str, int, int, str], tuple[ManifestError, list[str]]] = {}
    for environment in loaded:
        try:
            manifests.append(environments.load(environment))
        except ManifestInvalid as invalid:
            for e in invalid.errors:
                errors.setdefault((e.file, e.line, e.column, e.message), (e, []))[1].append(
                    environment.name
                )
    for error in instance_collisions(manifests):
        errors[(error.file, error.line, error.column, error.message)] = (error, [])
    if errors:
        fail_on_invalid(
            ManifestInvalid([_in_environments(e, names, loaded) for e, names in errors.values()]),
            fmt,
        )
    return [
        (opts.for_environment(m.environment.name), m)
        for m in manifests
        if m.environment is not None and m.environment in chosen
    ]


def _in_environments(
    error: ManifestError, names: list[str], loaded: list[Environment]
) -> ManifestError:
    """An error of some of the environments loaded says which ones."""
    if not names or len(names) == len(loaded) or len(loaded) == 1:
        return error
    return replace(error, message=f"{error.message} (environment {', '.join(names)})")


def load_or_exit(opts: GlobalOptions, fmt: str = "text", against_all: bool = False) -> Manifest:
    """The manifests, or every error printed (see fail_on_invalid) and exit 1.
    With environments declared, the one environment --env names: `opts`
    then points at its target; with `against_all` (apply), every other
    environment is loaded too, to refuse two that apply to one instance."""
    chosen = environments_chosen_or_exit(opts, fmt, several=False, against_all=against_all)
    if chosen is not None:
        (chosen_opts, manifest), *_ = chosen
        for option in fields(opts):  # the caller's options become the environment's
            setattr(opts, option.name, getattr(chosen_opts, option.name))
        return manifest
    try:
        return load_manifest(opts.config)
    except ManifestInvalid as invalid:
        fail_on_invalid(invalid, fmt)
        raise  # pragma: no cover - fail_on_invalid exits


def refuse_layered(manifest: Manifest, what: str) -> None:
    """Exit 1 when `what` (an in-place edit of one directory's files) is
    asked of an environment: its keys live in several layers, and which one
    an edit belongs in is a reviewer's call, not a guess."""
    if manifest.environment is not None:
        exit_with(
            f"{what} edits one directory's manifests, and environment "
            f"{manifest.environment.name!r} is made of layers "
            f"({', '.join(manifest.environment.layers)}): "
            "run it on a directory without environments.yaml (e.g. export --out, then move "
            "the entries into the layer they belong to)"
        )


class CommandFailed(SystemExit):
    """Exit 1 for a reason a user can act on, said on stderr; a run of
    several environments also puts it in its one document."""

    def __init__(self, message: str) -> None:
        super().__init__(ExitCode.ERROR)
        self.message = message


def exit_with(message: str) -> NoReturn:
    """Say what is wrong on stderr, and exit 1."""
    click.echo(f"error: {message}", err=True)
    raise CommandFailed(message)


def account_cap(manifest: Manifest | None) -> int | None:
    """The per-user proficiency cap the manifests set explicitly, if any: the
    emulator then enforces it (docs/design.md §4), else the snapshot's or the default."""
    settings = manifest.settings if manifest else None
    if settings is None or "max_proficiencies_per_user" not in settings.model_fields_set:
        return None
    return settings.max_proficiencies_per_user


def error_message(exc: Exception, instance_id: str | None, region: str | None) -> str:
    """One line that says what went wrong and what to do about it, for the
    errors a user can fix; anything else as botocore words it."""
    if isinstance(exc, NoCredentialsError):
        return (
            "no AWS credentials found: set AWS_PROFILE or pass --profile (after "
            "`aws sso login` or `aws configure`), or plan offline with "
            "--target emulator:SNAPSHOT.json"
        )
    if isinstance(exc, ProfileNotFound):
        return f"{exc}: see `aws configure list-profiles`"
    if isinstance(exc, NoRegionError):
        return "no AWS region: set `instance.region` in the manifests or pass --region"
    if isinstance(exc, EndpointConnectionError):
        return (
            f"cannot reach the Connect endpoint {exc.kwargs.get('endpoint_url')}: check "
            "--endpoint-url, the region and your network"
        )
    if not isinstance(exc, ClientError):
        return str(exc)
    code = exc.response.get("Error", {}).get("Code", "")
    operation = exc.operation_name
    denied = access_denied(exc)
    if denied is not None:
        return denied
    message = exc.response.get("Error", {}).get("Message", "")
    if code == "ResourceNotFoundException" and (
        operation in _INSTANCE_ONLY or "instance" in message.lower()
    ):
        return (
            f"Connect instance {instance_id} not found in region "
            f"{region or 'of the profile'}: check `instance.id` and "
            "`instance.region` in the manifests (`aws connect list-instances` lists them)"
        )
    return str(exc)


class ProgressBar:
    """Progress bars on stderr (only on a terminal) for reads and applies of
    more than a handful of calls; `pause()` takes them off the screen before
    a prompt, and the next update brings them back."""

    def __init__(self, opts: GlobalOptions) -> None:
        self.shown = sys.stderr.isatty() and not opts.quiet and os.environ.get("TERM") != "dumb"
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeRemainingColumn())  # fmt: skip
        console = Console(stderr=True, no_color=not use_color(opts, sys.stderr))
        self.display = Progress(*columns, console=console, transient=True)
        self._tasks: dict[str, Any] = {}

    def __call__(self, what: str, done: int, total: int) -> None:
        if not self.shown or total < PROGRESS_THRESHOLD:
            return
        if what not in self._tasks:
            self.display.start()
            self._tasks[what] = self.display.add_task(what, total=total)
        self.display.update(self._tasks[what], completed=done)

    def pause(self) -> None:
        """Stop drawing and forget finished bars (before a prompt or exit)."""
        if self.display.live.is_started:  # stopping a display never started prints a blank line
            self.display.stop()
        for what, task in list(self._tasks.items()):
            self.display.remove_task(task)
            del self._tasks[what]


def prompt(text: str) -> str:
    """Ask on the terminal with any progress bar off the screen, so it does
    not redraw over what the user types."""
    bar = click.get_current_context().find_root().meta.get("progress")
    if bar is not None:
        bar.pause()
    return str(click.prompt(text, default="", show_default=False))


@contextmanager
def connected(
    opts: GlobalOptions,
    manifest: Manifest | None,
    instance_id: str | None = None,
    shared: SharedQuotas | None = None,
) -> Iterator[Connection]:
    """The target for the manifests (or for `instance_id`), with a progress
    bar on a terminal; API and target errors become one line and exit 1.
    With `shared` (a run over several environments) the pacer joins its
    account and region's quota group, and no bar is drawn."""
    bar = ProgressBar(opts)
    bar.shown = bar.shown and shared is None
    if shared is None:
        click.get_current_context().find_root().meta["progress"] = bar
    instance_id = instance_id or (manifest.instance.instance_id if manifest else None)
    region = opts.region or (manifest.instance.region_name if manifest else None)
    # Every command that talks to Connect starts here: an older botocore would
    # speak an older API (ModelTooOld, exit 1). Offline commands skip the cost.
    require_model()
    try:
        quotas = (
            {op: Quota(q.rate, q.burst) for op, q in manifest.settings.quotas.items()}
            if manifest
            else {}
        )
        sharing = None
        if shared is not None:
            sharing = Sharing(shared, opts.environment or "", _account_of(opts, manifest, region))
        with open_target(
            opts.target,
            instance_id,
            region=region,
            quotas=quotas,
            profile=opts.profile,
            endpoint_url=opts.endpoint_url,
            progress=bar if bar.shown else None,
            max_proficiencies_per_user=account_cap(manifest),
            sharing=sharing,
        ) as connection:
            yield connection
    except (TargetError, SnapshotError, SearchMisread, BotoCoreError, ClientError) as exc:
        bar.pause()
        exit_with(f"{opts.said}{error_message(exc, instance_id, region)}")
    finally:
        bar.pause()


def _account_of(opts: GlobalOptions, manifest: Manifest | None, region: str | None) -> str | None:
    """The AWS account an `aws` target's instance is in, to share its quota:
    from the manifests' ARN, else (no endpoint) STS; None when unknown."""
    arn = manifest.instance.arn if manifest else None
    if arn is not None:
        return arn.split(":")[4]
    if opts.target != "aws" or opts.endpoint_url is not None:
        return None
    try:
        return str(caller_identity(opts.profile, region)["Account"])
    except (BotoCoreError, ClientError):
        return None  # the Connect calls will say what is wrong
