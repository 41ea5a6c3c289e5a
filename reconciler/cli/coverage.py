"""`coverage`: routing requirements (and recent contacts' steps) vs agents."""

from __future__ import annotations

import json
import re
import time

import click

from reconciler.cli.common import (
    ExitCode,
    GlobalOptions,
    connected,
    epilog,
    global_options,
    options,
    use_color,
)
from reconciler.cli.fanout import chosen_or_exit, run_and_exit
from reconciler.connect.contacts import read_contacts
from reconciler.manifest import Manifest
from reconciler.plan.planner import make_plan
from reconciler.plan.render import TextRenderer
from reconciler.routing.contacts import contact_steps
from reconciler.routing.report import coverage_data, coverage_markdown, coverage_report
from reconciler.service.timestamps import to_epoch
from reconciler.targets import SharedQuotas

_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str) -> float:
    """`30m`, `24h`, `7d`, `2w` as seconds."""
    match = re.fullmatch(r"(\d+)([mhdw])", text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a duration like 30m, 24h, 7d or 2w")
    return int(match.group(1)) * _UNITS[match.group(2)]


@click.command(
    epilog=epilog(
        "0 every requirement met, 1 error, 2 a requirement is unmet",
        "connect-reconciler coverage --from-contacts 7d --format markdown",
    )
)
@click.option(
    "--from-contacts", "since", help="Also check routing steps of contacts since: 30m, 24h, 7d, 2w."
)
@click.option("--until", help="End of that contact window, ISO 8601 [now].")
@click.option(
    "--max-contacts",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Read at most this many of the newest contacts in the window.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
)
@global_options()
@click.pass_context
def coverage(
    ctx: click.Context, since: str | None, until: str | None, max_contacts: int, fmt: str
) -> None:
    """Eligible agents per routing requirement (and per routing step of recent
    contacts), now and after the plan; exit 2 when one is unmet."""
    opts = options(ctx)
    try:
        window = parse_since(since) if since else None
        end = to_epoch(until) if until else time.time()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    chosen, several = chosen_or_exit(opts, fmt)

    def one(
        opts: GlobalOptions, manifest: Manifest, shared: SharedQuotas | None, budget: int
    ) -> tuple[int, str | None]:
        steps = None
        with connected(opts, manifest, shared=shared) as connection:
            if window is not None:
                read = read_contacts(connection.reader, end - window, end, max_contacts)
                if read.cut:
                    click.echo(
                        f"note: {opts.said}--max-contacts {max_contacts} cut the window: read "
                        f"the newest {len(read.contacts)} of {read.total} contacts since {since}; "
                        "raise it or narrow --from-contacts/--until to see them all",
                        err=True,
                    )
                # Steps that name agents show them by username, not by id.
                steps = contact_steps(read.contacts, connection.reader.usernames_by_id())
            extra = steps.requirements() if steps else []
            result = make_plan(manifest, connection.reader, extra_requirements=extra)
        if result.errors:
            rendered = TextRenderer(color=use_color(opts)).render(result)
            if shared is None:
                click.echo(rendered, err=fmt != "text")
            else:  # in a run of several, stdout is the one document
                click.echo(
                    "\n".join(f"{opts.said}{line}" for line in rendered.splitlines()), err=True
                )
            return ExitCode.ERROR, None
        declared = len(manifest.requirements)
        if fmt == "json":
            text = json.dumps(coverage_data(result.coverage, declared, steps), indent=2)
        elif fmt == "markdown":
            text = coverage_markdown(result.coverage, declared, steps)
        else:
            text = coverage_report(result.coverage, declared, steps)
        unmet = [row for row in result.coverage if not row.met]
        return ExitCode.CHANGES if unmet else ExitCode.OK, text

    run_and_exit(chosen, several, fmt, one)
