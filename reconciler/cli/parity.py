"""`parity`: do two environments' instances hold the same routing data?"""

from __future__ import annotations

import sys

import click

from reconciler.cli.common import (
    CONNECTED,
    ExitCode,
    GlobalOptions,
    connected,
    environments_chosen_or_exit,
    epilog,
    exit_with,
    global_options,
    options,
)
from reconciler.cli.fanout import calls_line, most_severe, quota_groups, run_each
from reconciler.cli.plan import read_option
from reconciler.connect.reader import ReadScope
from reconciler.manifest import Manifest
from reconciler.plan.parity import parity, parity_json, parity_text
from reconciler.state import RoutingState
from reconciler.targets import SharedQuotas


@click.command(
    "parity",
    epilog=epilog(
        "0 the same, 1 error, 2 they differ",
        "connect-reconciler parity prod dr --format json",
    ),
)
@click.argument("env_a")
@click.argument("env_b")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@read_option
@global_options(*(name for name in CONNECTED if name not in ("env", "all_envs")))
@click.pass_context
def parity_command(ctx: click.Context, env_a: str, env_b: str, fmt: str, read: str) -> None:
    """Compare the live state of two environments' instances by name:
    attributes, their values, and each username's proficiencies (the nightly
    DR check; user ids differ per instance). Both are read at once."""
    opts = options(ctx)
    if env_a == env_b:
        raise click.UsageError("give two different environments")
    opts.env = (env_a, env_b)
    both = environments_chosen_or_exit(opts, fmt)
    if both is None:
        exit_with(f"parity compares two environments: {opts.config} has no environments.yaml")

    def live(
        opts: GlobalOptions, manifest: Manifest, shared: SharedQuotas, _: int
    ) -> tuple[int, RoutingState]:
        with connected(opts, manifest, shared=shared) as connection:
            connection.reader.strategy = read
            state = connection.reader.read(ReadScope(declared_users=set(), all_users=True))
        if state.errors:
            for error in state.errors:
                click.echo(f"error: {opts.environment}: {error}", err=True)
            return ExitCode.ERROR, state.state
        return ExitCode.OK, state.state

    results, shared = run_each(both, live)
    failed = most_severe([r.code for r in results])
    first, second = results
    if failed or first.output is None or second.output is None:
        sys.exit(failed or ExitCode.ERROR)
    differences = parity(env_a, first.output, env_b, second.output)
    if fmt == "json":
        instances = {
            name: {"id": m.instance.instance_id, "region": m.instance.region_name}
            for (_, m), name in zip(both, (env_a, env_b), strict=True)
        }
        click.echo(parity_json(instances, differences))
    else:
        click.echo(parity_text(env_a, env_b, differences))
    for group in quota_groups(shared, [env_a, env_b]):
        click.echo(calls_line(group), err=True)
    sys.exit(ExitCode.CHANGES if differences else ExitCode.OK)
