"""`plan`: read Connect and show what apply would change."""

from __future__ import annotations

import functools
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from reconciler.cli.common import (
    ExitCode,
    GlobalOptions,
    connected,
    epilog,
    exit_with,
    fail_on_invalid,
    global_options,
    options,
    use_color,
)
from reconciler.cli.fanout import chosen_or_exit, run_and_exit
from reconciler.connect.read_choice import READS
from reconciler.connect.reader import LiveStateReader
from reconciler.manifest import Manifest, ManifestInvalid
from reconciler.manifest.gitref import GitRefError, manifest_at
from reconciler.plan.causes import Base
from reconciler.plan.narrowing import Narrowing, NotNarrowable, changed_narrowing
from reconciler.plan.plan import Plan
from reconciler.plan.planner import make_plan, unknown_name_errors
from reconciler.plan.render import RENDERERS, TextRenderer, renderer_for
from reconciler.plan.saved import save_plan
from reconciler.targets import SharedQuotas


def plan_exit_code(plan: Plan, detailed: bool) -> int:
    """docs/design.md §2: 1 errors, 3 a guard would refuse, 2 changes (if asked), 0."""
    if plan.errors:
        return ExitCode.ERROR
    if plan.guards:
        return ExitCode.GUARD
    return ExitCode.CHANGES if detailed and plan.has_changes else ExitCode.OK


_NARROWING_OPTIONS = [
    click.option("--user", "users", multiple=True, help="Plan only this user (repeatable)."),
    click.option(
        "--attribute", "attributes", multiple=True, help="Plan only this attribute (repeatable)."
    ),
    click.option(
        "--changed-since",
        metavar="GITREF",
        help="Plan only what the manifests changed since this git ref (also --base).",
    ),
    click.option(
        "--base",
        metavar="GITREF",
        help="Tell the manifests' changes since this git ref from drift (a full plan).",
    ),
]


@dataclass(frozen=True)
class NarrowingAsked:
    """What the narrowing options asked for."""

    users: tuple[str, ...] = ()
    attributes: tuple[str, ...] = ()
    changed_since: str | None = None
    base: str | None = None

    @property
    def given(self) -> bool:
        return bool(self.users or self.attributes or self.changed_since or self.base)


