"""Four environments of 10,000 agents each, planned in one run.

    python -m bench.envs [--users 10000] [--scale 5] [--runs 3]

One config directory declares four environments (a shared base layer of
20 attributes x 10 values, and a layer per environment with its instance
and its users, 8 proficiencies each, 5% drifted live). Their instances:

    prod, staging   account 111111111111, us-east-1   (one quota per API)
    dr              account 111111111111, us-west-2
    emea            account 222222222222, eu-west-1

Each account and region is served by its own emulator process; prod's and
staging's two emulators run in one process and throttle on one set of
buckets, as Connect's quotas are the account's in a region. The emulators
enforce 2 requests/s with a burst of 5 per API, `--scale` times faster, and
the manifests' `settings.quotas` tell the tool the same sped-up quotas, so a
run takes (real seconds) / scale. The run is the real command line in its
own process: `connect-reconciler plan --all-envs --format json` with a
`--target ENV=URL` each, timed from start to exit (loading the four
manifest sets included).

A group's floor is, per API, (its successful calls - burst) / rate, the
largest over its APIs: at those quotas no client can plan that group
faster. The run's floor is the busiest group's. Target (issue 25): real_s
<= 1.1 x floor, 0 throttled, in every run. The last line is

    RESULT envs environments=4 users=N real_s=S floor_s=F throttled=T

with the median over the runs (and the spread on the line before).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from bench.served import ROOT, control
from bench.synthetic import Shape, drifted, snapshot_of_state, synthetic_state, write_manifests
from reconciler.emulator import ConnectEmulator, load_snapshot
from reconciler.files import write_json_atomically
from reconciler.service.quotas import DEFAULT_QUOTAS, quota_for

# environment -> (account, region); prod and staging share one quota per API
ENVIRONMENTS = {
    "prod": ("111111111111", "us-east-1"),
    "staging": ("111111111111", "us-east-1"),
    "dr": ("111111111111", "us-west-2"),
    "emea": ("222222222222", "eu-west-1"),
}
TARGET_RATIO = 1.1


def instance_id(index: int) -> str:
    return f"0000000{index}-0000-4000-8000-000000000000"


def write_environments(directory: Path, users: int, scale: float) -> dict[str, Path]:
    """The config directory (environments.yaml, base/, one layer each) and a
    drifted snapshot per environment; returns {environment: snapshot}."""
    config = directory / "config"
    base = config / "base"
    base.mkdir(parents=True)
    quotas = "".join(
        f"    {op}: {{rate: {q.rate * scale:g}, burst: {q.burst}}}\n"
        for op, q in sorted(DEFAULT_QUOTAS.items())
    )
    (base / "settings.yaml").write_text(
        f"settings:\n  max_change_percent: 100\n  quotas:\n{quotas}"
    )
    layers = "".join(f"  {name}: {{layers: [base, {name}]}}\n" for name in ENVIRONMENTS)
    (config / "environments.yaml").write_text(f"environments:\n{layers}")
    snapshots = {}
    for index, (name, (account, region)) in enumerate(ENVIRONMENTS.items(), start=1):
        state = synthetic_state(Shape(users=users, attributes=20, values=10, seed=index))
        layer = config / name
        write_manifests(state, layer, instance_id(index))
        (layer / "attributes.yaml").replace(base / "attributes.yaml")  # the same in every one
        arn = f"arn:aws:connect:{region}:{account}:instance/{instance_id(index)}"
        (layer / "instance.yaml").write_text(f"instance:\n  arn: {arn}\n")
        snapshot = snapshot_of_state(drifted(state, 0.05), instance_id(index))
        snapshot["Instance"]["Arn"] = arn
        snapshots[name] = directory / f"{name}.json"
        write_json_atomically(snapshots[name], snapshot)
    return snapshots


def serve(snapshots: list[Path], scale: float) -> None:
    """One account and region: an emulator per snapshot, the later ones
    throttling on the first's buckets; prints their URLs on one line."""
    emulators = [ConnectEmulator(load_snapshot(s), quota_scale=scale) for s in snapshots]
    for emulator in emulators[1:]:
        emulator.share_quotas(emulators[0])
    for emulator in emulators:
        threading.Thread(target=emulator.serve_forever, daemon=True).start()
    stop = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    print(" ".join(e.url for e in emulators), flush=True)
    signal.sigwait(stop)


