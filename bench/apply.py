"""Apply cost against the quotas of docs/design.md §4: calls, wall time, ratio to the floor.

    python -m bench.apply [--users 1000] [--scale 25] [--parallelism 8] [--lag 5]

1,000 users each need one association, one level update and one
disassociation (three calls to three different APIs), and 5 attributes
change (3 gain a value before the users change, 2 lose one after). The
emulator runs in its own process at 2 requests/s, burst 5, per API, `--scale`
times faster than real time. Only the apply is timed (the plan is made
first). The apply runs twice: on an instance that shows every write at once,
and on one whose writes reach each read path up to `--lag` service seconds
late (`emulator serve --consistency-lag`), where the users of the values just
added wait for them. Targets: calls <= one per non-empty list per user plus
one per attribute change (plus, with the lag, the propagation retries); wall
<= 1.15 x the floor without the lag, and <= 1.05 x (floor + lag) with it; no
throttle surfaced as an error. The last lines are

    RESULT apply users=N lag=L calls=C real_s=S floor_s=F throttled=T propagation_retries=R
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

from bench.plan import Run, measured
from bench.served import served_emulator
from bench.synthetic import (
    INSTANCE_ID,
    Shape,
    drifted,
    snapshot_of_state,
    synthetic_state,
    write_manifests,
)
from reconciler.apply import Applier, Journal
from reconciler.connect.client import connect_client
from reconciler.connect.pacer import QuotaPacer
from reconciler.connect.reader import LiveStateReader
from reconciler.files import write_json_atomically
from reconciler.manifest import load_manifest
from reconciler.plan.planner import make_plan
from reconciler.state import Attribute, RoutingState


def instance(users: int) -> tuple[RoutingState, RoutingState]:
    """(desired, live): every user drifted; 3 attributes gain a value, which
    a tenth of the users are given, and 2 lose one nobody holds."""
    desired = synthetic_state(Shape(users=users, attributes=20, values=25, proficiencies=8))
    live = drifted(desired, 1.0)
    desired = copy.deepcopy(desired)
    for index, name in enumerate(sorted(desired.attributes)[:5]):
        attribute = desired.attributes[name]
        if index < 3:  # a value to add before users change
            desired.attributes[name] = Attribute(name, (*attribute.values, "New value"))
            for username in sorted(desired.users)[index::30]:
                desired.users[username].proficiencies[(name, "New value")] = 3
        else:  # a value nobody holds, to remove after
            live.attributes[name] = Attribute(name, (*attribute.values, "Old value"))
    return desired, live


def bench_apply(users: int, scale: float, parallelism: int, lag: float) -> None:
    desired, live = instance(users)
    with tempfile.TemporaryDirectory() as tmp:
        config, snapshot = Path(tmp) / "config", Path(tmp) / "snapshot.json"
        write_manifests(desired, config, INSTANCE_ID)
        document = snapshot_of_state(live)
        if lag:
            document["Behaviour"] = {"consistency-lag": lag, "seed": 1}
        write_json_atomically(snapshot, document)
        manifest = load_manifest(config)
        with served_emulator(snapshot, scale) as url:
            client = connect_client(endpoint_url=url, emulator=True)
            pacer = QuotaPacer(client, time_scale=scale)
            reader = LiveStateReader(pacer, INSTANCE_ID)
            plan = make_plan(manifest, reader)
            # Everything the plan read has reached every path before the apply
            # starts, as for an apply made after a reviewed plan.
            time.sleep(max(10, lag) / scale)
            lists = sum(len(c.steps) for c in plan.user_changes)
            attributes = len(plan.attribute_changes)
            journal = Journal(Path(tmp) / "journal.jsonl")
            run, result = measured(
                "apply",
                url,
                scale,
                lambda: Applier(pacer, reader, INSTANCE_ID, journal, parallelism).apply(plan),
            )
            journal.close()
            lines = [json.loads(line) for line in (Path(tmp) / "journal.jsonl").open()]
    waited = sum(1 for r in lines if r["type"] == "retry" and r.get("propagation"))
    report(run, users, lag, lists + attributes, waited, result)


READ_BACKS = ("DescribePredefinedAttribute", "ListTagsForResource")


def report(run: Run, users: int, lag: float, expected: int, waited: int, result: object) -> None:
    floor, bound = run.floor
    by_calls = sorted(run.stats.items(), key=lambda item: -item[1]["calls"])
    print("  " + ", ".join(f"{op} {counts['calls']}" for op, counts in by_calls))
    applied = len(getattr(result, "applied", []))
    failed = len(getattr(result, "failed", {}))
    # Reads that check what concurrent writers did (a value list before and
    # after its update, owner tags): counted apart from the writes' target.
    checks = sum(run.stats.get(op, {}).get("calls", 0) for op in READ_BACKS)
    print(
        f"  lag {lag:g} s: applied {applied}, failed {failed}; calls {run.calls}: steps "
        f"{run.calls - checks} (target <= {expected} + {waited} propagation retries) and "
        f"{checks} read-backs ({', '.join(READ_BACKS)}), throttled {run.throttled}, real "
        f"{run.real_s:.0f} s, floor {floor:.0f} s ({bound})"
    )
    target = 1.05 * (floor + lag) if lag else 1.15 * floor
    print(f"  wall {run.real_s:.0f} s, target <= {target:.0f} s")
    print(
        f"RESULT apply users={users} lag={lag:g} calls={run.calls} real_s={run.real_s:.0f} "
        f"floor_s={floor:.0f} throttled={run.throttled} propagation_retries={waited}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--scale", type=float, default=25.0)
    parser.add_argument("--parallelism", type=int, default=8)
    parser.add_argument("--lag", type=float, default=5.0, help="service seconds; 0: no lag run")
    args = parser.parse_args()
    print(f"apply of {args.users} users; emulator quotas 2 requests/s, burst 5, per API, at "
          f"{args.scale:g}x; parallelism {args.parallelism}")  # fmt: skip
    for lag in (0.0, args.lag) if args.lag else (0.0,):
        bench_apply(args.users, args.scale, args.parallelism, lag)


if __name__ == "__main__":
    main()