def narrowing_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--user / --attribute / --changed-since / --base, shared by plan and
    apply; the command receives them as one NarrowingAsked, `asked`."""

    @functools.wraps(command)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        kwargs["asked"] = NarrowingAsked(
            kwargs.pop("users"), kwargs.pop("attributes"), kwargs.pop("changed_since"),
            kwargs.pop("base"),
        )  # fmt: skip
        return command(*args, **kwargs)

    for option in reversed(_NARROWING_OPTIONS):
        wrapped = option(wrapped)
    return wrapped


def manifests_at_or_exit(opts: GlobalOptions, option: str, ref: str, fmt: str) -> Manifest | None:
    """The manifests at git `ref` (None when the config directory held none
    then), compiled from git objects; their errors printed as `fmt` asks."""
    try:
        return manifest_at(opts.config, ref, opts.environment)
    except GitRefError as exc:
        exit_with(f"{opts.said}{option}: {exc}")
    except ManifestInvalid as invalid:
        click.echo(f"error: {opts.said}the manifests at {ref} do not load:", err=True)
        fail_on_invalid(invalid, fmt)
        raise  # pragma: no cover - fail_on_invalid exits


def narrowing_or_exit(
    opts: GlobalOptions,
    manifest: Manifest,
    reader: LiveStateReader,
    asked: NarrowingAsked,
    before: Manifest | None,
) -> Narrowing:
    """The narrowing asked for (none when not given); for --changed-since the
    manifests at GITREF (`before`) are compared with `manifest`."""
    users, attributes = asked.users, asked.attributes
    if asked.changed_since is None:
        return Narrowing(
            frozenset(users) if users else None, frozenset(attributes) if attributes else None
        )
    if users or attributes:
        exit_with("--changed-since cannot be combined with --user/--attribute")
    try:
        return changed_narrowing(before, manifest, asked.changed_since, reader)
    except NotNarrowable as exc:
        click.echo(f"{opts.said}planning in full: {exc}", err=True)
        return Narrowing()


def planned_or_exit(
    opts: GlobalOptions,
    manifest: Manifest,
    reader: LiveStateReader,
    asked: NarrowingAsked,
    fmt: str = "text",
    with_base: bool = True,
) -> tuple[Narrowing, Base | None]:
    """The narrowing, and (`with_base`) the base that tells the manifests'
    changes from drift (--base, else --changed-since); exit 1 on a bad ref,
    or on a --user/--attribute that names nothing (before any user state is
    read)."""
    before = None
    if asked.changed_since is not None:
        before = manifests_at_or_exit(opts, "--changed-since", asked.changed_since, fmt)
    narrowing = narrowing_or_exit(opts, manifest, reader, asked, before)
    unknown = unknown_name_errors(manifest, reader, narrowing)
    if unknown:
        exit_with("; ".join(f"{opts.said}{error}" for error in unknown))
    ref = asked.base or asked.changed_since
    if asked.base is not None and asked.base != asked.changed_since:
        before = manifests_at_or_exit(opts, "--base", asked.base, fmt)
    if ref is None or before is None or not with_base:
        return narrowing, None
    return narrowing, Base.read(ref, before, reader)


read_option = click.option(
    "--read",
    type=click.Choice(READS),
    default="auto",
    show_default=True,
    help="How to read proficiencies: list (one call per user), search (SearchUsers by "
    "value and level), or auto (the cheaper by estimate).",
)


def apply_command(out: Path, opts: GlobalOptions) -> str:
    """The command that applies the plan saved to `out` against what was read."""
    words = ["connect-reconciler", "apply", str(out), "--config", str(opts.config)]
    if opts.environment is not None:
        words += ["--env", opts.environment]
    if opts.target != GlobalOptions.target:
        words += ["--target", opts.target]
    for option, value in (("--region", opts.region), ("--endpoint-url", opts.endpoint_url)):
        if value is not None:
            words += [option, value]
    return shlex.join(words)


@click.command(
    epilog=epilog(
        "0 no changes, 1 error, 2 changes (with --detailed-exitcode), 3 a guard would refuse; "
        "with several environments the most severe of theirs",
        "connect-reconciler plan --config config/ --out plan.json",
    )
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Save the plan for `apply FILE` (with several environments: a directory, "
    "one ENV.json each).",
)
@click.option(
    "--format", "fmt", type=click.Choice(sorted(RENDERERS)), default="text", show_default=True
)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes.")
@narrowing_options
@read_option
@click.option(
    "--take-ownership",
    is_flag=True,
    help="Manage users another settings.owner tagged (they are tagged with ours).",
)
@global_options()
@click.pass_context
def plan(
    ctx: click.Context,
    out: Path | None,
    fmt: str,
    detailed_exitcode: bool,
    asked: NarrowingAsked,
    read: str,
    take_ownership: bool,
) -> None:
    """Read Connect and show what apply would change."""
    opts = options(ctx)
    chosen, several = chosen_or_exit(opts, fmt)
    if several and out is not None and out.exists() and not out.is_dir():
        raise click.UsageError(f"--out {out}: with several environments, --out is a directory")

    def one(
        opts: GlobalOptions, manifest: Manifest, shared: SharedQuotas | None, budget: int
    ) -> tuple[int, str]:
        with connected(opts, manifest, shared=shared) as connection:
            connection.reader.strategy = read
            # in a run of several, stdout is the one document: errors go to stderr
            said_as = fmt if shared is None else "text"
            narrowing, base = planned_or_exit(opts, manifest, connection.reader, asked, said_as)
            result = make_plan(
                manifest, connection.reader, narrowing, take_ownership=take_ownership, base=base
            )
        # the region read is the one a saved plan is for
        result.region = opts.region or result.region
        renderer = renderer_for(fmt, terminal=use_color(opts), limit=budget)
        if opts.quiet and isinstance(renderer, TextRenderer):  # -q: errors and the summary only
            for error in result.errors:
                click.echo(f"error: {opts.said}{error}", err=True)
            text = renderer.summary(result)
        else:
            text = renderer.render(result)
        saved = out / f"{opts.environment}.json" if several and out is not None else out
        if saved is not None:
            if result.errors:
                click.echo(f"not saved to {saved}: the plan has errors", err=True)
            else:
                saved.parent.mkdir(parents=True, exist_ok=True)
                save_plan(result, saved)
                then = (
                    f"apply it with: {apply_command(saved, opts)}"
                    if manifest.environment is None or manifest.environment.apply
                    else f"{opts.environment} is verify-only: apply refuses it"
                )
                click.echo(f"saved to {saved}; {then}", err=True)
        return plan_exit_code(result, detailed_exitcode), text

    run_and_exit(chosen, several, fmt, one)