@contextmanager
def served_groups(snapshots: dict[str, Path], scale: float) -> Iterator[dict[str, str]]:
    """An emulator process per account and region; yields {environment: URL}."""
    groups: dict[tuple[str, str], list[str]] = {}
    for name, place in ENVIRONMENTS.items():
        groups.setdefault(place, []).append(name)
    urls: dict[str, str] = {}
    with ExitStack() as stack:
        for names in groups.values():
            command = [sys.executable, "-m", "bench.envs", "--serve", "--scale", str(scale),
                       *(str(snapshots[n]) for n in names)]  # fmt: skip
            process = subprocess.Popen(
                command, stdout=subprocess.PIPE, text=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )  # fmt: skip
            stack.callback(process.wait, 30)
            stack.callback(process.terminate)
            assert process.stdout is not None
            urls.update(zip(names, process.stdout.readline().split(), strict=True))
        yield urls


def floor_of(stats: list[dict[str, dict[str, int]]]) -> float:
    """Real seconds a group's successful calls need at its quotas."""
    ok: dict[str, int] = {}
    for emulator in stats:
        for operation, counts in emulator.items():
            ok[operation] = ok.get(operation, 0) + counts.get("ok", 0)
    return max(max(0, n - quota_for(op).burst) / quota_for(op).rate for op, n in ok.items())


def one_run(config: Path, snapshots: dict[str, Path], scale: float) -> dict[str, Any]:
    """Serve fresh emulators (every bucket full), plan all four, measure."""
    with served_groups(snapshots, scale) as urls:
        targets = [arg for name, url in urls.items() for arg in ("--target", f"{name}={url}")]
        command = [sys.executable, "-m", "reconciler", "plan", "--all-envs", "--config",
                   str(config), "--format", "json", *targets]  # fmt: skip
        started = time.perf_counter()
        # endpoint targets sign with the credential chain: any keys will do
        keys = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
        done = subprocess.run(
            command, capture_output=True, text=True, cwd=ROOT, check=False,
            env={**os.environ, **keys},
        )  # fmt: skip
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"plan failed ({done.returncode}):\n{done.stderr[-3000:]}")
        stats = {name: control(url, "stats") for name, url in urls.items()}
    document = json.loads(done.stdout)
    groups = []
    for group in document["quota_groups"]:
        members = group["environments"]
        groups.append((members, floor_of([stats[n] for n in members]), group["calls"]))
    throttled = sum(c.get("throttled", 0) for s in stats.values() for c in s.values())
    changed = {n: p["summary"]["users_changed"] for n, p in document["environments"].items()}
    return {"real_s": wall * scale, "groups": groups, "throttled": throttled, "changed": changed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--scale", type=float, default=5.0, help="quotas this many times faster")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("snapshots", nargs="*", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.snapshots, args.scale)
        return
    with tempfile.TemporaryDirectory() as tmp:
        snapshots = write_environments(Path(tmp), args.users, args.scale)
        print(
            f"== {len(ENVIRONMENTS)} environments x {args.users} users, quotas 2/s burst 5 per "
            f"API x{args.scale:g} (real s = wall x scale)"
        )
        runs = []
        for number in range(1, args.runs + 1):
            run = one_run(Path(tmp) / "config", snapshots, args.scale)
            busiest = max(run["groups"], key=lambda g: g[1])
            run["floor_s"] = busiest[1]
            for members, floor, calls in run["groups"]:
                print(
                    f"  run {number} group {'+'.join(members)}: floor {floor:.0f} s, calls {calls}"
                )
            print(
                f"run {number}: real {run['real_s']:.0f} s, busiest floor {run['floor_s']:.0f} s "
                f"({'+'.join(busiest[0])}), ratio {run['real_s'] / run['floor_s']:.3f}, "
                f"throttled {run['throttled']}, users changed {run['changed']}"
            )
            runs.append(run)
    real = [r["real_s"] for r in runs]
    floor = [r["floor_s"] for r in runs]
    ratios = [r["real_s"] / r["floor_s"] for r in runs]
    throttled = max(r["throttled"] for r in runs)
    print(
        f"median real {statistics.median(real):.0f} s ({min(real):.0f}-{max(real):.0f}), "
        f"ratio {statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f}, target "
        f"<= {TARGET_RATIO}), throttled in every run: {[r['throttled'] for r in runs]}"
    )
    print(
        f"RESULT envs environments={len(ENVIRONMENTS)} users={args.users} "
        f"real_s={statistics.median(real):.0f} floor_s={statistics.median(floor):.0f} "
        f"throttled={throttled}"
    )


if __name__ == "__main__":
    main()
