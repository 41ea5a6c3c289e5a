"""Concurrent writers, round after round: nothing lost, nobody owned twice.

    python -m bench.chaos [--rounds 10] [--lag 0.5] [--users 8]

Each round starts two `connect-reconciler apply` processes at once against
one Connect (an emulator served in its own process whose writes reach each
read path up to `--lag` seconds late, as AWS documents) and checks the end
state:

- owners: two repositories (`settings.owner` team-a and team-b) manage the
  same users at different levels. Each user must end with one owner tag and
  exactly that owner's levels, and no user may be written by both applies
  (`double_owner`); a user left at neither's levels is a lost write;
- values: two repositories add a different value to one attribute (and give
  it to a user of their own): both values must be there after both applies
  that exit 0 (`lost_values`);
- disjoint: two repositories create the same attribute for different users:
  both must end applied as their manifests say;
- links: two applies to one snapshot file (`emulator:FILE`), one through a
  symbolic link: they must take turns (`--lock-timeout`) and the file must
  hold both.

The last line is

    RESULT chaos rounds=N lost_writes=W double_owner=D lost_values=V
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.served import ROOT, control, served_emulator

INSTANCE_ID = "11111111-2222-3333-4444-555555555555"
INSTANCE = f"instance:\n  id: {INSTANCE_ID}\n  region: us-east-1\n"
FAST = "".join(
    f"    {op}: {{rate: 200, burst: 20}}\n"
    for op in (
        "ListUsers", "SearchUsers", "ListUserProficiencies", "SearchPredefinedAttributes",
        "DescribePredefinedAttribute",
        "AssociateUserProficiencies", "UpdateUserProficiencies", "DisassociateUserProficiencies",
        "CreatePredefinedAttribute", "UpdatePredefinedAttribute",
    )
)  # fmt: skip


# The emulator's quotas run this much faster than AWS's; its lag too, so the
# snapshot's lag is this many times --lag (real seconds, what apply waits on).
QUOTA_SCALE = 100


def snapshot(users: int, lag: float) -> dict[str, Any]:
    return {
        "Instance": {"Id": INSTANCE_ID, "InstanceStatus": "ACTIVE"},
        "Behaviour": {"consistency-lag": str(lag * QUOTA_SCALE)},
        "PredefinedAttributes": [{"Name": "Skill", "Values": {"StringList": ["Billing"]}}],
        "Users": [
            {
                "User": {"Id": f"id-u{n}", "Username": f"u{n}"},
                "Proficiencies": [
                    {"AttributeName": "Skill", "AttributeValue": "Billing", "Level": 1.0}
                ],
            }
            for n in range(users)
        ],
    }


def config(directory: Path, owner: str | None, body: str) -> Path:
    directory.mkdir(parents=True)
    owned = f"  owner: {owner}\n" if owner else ""
    settings = f"settings:\n  max_change_percent: 100\n{owned}  quotas:\n{FAST}"
    (directory / "instance.yaml").write_text(INSTANCE + settings)
    (directory / "manifests.yaml").write_text(body)
    return directory


def users_at(names: list[str], level: int, extra: str = "") -> str:
    lines = [f"  {n}: {{proficiencies: {{Skill: {{Billing: {level}{extra}}}}}}}" for n in names]
    return "users:\n" + "\n".join(lines) + "\n"


def declared(values: str = "Billing") -> str:
    return f"predefined_attributes:\n  Skill: {{values: [{values}]}}\n"


def race(*commands: list[str]) -> list[int]:
    """Start every command at once; their exit codes."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AWS_ACCESS_KEY_ID": "x",
           "AWS_SECRET_ACCESS_KEY": "x"}  # fmt: skip
    running = [
        subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for c in commands
    ]
    codes = []
    for command, process in zip(commands, running, strict=True):
        _, err = process.communicate(timeout=600)
        codes.append(process.returncode)
        if process.returncode not in (0,):
            tail = " | ".join(err.strip().splitlines()[-3:])
            print(f"  exit {process.returncode} {command[command.index('--config') + 1]}: {tail}",
                  file=sys.stderr)  # fmt: skip
    return codes


def apply_command(config_dir: Path, target: list[str], journal: Path) -> list[str]:
    return [sys.executable, "-m", "reconciler", "apply", "--auto-approve", "--config",
            str(config_dir), "--journal", str(journal), *target]  # fmt: skip


def written_users(journal_dir: Path) -> set[str]:
    """Users an apply changed, from its journal."""
    found = set()
    for journal in journal_dir.glob("*.jsonl"):
        for line in journal.read_text().splitlines():
            record = json.loads(line)
            if record["type"] == "change" and record["result"] == "applied":
                kind, _, name = record["change"].partition(" ")
                if kind == "user_proficiencies":
                    found.add(name)
    return found


