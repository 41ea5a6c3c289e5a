"""Load + validate time of a large synthetic manifest set.

    python -m bench.validate [--users 10000] [--proficiencies 8]

Target (issue 2): under 3 s for 10,000 users x 8 proficiencies on 2 cores.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.synthetic import INSTANCE_ID, Shape, synthetic_state, write_manifests
from reconciler.manifest import load_manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--proficiencies", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    shape = Shape(users=args.users, proficiencies=args.proficiencies)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        write_manifests(synthetic_state(shape), directory, INSTANCE_ID)
        size = sum(p.stat().st_size for p in directory.iterdir())
        timings = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            manifest = load_manifest(directory)
            timings.append(time.perf_counter() - start)
    held = sum(len(u.proficiencies) for u in manifest.desired.users.values())
    print(
        f"manifests: {shape.users} users x {shape.proficiencies} proficiencies "
        f"({held} entries, {size / 1e6:.1f} MB of YAML)"
    )
    print(
        f"load+validate: best {min(timings):.2f} s, worst {max(timings):.2f} s "
        f"over {args.repeat} runs (target < 3 s)"
    )


if __name__ == "__main__":
    main()
