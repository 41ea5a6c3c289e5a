"""`explain`: why a contact waits, step by step, now and after the plan."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from reconciler.cli.common import ExitCode, connected, epilog, global_options, load_or_exit, options
from reconciler.plan.explain import ContactRefused, explain
from reconciler.routing.expression import ExpressionError, parse_text


@click.command(
    "explain",
    epilog=epilog(
        "0 explained (also a contact with nothing to explain), 1 error",
        "connect-reconciler explain 51abdfa1-1e6d-5d24-b713-323c3d0fa9f5 --format markdown",
    ),
)
@click.argument("contact_id", required=False)
@click.option(
    "--expression",
    "text",
    help='A step not yet on a contact: "Language = Spanish >= 4 AND Skill = Billing >= 3".',
)
@click.option(
    "--near-misses",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="Agents one condition short to list per step.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
)
@click.option("--instance-id", help="The instance (default: the manifests'; then no after-state).")
@global_options()
@click.pass_context
def explain_command(
    ctx: click.Context,
    contact_id: str | None,
    text: str | None,
    near_misses: int,
    fmt: str,
    instance_id: str | None,
) -> None:
    """Explain a contact's routing steps (or one --expression): eligible agents
    now and after the manifests' plan, per condition, the limiting condition
    and the agents one condition short, with what they lack."""
    opts = options(ctx)
    if (contact_id is None) == (text is None):
        raise click.UsageError("give a CONTACT_ID or --expression, not both")
    try:
        expression = parse_text(text) if text is not None else None
    except ExpressionError as exc:
        raise click.UsageError(f"--expression: {exc}") from None
    manifest = (
        load_or_exit(opts, fmt) if instance_id is None or Path(opts.config).is_dir() else None
    )
    with connected(opts, manifest, instance_id) as connection:
        try:
            explained = explain(
                connection.reader,
                manifest,
                contact_id=contact_id,
                expression=expression,
                near_misses=near_misses,
            )
        except ContactRefused as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(ExitCode.ERROR)
    click.echo(explained.render(fmt))
