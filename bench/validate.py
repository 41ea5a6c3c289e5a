"""Load + validate time of a large synthetic manifest set.

    python -m bench.validate [--users 10000] [--proficiencies 8] [--csv] [--plan-memory]

Targets: under 3 s for 10,000 users x 8 proficiencies in YAML, and for
50,000 users x 8 proficiencies (400,000 rows) in one CSV (`--csv`, whose
default size that is), on 2 cores. `--plan-memory` also plans the users
in CSV and in YAML against an embedded emulator holding them with 5 % drift,
each run in a child process, and prints each one's peak memory: the CSV
must not cost more than the YAML.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.synthetic import (
    INSTANCE_ID,
    Shape,
    drifted,
    snapshot_of_state,
    synthetic_state,
    write_manifests,
)
from reconciler.files import write_json_atomically
from reconciler.manifest import load_manifest
from reconciler.state import RoutingState

# A plan in this child process, then its own peak resident memory in KiB
# (Linux reports ru_maxrss in KiB).
_PLAN_PEAK = """
import resource, sys
from reconciler.cli import cli
try:
    cli(sys.argv[1:])
except SystemExit as done:
    assert done.code in (0, None, 2), done.code
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def plan_peak_mib(config: Path, snapshot: Path) -> float:
    """Peak memory of one `plan` of `config` against a copy of `snapshot`."""
    target = snapshot.with_name(f"run-{snapshot.name}")
    target.write_bytes(snapshot.read_bytes())
    ran = subprocess.run(
        [sys.executable, "-c", _PLAN_PEAK, "-q", "plan", "--config", str(config),
         "--target", f"emulator:{target}"],
        capture_output=True, text=True,
    )  # fmt: skip
    if ran.returncode != 0:
        raise SystemExit(f"plan of {config} failed (exit {ran.returncode}):\n{ran.stderr}")
    return int(ran.stdout.split()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, help="default 10,000; 50,000 with --csv")
    parser.add_argument("--proficiencies", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--csv", action="store_true", help="users in one long-layout CSV")
    parser.add_argument(
        "--plan-memory", action="store_true", help="compare a plan's peak memory, CSV and YAML"
    )
    args = parser.parse_args()
    users_format = "csv" if args.csv else "yaml"
    users = args.users or (50_000 if args.csv else 10_000)
    shape = Shape(users=users, proficiencies=args.proficiencies)
    state = synthetic_state(shape)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / users_format
        write_manifests(state, directory, INSTANCE_ID, users_format)
        size = sum(p.stat().st_size for p in directory.iterdir())
        timings = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            manifest = load_manifest(directory)
            timings.append(time.perf_counter() - start)
        if args.plan_memory:
            print_plan_memory(state, Path(tmp), args.repeat)
    held = sum(len(u.proficiencies) for u in manifest.desired.users.values())
    print(
        f"manifests: {shape.users} users x {shape.proficiencies} proficiencies "
        f"({held} entries, {size / 1e6:.1f} MB, users in {users_format.upper()})"
    )
    print(
        f"load+validate: median {statistics.median(timings):.2f} s "
        f"(best {min(timings):.2f}, worst {max(timings):.2f}) over {args.repeat} runs "
        "(target < 3 s)"
    )
    print(
        f"RESULT validate format={users_format} users={shape.users} "
        f"median_s={statistics.median(timings):.2f} target_met={max(timings) < 3}"
    )


def print_plan_memory(state: RoutingState, directory: Path, repeat: int) -> None:
    snapshot = directory / "snapshot.json"
    write_json_atomically(snapshot, snapshot_of_state(drifted(state, 0.05)))
    peaks: dict[str, list[float]] = {}
    for users_format in ("yaml", "csv"):
        config = directory / f"plan-{users_format}"
        write_manifests(state, config, INSTANCE_ID, users_format)
        peaks[users_format] = [plan_peak_mib(config, snapshot) for _ in range(repeat)]
        print(
            f"plan peak memory, users in {users_format.upper()}: median "
            f"{statistics.median(peaks[users_format]):.0f} MiB "
            f"(range {min(peaks[users_format]):.0f}-{max(peaks[users_format]):.0f}) "
            f"over {repeat} runs"
        )
    ratio = statistics.median(peaks["csv"]) / statistics.median(peaks["yaml"])
    print(f"RESULT plan_memory users={len(state.users)} csv_over_yaml={ratio:.3f}")


if __name__ == "__main__":
    main()
