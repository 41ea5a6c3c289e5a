"""One command over several environments: each runs in its own thread,
environments in one account and region share a pacer per API, and the
results print as one document (a section each, one JSON object, one PR
comment) with the most severe exit code."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, NoReturn, TypeVar

import click

from reconciler.cli.common import (
    CommandFailed,
    ExitCode,
    GlobalOptions,
    environments_chosen_or_exit,
    load_or_exit,
    log,
)
from reconciler.manifest import Manifest
from reconciler.plan.render import MARKDOWN_LIMIT, MARKDOWN_MARKER
from reconciler.quoting import markdown_cell
from reconciler.targets import SharedQuotas

# Least to most severe: an error anywhere is the run's exit code.
_SEVERITY = (
    ExitCode.OK,
    ExitCode.CHANGES,
    ExitCode.GUARD,
    ExitCode.STALE_PLAN,
    ExitCode.PARTIAL,
    ExitCode.ERROR,
)


def most_severe(codes: list[int]) -> int:
    """The exit code of a run over several environments."""
    ranked = [_SEVERITY.index(c) if c in _SEVERITY else len(_SEVERITY) for c in codes]
    worst = max(ranked, default=0)
    return _SEVERITY[worst] if worst < len(_SEVERITY) else ExitCode.ERROR


T = TypeVar("T")


@dataclass
class EnvironmentResult(Generic[T]):
    """One environment's part of the run: its exit code and its output
    (None when it failed; the reason is on stderr)."""

    name: str
    code: int
    output: T | None
    reason: str = ""  # why it failed, when that was said in so many words
    verify_only: bool = False


def chosen_or_exit(
    opts: GlobalOptions, fmt: str = "text"
) -> tuple[list[tuple[GlobalOptions, Manifest]], bool]:
    """What to run on: the config directory's manifests, or each environment
    --env/--all-envs chooses; and whether the run is over several (--all-envs
    or --env repeated), which prints one document of sections."""
    chosen = environments_chosen_or_exit(opts, fmt)
    if chosen is None:
        return [(opts, load_or_exit(opts, fmt))], False
    return chosen, opts.all_envs or len(opts.env) > 1


def run_each(
    chosen: list[tuple[GlobalOptions, Manifest]],
    body: Callable[[GlobalOptions, Manifest, SharedQuotas, int], tuple[int, T | None]],
) -> tuple[list[EnvironmentResult[T]], SharedQuotas]:
    """Run `body(options, manifests, shared quotas, its share of a PR
    comment's characters)` for every chosen environment at once; a failure
    (an exit inside the body, its message already on stderr) is that
    environment's exit code and stops none of the others."""
    shared = SharedQuotas()
    budget = MARKDOWN_LIMIT // max(len(chosen), 1)

    def run(opts: GlobalOptions, manifest: Manifest) -> EnvironmentResult[T]:
        name = opts.environment or ""
        verify_only = manifest.environment is not None and not manifest.environment.apply
        try:
            code, output = body(opts, manifest, shared, budget)
        except SystemExit as stop:
            reason = stop.message if isinstance(stop, CommandFailed) else ""
            return EnvironmentResult(name, int(stop.code or 0), None, reason, verify_only)
        except Exception as exc:  # a bug or an unwritable --out: this environment's failure
            log.debug("%s failed", name, exc_info=True)
            reason = f"{opts.said}{type(exc).__name__}: {exc}"
            click.echo(f"error: {reason}", err=True)
            return EnvironmentResult(name, ExitCode.ERROR, None, reason, verify_only)
        return EnvironmentResult(name, code, output, verify_only=verify_only)

    with ThreadPoolExecutor(max_workers=max(len(chosen), 1)) as pool:
        futures = [pool.submit(run, opts, manifest) for opts, manifest in chosen]
        return [future.result() for future in futures], shared


def run_and_exit(
    chosen: list[tuple[GlobalOptions, Manifest]],
    several: bool,
    fmt: str,
    body: Callable[[GlobalOptions, Manifest, SharedQuotas | None, int], tuple[int, str | None]],
) -> NoReturn:
    """Run a command's `body` on what `chosen_or_exit` chose: one document
    of sections for several environments, else the body's output alone
    (None: it failed, and said why on stderr); exit with its code."""
    if several:
        results, shared = run_each(chosen, body)
        sys.exit(echo_each(results, fmt, shared, quiet=chosen[0][0].quiet))
    code, text = body(*chosen[0], None, MARKDOWN_LIMIT)
    if text is not None:
        click.echo(text)
    sys.exit(code)


def quota_groups(shared: SharedQuotas, order: list[str]) -> list[dict[str, Any]]:
    """Each account and region the run reached: its environments (in
    `order`) and the calls their one pacer per API made, in total and per
    environment."""
    groups = []
    for group in shared.groups.values():
        members = sorted(group.members, key=lambda m: order.index(m[0]))
        total: Counter[str] = Counter()
        for _, pacer in members:
            total.update(pacer.calls)
        groups.append(
            {
                "account": group.account,
                "region": group.region,
                "environments": [name for name, _ in members],
                "calls": dict(sorted(total.items())),
                "calls_by_environment": {
                    name: dict(sorted(pacer.calls.items())) for name, pacer in members
                },
            }
        )
    return groups


def calls_line(group: dict[str, Any]) -> str:
    """A quota group's calls per API, split by environment when shared."""
    shared = len(group["environments"]) > 1
    calls = []
    for operation, count in group["calls"].items():
        split = ", ".join(
            f"{name} {calls.get(operation, 0)}"
            for name, calls in group["calls_by_environment"].items()
        )
        calls.append(f"{operation} {count}" + (f" ({split})" if shared else ""))
    return (
        f"quota {group['account']} {group['region']}: {', '.join(group['environments'])} "
        f"{'share' if shared else 'has'} one pacer per API: {'; '.join(calls) or 'no calls'}"
    )


def echo_each(
    results: list[EnvironmentResult[str]], fmt: str, shared: SharedQuotas, quiet: bool = False
) -> int:
    """Print the run as one document in `fmt`; the call counts of each
    shared pacer on stderr (not with `quiet`); return the most severe exit
    code."""
    groups = quota_groups(shared, [r.name for r in results])
    if fmt == "json":
        document = {
            "format_version": "1",
            "environments": {
                r.name: json.loads(r.output)
                if r.output is not None
                else {"error": _failure(r), "exit_code": r.code}
                for r in results
            },
            "quota_groups": groups,
        }
        click.echo(json.dumps(document, indent=2))
    elif fmt == "markdown":
        lines = [MARKDOWN_MARKER, f"## connect-reconciler: {len(results)} environments", ""]
        for r in results:
            body = (
                f"_{markdown_cell(_failure(r))}_"
                if r.output is None
                else r.output.replace(MARKDOWN_MARKER + "\n", "")
            )
            lines += [
                f"<details open><summary><b>{r.name}</b>{_VERIFY_ONLY * r.verify_only}</summary>",
                "",
                body,
                "",
                "</details>",
            ]
        click.echo("\n".join(lines))
    else:
        for r in results:
            click.echo(f"── environment {r.name}{_VERIFY_ONLY * r.verify_only} ──")
            click.echo(_failure(r) if r.output is None else r.output)
            click.echo()
    for group in [] if quiet else groups:
        click.echo(calls_line(group), err=True)
    return most_severe([r.code for r in results])


def _failure(result: EnvironmentResult[str]) -> str:
    if result.reason:
        return f"failed: {result.reason}"
    return "failed: the reason is on stderr (the job's log)"


_VERIFY_ONLY = " (verify only: apply refuses it)"