def state(document: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """(username -> {"tags", "levels"}, attribute -> values) of a snapshot."""
    users = {
        u["User"]["Username"]: {
            "owner": (u["User"].get("Tags") or {}).get("connect-reconciler:owner"),
            "levels": {
                f"{p['AttributeName']}/{p['AttributeValue']}": p["Level"]
                for p in u["Proficiencies"]
            },
        }
        for u in document["Users"]
    }
    attributes = {a["Name"]: a["Values"]["StringList"] for a in document["PredefinedAttributes"]}
    return users, attributes


def owners_round(url: str, work: Path, names: list[str]) -> tuple[int, int]:
    """(lost writes, doubly owned users)."""
    levels = {"team-a": 2, "team-b": 4}
    dirs = {
        o: config(work / o, o, declared() + users_at(names, level)) for o, level in levels.items()
    }
    target = ["--target", "aws", "--endpoint-url", url]
    race(*(apply_command(d, target, work / f"{o}-journal") for o, d in dirs.items()))
    users, _ = state(control(url, "snapshot"))
    written = {o: written_users(work / f"{o}-journal") for o in levels}
    double = len(written["team-a"] & written["team-b"])
    lost = 0
    for name in names:
        owner = users[name]["owner"]
        level = users[name]["levels"].get("Skill/Billing")
        if owner is not None and level != levels[owner]:
            lost += 1  # the tag's owner's write did not land, or the other's overwrote it
    return lost, double


def values_round(url: str, work: Path, names: list[str]) -> int:
    """Values an apply that exited 0 added and that are gone."""
    mine = {"x": ("Retention", names[0]), "y": ("Payments", names[1])}
    dirs = {
        side: config(
            work / side,
            None,
            declared(f"Billing, {value}") + users_at([user], 1, f", {value}: 3"),
        )
        for side, (value, user) in mine.items()
    }
    target = ["--target", "aws", "--endpoint-url", url]
    codes = race(*(apply_command(d, target, work / f"{s}-journal") for s, d in dirs.items()))
    _, attributes = state(control(url, "snapshot"))
    return sum(
        1
        for code, (value, _) in zip(codes, mine.values(), strict=True)
        if code == 0 and value not in attributes["Skill"]
    )


def disjoint_round(url: str, work: Path, names: list[str]) -> int:
    """Users not as their apply's manifests say, when both exited 0 (or any failed)."""
    tier = declared() + "  Tier: {values: [Gold]}\n"
    halves = {"left": names[: len(names) // 2], "right": names[len(names) // 2 :]}
    dirs = {
        side: config(
            work / side,
            None,
            tier
            + "users:\n"
            + "".join(
                f"  {n}: {{proficiencies: {{Skill: {{Billing: 1}}, Tier: {{Gold: 3}}}}}}\n"
                for n in half
            ),
        )
        for side, half in halves.items()
    }
    target = ["--target", "aws", "--endpoint-url", url]
    codes = race(*(apply_command(d, target, work / f"{s}-journal") for s, d in dirs.items()))
    users, _ = state(control(url, "snapshot"))
    lost = sum(1 for code in codes if code != 0)
    return lost + sum(1 for n in names if users[n]["levels"].get("Tier/Gold") != 3)


def links_round(work: Path, initial: dict[str, Any], names: list[str]) -> int:
    """Changes missing from the snapshot file after two applies through two names."""
    file = work / "connect.json"
    file.write_text(json.dumps(initial))
    (work / "link.json").symlink_to(file)
    halves = {"file": names[: len(names) // 2], "link": names[len(names) // 2 :]}
    dirs = {
        side: config(work / side, None, declared() + users_at(half, 5))
        for side, half in halves.items()
    }
    commands = [
        apply_command(dirs[side], ["--target", f"emulator:{work / f'{side}.json'}"
                                   if side == "link" else f"emulator:{file}",
                                   "--lock-timeout", "120"], work / f"{side}-journal")
        for side in halves
    ]  # fmt: skip
    codes = race(*commands)
    users, _ = state(json.loads(file.read_text()))
    lost = sum(1 for code in codes if code != 0)
    return lost + sum(1 for n in names if users[n]["levels"].get("Skill/Billing") != 5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--lag", type=float, default=0.5)
    parser.add_argument("--users", type=int, default=8)
    args = parser.parse_args()
    names = [f"u{n}" for n in range(args.users)]
    initial = snapshot(args.users, args.lag)
    lost_writes = double_owner = lost_values = 0
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        seed = root / "seed.json"
        seed.write_text(json.dumps(initial))
        with served_emulator(seed, quota_scale=QUOTA_SCALE) as url:
            for number in range(args.rounds):
                for scenario in ("owners", "values", "disjoint", "links"):
                    work = root / f"{number}-{scenario}"
                    work.mkdir()
                    control(url, "snapshot", "PUT", initial)
                    if scenario == "owners":
                        lost, double = owners_round(url, work, names)
                        lost_writes, double_owner = lost_writes + lost, double_owner + double
                    elif scenario == "values":
                        lost_values += values_round(url, work, names)
                    elif scenario == "disjoint":
                        lost_writes += disjoint_round(url, work, names)
                    else:
                        lost_writes += links_round(work, initial, names)
                print(
                    f"round {number + 1}: lost_writes={lost_writes} double_owner={double_owner} "
                    f"lost_values={lost_values}",
                    flush=True,
                )
    print(
        f"RESULT chaos rounds={args.rounds} lost_writes={lost_writes} "
        f"double_owner={double_owner} lost_values={lost_values}"
    )


if __name__ == "__main__":
    main()
