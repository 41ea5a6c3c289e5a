"""Plan cost against the DESIGN quotas: calls, wall time, ratio to the floor.

    python -m bench.plan [--users 10000] [--scale 50]

A synthetic instance (20 attributes x 25 values, 8 proficiencies per user,
5% of users drifted) is served by the emulator in its own process, enforcing
2 requests/s with a burst of 5 for every API, `--scale` times faster than
real time. The manifests declare the undrifted instance. Figures are
converted back to real seconds. The quota floor is, for each API, calls /
rate; the plan can be no faster than the largest. Targets (issue 4): calls =
users + ceil(users/1000) + ceil(attributes/100) + a small constant; wall /
floor <= 1.15; zero throttled calls; diff CPU under 1 s; a plan narrowed to
20 users under 30 real seconds.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

from bench.served import control, served_emulator
from bench.synthetic import (
    INSTANCE_ID,
    Shape,
    drifted,
    snapshot_of_state,
    synthetic_state,
    write_manifests,
)
from reconciler.atomic import write_json_atomically
from reconciler.connect.client import connect_client
from reconciler.connect.pacer import QuotaPacer
from reconciler.connect.quotas import quota_for
from reconciler.connect.reader import LiveStateReader
from reconciler.manifest import load_manifest
from reconciler.plan.diff import DiffPolicy, diff
from reconciler.plan.planner import Narrowing, make_plan


def report(title: str, stats: dict, wall: float, scale: float) -> float:
    """Print calls per API, throttles, wall and floor; return the ratio."""
    calls = {op: counts["calls"] for op, counts in stats.items()}
    throttled = sum(counts.get("throttled", 0) for counts in stats.values())
    floors = {op: n / quota_for(op).rate for op, n in calls.items()}
    bound = max(floors, key=floors.get)
    real = wall * scale
    ratio = real / floors[bound]
    print(title)
    for op, n in sorted(calls.items(), key=lambda item: -item[1]):
        print(f"  {op:28} {n:7d} calls   floor {floors[op]:8.1f} s")
    print(f"  total calls {sum(calls.values())}, throttled {throttled}")
    print(f"  wall {wall:.1f} s at {scale:g}x = {real:.0f} real s")
    print(f"  quota floor {floors[bound]:.0f} real s ({bound}); ratio wall/floor {ratio:.3f}")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--scale", type=float, default=50.0)
    parser.add_argument("--drift", type=float, default=0.05)
    args = parser.parse_args()
    shape = Shape(users=args.users, attributes=20, values=25, proficiencies=8)
    state = synthetic_state(shape)
    with tempfile.TemporaryDirectory() as tmp:
        config, snapshot = Path(tmp) / "config", Path(tmp) / "snapshot.json"
        write_manifests(state, config, INSTANCE_ID)
        write_json_atomically(snapshot, snapshot_of_state(drifted(state, args.drift)))
        manifest = load_manifest(config)
        with served_emulator(snapshot, args.scale) as url:
            client = connect_client(endpoint_url=url, emulator=True)
            reader = LiveStateReader(QuotaPacer(client, time_scale=args.scale), INSTANCE_ID)

            started = time.perf_counter()
            plan = make_plan(manifest, reader)
            wall = time.perf_counter() - started
            print(f"plan of {shape.users} users x {shape.proficiencies} proficiencies, ", end="")
            print(
                f"{shape.attributes} attributes x {shape.values} values, {args.drift:.0%} drifted"
            )
            print("emulator quotas: 2 requests/s, burst 5, per API")
            ratio = report("full plan:", control(url, "stats"), wall, args.scale)
            expected = (
                shape.users + math.ceil(shape.users / 1000) + math.ceil(shape.attributes / 100)
            )
            print(f"  changes: {plan.summary}; errors {len(plan.errors)}")
            print(
                f"  target: calls = {expected} + a small constant; ratio <= 1.15 (got {ratio:.3f})"
            )

            # The diff is pure: time it on the same instance without the API.
            cpu = time.process_time()
            diff(state, drifted(state, args.drift), DiffPolicy())
            print(f"  diff CPU: {time.process_time() - cpu:.2f} s (target < 1 s)")

            control(url, "reset", "POST")
            time.sleep(10 / args.scale)  # let every bucket refill, as between two CI runs
            some = frozenset(sorted(manifest.desired.users)[:20])
            started = time.perf_counter()
            make_plan(manifest, reader, Narrowing(users=some))
            wall = time.perf_counter() - started
            report(
                "plan narrowed to 20 users (--user x20):", control(url, "stats"), wall, args.scale
            )
            print(f"  target: under 30 real s (got {wall * args.scale:.1f})")


if __name__ == "__main__":
    main()
