"""A pull request's plan of a 10,000-agent instance, at real quotas.

    python -m bench.pr_plan [--users 10000]

The synthetic instance (bench/synthetic.py, 20 attributes x 25 values, 8
proficiencies per agent) plus a `Desk` attribute that a proficiency set
`pr_desk` gives to 15 agents is served by the emulator in its own process at
time scale 1: 2 requests/s, burst 5, per API, in real seconds. The
manifests live in a fresh git repository; the pull request's commit edits
the set (15 agents) and one level of 5 other agents' own entries. The
manifests declare two routing requirements, so the narrowed plan also counts
them for the whole instance. What is timed is what `plan --changed-since
HEAD~1` does: compile the manifests now and at HEAD~1 (from git objects),
narrow, read and plan. Target (issue 11): under 15 real seconds; calls <=
touched users + ceil(touched/20) username searches + one count per
requirement + a small constant.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import tempfile
import time
from pathlib import Path

from bench.served import control, served_emulator
from bench.synthetic import (
    INSTANCE_ID,
    Shape,
    snapshot_of_state,
    synthetic_state,
    write_manifests,
)
from reconciler.connect.client import connect_client
from reconciler.connect.pacer import QuotaPacer
from reconciler.connect.reader import LiveStateReader
from reconciler.files import write_json_atomically
from reconciler.manifest import load_manifest
from reconciler.manifest.gitref import manifest_at
from reconciler.plan.narrowing import changed_narrowing
from reconciler.plan.planner import make_plan
from reconciler.service.limits import MAX_OR_CONDITIONS
from reconciler.state import Attribute

SET_HOLDERS = 15
EDITED_AGENTS = 5
REQUIREMENTS = (
    "routing_requirements:\n"
    "  - {name: desk, expression: 'Desk = Escalations >= 3', min_agents: 10}\n"
    "  - {name: senior, expression: \"Attribute00 = 'Value 000' >= 4\", min_agents: 1}\n"
)


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.email=bench@example.com", "-c", "user.name=bench",
         *args],
        check=True, capture_output=True,
    )  # fmt: skip


def pull_request(repo: Path, users: int) -> tuple[Path, Path, set[str]]:
    """A repository whose last commit is the pull request, the snapshot in
    sync with the commit before it, and the agents the change touches."""
    state = synthetic_state(Shape(users=users, attributes=20, values=25, proficiencies=8))
    state.attributes["Desk"] = Attribute("Desk", ("Escalations", "Front"))
    names = sorted(state.users)
    holders, edited = names[:: len(names) // SET_HOLDERS][:SET_HOLDERS], names[-EDITED_AGENTS:]
    for username in holders:
        state.users[username].proficiencies[("Desk", "Escalations")] = 3.0
    snapshot = repo.parent / "snapshot.json"
    write_json_atomically(snapshot, snapshot_of_state(state))
    for username in holders:  # the set gives it, not the agent's own entries
        del state.users[username].proficiencies[("Desk", "Escalations")]
    config = repo / "config"
    write_manifests(state, config, INSTANCE_ID)
    users_file = config / "users.yaml"
    text = users_file.read_text()
    for username in holders:
        text = text.replace(f"  {username}:\n", f"  {username}:\n    sets: [pr_desk]\n")
    users_file.write_text(text)
    (config / "sets.yaml").write_text("proficiency_sets:\n  pr_desk: {Desk: {Escalations: 3}}\n")
    (config / "routing.yaml").write_text(REQUIREMENTS)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    (config / "sets.yaml").write_text("proficiency_sets:\n  pr_desk: {Desk: {Escalations: 4}}\n")
    lines = users_file.read_text().split("\n")
    for username in edited:  # one level of each agent's first own entry
        at = lines.index(f"  {username}:") + 2
        entry = lines[at]
        level = entry[entry.index(": ", entry.index("{")) + 2]
        lines[at] = entry.replace(f": {level}", f": {int(level) % 5 + 1}", 1)
    users_file.write_text("\n".join(lines))
    git(repo, "commit", "-qam", "pull request")
    return config, snapshot, {*holders, *edited}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        repo.mkdir()
        config, snapshot, touched = pull_request(repo, args.users)
        with served_emulator(snapshot, 1.0) as url:
            client = connect_client(endpoint_url=url, emulator=True)
            reader = LiveStateReader(QuotaPacer(client, time_scale=1.0), INSTANCE_ID)
            started = time.perf_counter()
            manifest = load_manifest(config)
            narrowing = changed_narrowing(manifest_at(config, "HEAD~1"), manifest, "HEAD~1", reader)
            plan = make_plan(manifest, reader, narrowing)
            real = time.perf_counter() - started
            stats = control(url, "stats")
    calls = {op: counts["calls"] for op, counts in stats.items()}
    total = sum(calls.values())
    throttled = sum(counts.get("throttled", 0) for counts in stats.values())
    searches = math.ceil(len(touched) / MAX_OR_CONDITIONS)
    bound = len(touched) + searches + len(manifest.requirements)
    print(f"plan --changed-since HEAD~1 of {args.users} agents at real quotas (2/s, burst 5)")
    print(f"  narrowed to {len(narrowing.users or ())} user(s): {'; '.join(narrowing.reasons)}")
    print(f"  touched by the change: {len(touched)}; narrowed exactly to them: "
          f"{set(narrowing.users or ()) == touched}")  # fmt: skip
    for op, n in sorted(calls.items(), key=lambda item: -item[1]):
        print(f"  {op:28} {n:5d} calls")
    print(f"  total {total} calls, throttled {throttled}; "
          f"target <= {bound} + a small constant")  # fmt: skip
    print(f"  summary {plan.summary}; guards {[g.guard for g in plan.guards]}; "
          f"errors {plan.errors}")  # fmt: skip
    print(f"  coverage {[(r.name, r.now, r.after, r.counted) for r in plan.coverage]}")
    print(f"  real {real:.2f} s (target <= 15 s)")
    result = f"users={args.users} touched={len(touched)} calls={total} real_s={real:.2f}"
    print(f"RESULT pr_plan {result}")


if __name__ == "__main__":
    main()
