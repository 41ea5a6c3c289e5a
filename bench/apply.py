"""Apply cost against the quotas of docs/design.md §4: calls, wall time, ratio to the floor.

    python -m bench.apply [--users 1000] [--scale 25] [--parallelism 8]

1,000 users each need one association, one level update and one
disassociation (three calls to three different APIs), and 5 attributes
change (3 gain a value before the users change, 2 lose one after). The
emulator runs in its own process at 2 requests/s, burst 5, per API, `--scale`
times faster than real time. Only the apply is timed (the plan is made
first). Targets (issue 5): calls <= one per non-empty list per user plus one
per attribute change; wall / floor <= 1.15; no throttle surfaced as an error.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

from bench.plan import report
from bench.served import control, served_emulator
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
from reconciler.state import Attribute


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--scale", type=float, default=25.0)
    parser.add_argument("--parallelism", type=int, default=8)
    args = parser.parse_args()
    desired = synthetic_state(Shape(users=args.users, attributes=20, values=25, proficiencies=8))
    live = drifted(desired, 1.0)
    desired = copy.deepcopy(desired)
    for index, name in enumerate(sorted(desired.attributes)[:5]):
        attribute = desired.attributes[name]
        if index < 3:  # a value to add before users change
            desired.attributes[name] = Attribute(name, (*attribute.values, "New value"))
        else:  # a value nobody holds, to remove after
            live.attributes[name] = Attribute(name, (*attribute.values, "Old value"))
    with tempfile.TemporaryDirectory() as tmp:
        config, snapshot = Path(tmp) / "config", Path(tmp) / "snapshot.json"
        write_manifests(desired, config, INSTANCE_ID)
        write_json_atomically(snapshot, snapshot_of_state(live))
        manifest = load_manifest(config)
        with served_emulator(snapshot, args.scale) as url:
            client = connect_client(endpoint_url=url, emulator=True)
            pacer = QuotaPacer(client, time_scale=args.scale)
            reader = LiveStateReader(pacer, INSTANCE_ID)
            plan = make_plan(manifest, reader)
            lists = sum(len(c.steps) for c in plan.user_changes)
            attributes = len(plan.attribute_changes)
            control(url, "reset", "POST")
            time.sleep(10 / args.scale)  # buckets refill, as if applied later
            journal = Journal(Path(tmp) / "journal.jsonl")
            started = time.perf_counter()
            result = Applier(pacer, reader, INSTANCE_ID, journal, args.parallelism).apply(plan)
            wall = time.perf_counter() - started
            journal.close()
            print(
                f"apply of {len(plan.user_changes)} user changes ({lists} non-empty lists) and ",
                end="",
            )
            print(f"{attributes} attribute changes; parallelism {args.parallelism}")
            print("emulator quotas: 2 requests/s, burst 5, per API")
            ratio = report("apply:", control(url, "stats"), wall, args.scale)
            applied, failed, skipped = len(result.applied), len(result.failed), len(result.skipped)
            print(f"  applied {applied}, failed {failed}, skipped {skipped}", end="")
            print(f"; throttles absorbed by retries {result.throttles_absorbed}")
            print(f"  target: calls <= {lists + attributes}; ratio <= 1.15 (got {ratio:.3f})")


if __name__ == "__main__":
    main()
