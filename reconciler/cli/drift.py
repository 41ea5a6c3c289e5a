"""`drift`: the plan as a JSON report for scheduled jobs."""

from __future__ import annotations

import json

import click

from reconciler.cli.common import (
    ExitCode,
    GlobalOptions,
    connected,
    epilog,
    global_options,
    options,
)
from reconciler.cli.fanout import chosen_or_exit, run_and_exit
from reconciler.cli.plan import read_option
from reconciler.manifest import Manifest
from reconciler.plan.plan import Plan
from reconciler.plan.planner import make_plan
from reconciler.plan.render import MARKDOWN_LIMIT, JsonRenderer, MarkdownRenderer
from reconciler.targets import SharedQuotas


def drift_exit_code(plan: Plan) -> int:
    """docs/design.md §2: 1 errors, 2 drift, 0 in sync. A guard that would refuse the
    apply is a finding in the report ("guards"), not an exit code: a
    scheduled job asks only whether Connect drifted."""
    if plan.errors:
        return ExitCode.ERROR
    return ExitCode.CHANGES if plan.has_changes else ExitCode.OK


def drift_markdown(plan: Plan, limit: int = MARKDOWN_LIMIT) -> str:
    """The report as Markdown: in sync or not first, then the plan that
    would set Connect back (every change in it is drift), unmet
    requirements included in its table."""
    if plan.errors:
        status = "**The drift check failed: see the errors below.**"
    elif plan.has_changes:
        status = "**Connect has drifted from the manifests**: apply would make these changes."
    else:
        status = "**In sync**: Connect matches the manifests."
    return "\n".join(
        [
            "### connect-reconciler drift report",
            "",
            status,
            "",
            MarkdownRenderer(limit).render(plan),
        ]
    )


@click.command(
    epilog=epilog(
        "0 in sync, 1 error, 2 drift (guard findings are in the report)",
        "connect-reconciler drift --config config/ > drift.json",
    )
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "markdown"]),
    default="json",
    show_default=True,
    help="markdown: a report for an issue or $GITHUB_STEP_SUMMARY.",
)
@read_option
@global_options()
@click.pass_context
def drift(ctx: click.Context, fmt: str, read: str) -> None:
    """Report live vs manifests (JSON, or Markdown for an issue), for scheduled
    jobs (0 in sync, 2 drift);
    `--read list` for an authoritative check that never relies on search."""
    opts = options(ctx)
    chosen, several = chosen_or_exit(opts, fmt)

    def one(
        opts: GlobalOptions, manifest: Manifest, shared: SharedQuotas | None, budget: int
    ) -> tuple[int, str]:
        with connected(opts, manifest, shared=shared) as connection:
            connection.reader.strategy = read
            result = make_plan(manifest, connection.reader)
        if fmt == "markdown":
            return drift_exit_code(result), drift_markdown(result, budget)
        report = json.loads(JsonRenderer().render(result))
        report["in_sync"] = not result.has_changes
        # Unmet even when Connect matches the manifests: a drift job reports them too.
        report["unmet_requirements"] = [
            {**row.data, "cause": row.cause} for row in result.coverage if not row.met
        ]
        return drift_exit_code(result), json.dumps(report, indent=2)

    run_and_exit(chosen, several, fmt, one)
