"""Synthetic contact centers for benchmarks and scale tests.

One seeded generator describes an instance (attributes, users and their
proficiencies); writers turn it into manifests or into an emulator snapshot,
so a benchmark can plan manifests against a snapshot that differs from them
by a known drift.
"""

from __future__ import annotations

import argparse
import copy
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.adopt.export import users_csv
from reconciler.files import write_json_atomically
from reconciler.state import Attribute, RoutingState, UserState

INSTANCE_ID = "00000000-0000-4000-8000-000000000000"


@dataclass(frozen=True)
class Shape:
    """How big the synthetic instance is."""

    users: int = 10_000
    attributes: int = 20
    values: int = 25
    proficiencies: int = 8
    seed: int = 7


def synthetic_state(shape: Shape) -> RoutingState:
    """A reproducible instance of the given shape."""
    rng = random.Random(shape.seed)
    attributes = {
        f"Attribute{a:02d}": Attribute(
            f"Attribute{a:02d}", tuple(f"Value {v:03d}" for v in range(shape.values))
        )
        for a in range(shape.attributes)
    }
    keys = [(a.name, v) for a in attributes.values() for v in a.values]
    users = {}
    for index in range(shape.users):
        username = f"agent{index:05d}@example.com"
        chosen = rng.sample(keys, shape.proficiencies)
        users[username] = UserState(
            username, {key: float(rng.randint(1, 5)) for key in chosen}, user_id=f"u-{index:05d}"
        )
    return RoutingState(attributes, users)


def drifted(state: RoutingState, fraction: float, seed: int = 11) -> RoutingState:
    """A copy of `state` where `fraction` of users changed in the console:
    one level changed, one proficiency removed and one added each."""
    rng = random.Random(seed)
    result = copy.deepcopy(state)
    keys = [(a.name, v) for a in state.attributes.values() for v in a.values]
    for username in rng.sample(sorted(result.users), round(len(result.users) * fraction)):
        held = result.users[username].proficiencies
        changed, removed = rng.sample(sorted(held), 2)
        held[changed] = float(held[changed] % 5 + 1)
        del held[removed]
        held[rng.choice([k for k in keys if k not in held])] = float(rng.randint(1, 5))
    return result


def snapshot_of_state(state: RoutingState, instance_id: str = INSTANCE_ID) -> dict[str, Any]:
    """An emulator snapshot (docs/design.md §4) holding exactly `state`."""
    arn = f"arn:aws:connect:us-east-1:123456789012:instance/{instance_id}"
    return {
        "Instance": {"Id": instance_id, "Arn": arn, "InstanceStatus": "ACTIVE"},
        "PredefinedAttributes": [
            {"Name": a.name, "Values": {"StringList": list(a.values)}}
            for a in state.attributes.values()
        ],
        "Users": [
            {
                "User": {
                    "Id": user.user_id,
                    "Username": user.username,
                    "RoutingProfileId": "rp-default",
                },
                "Proficiencies": [
                    {"AttributeName": a, "AttributeValue": v, "Level": level}
                    for (a, v), level in user.proficiencies.items()
                ],
            }
            for user in state.users.values()
        ],
        "RoutingProfiles": [{"Id": "rp-default", "Name": "Basic Routing Profile"}],
    }


def write_manifests(
    state: RoutingState, directory: Path, instance_id: str, users_format: str = "yaml"
) -> None:
    """Manifests declaring exactly `state` (attributes file + users file:
    `users.yaml`, or `users.csv` in the long layout for `users_format` "csv")."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "instance.yaml").write_text(
        f"instance:\n  id: {instance_id}\n  region: us-east-1\n"
        "settings:\n  max_change_percent: 100\n"
    )
    lines = ["predefined_attributes:"]
    for attribute in state.attributes.values():
        lines.append(f"  {attribute.name}:")
        lines.append(f"    values: [{', '.join(attribute.values)}]")
    (directory / "attributes.yaml").write_text("\n".join(lines) + "\n")
    if users_format == "csv":
        users = {user.username: user.proficiencies for user in state.users.values()}
        (directory / "users.csv").write_text(users_csv(users, {}))
        return
    lines = ["users:"]
    for user in state.users.values():
        lines.append(f"  {user.username}:")
        lines.append("    proficiencies:")
        by_attribute: dict[str, list[str]] = {}
        for (attribute, value), level in sorted(user.proficiencies.items()):
            by_attribute.setdefault(attribute, []).append(f"{value}: {int(level)}")
        for attribute, entries in by_attribute.items():
            lines.append(f"      {attribute}: {{{', '.join(entries)}}}")
    (directory / "users.yaml").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--manifests", type=Path, help="write manifests into this directory")
    parser.add_argument("--snapshot", type=Path, help="write an emulator snapshot to this file")
    parser.add_argument(
        "--drift", type=float, default=0.0, help="share of users drifted in the snapshot"
    )
    parser.add_argument("--users", type=int, default=Shape.users)
    parser.add_argument("--attributes", type=int, default=Shape.attributes)
    parser.add_argument("--values", type=int, default=Shape.values)
    parser.add_argument("--proficiencies", type=int, default=Shape.proficiencies)
    parser.add_argument("--seed", type=int, default=Shape.seed)
    parser.add_argument("--users-format", choices=["yaml", "csv"], default="yaml")
    args = parser.parse_args()
    shape = Shape(args.users, args.attributes, args.values, args.proficiencies, args.seed)
    state = synthetic_state(shape)
    if args.manifests:
        write_manifests(state, args.manifests, INSTANCE_ID, args.users_format)
    if args.snapshot:
        write_json_atomically(args.snapshot, snapshot_of_state(drifted(state, args.drift)))


if __name__ == "__main__":
    main()
