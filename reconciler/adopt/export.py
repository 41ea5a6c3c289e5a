"""Live state as new manifests: attributes, optional inferred sets, users,
that `validate` accepts and that plan as "no changes" against the same
live state. All reads go through the same paced LiveStateReader as plan.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ruamel.yaml.comments import CommentedMap

from reconciler.adopt.yaml_style import (
    attribute_body,
    dump_yaml,
    flow_list,
    flow_map,
    proficiency_map,
    yaml_level,
)
from reconciler.connect.reader import LiveState, LiveStateReader, ReadScope
from reconciler.manifest.csv_source import LONG_COLUMNS, SETS_COLUMN
from reconciler.service import limits
from reconciler.service.timestamps import to_iso
from reconciler.state import Proficiencies, RoutingState, UserSelector

log = logging.getLogger(__name__)

Bundle = tuple[tuple[str, str, float], ...]


def read_live(
    reader: LiveStateReader, usernames: set[str] | None, groups: list[UserSelector]
) -> LiveState:
    """Every user's proficiencies (or just `usernames`'), every attribute,
    and which users `groups` select."""
    if usernames is None:
        return reader.read(ReadScope(declared_users=set(), all_users=True, groups=groups))
    return reader.read(ReadScope(set(usernames), groups=groups, only_users=set(usernames)))


def instance_region(reader: LiveStateReader) -> str | None:
    """The region in the instance's ARN (one DescribeInstance)."""
    arn = reader.call("DescribeInstance")["Instance"].get("Arn", "")
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 and parts[3] else None


def _bundle(proficiencies: Proficiencies) -> Bundle:
    return tuple(sorted((a, v, float(level)) for (a, v), level in proficiencies.items()))


def _set_name(bundle: Bundle, taken: set[str]) -> str:
    words = [re.sub(r"[^a-z0-9]+", "_", value.lower()).strip("_") for _, value, _ in bundle]
    base = "_".join(w for w in words[:4] if w) or "bundle"
    name, number = base, 2
    while name in taken:
        name, number = f"{base}_{number}", number + 1
    taken.add(name)
    return name


def infer_sets(users: dict[str, Proficiencies], min_users: int) -> dict[Bundle, str]:
    """Names for every identical, non-empty bundle held by >= min_users users."""
    counts = Counter(_bundle(p) for p in users.values() if p)
    taken: set[str] = set()
    return {
        bundle: _set_name(bundle, taken) for bundle, n in sorted(counts.items()) if n >= min_users
    }


@dataclass
class ExportedFiles:
    """Manifest file name -> YAML text."""

    files: dict[str, str] = field(default_factory=dict)
    inferred_sets: int = 0
    # The most users holding one identical bundle (why --infer-sets found none).
    largest_bundle: int = 0

    def write(self, directory: Path) -> list[Path]:
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for name, text in self.files.items():
            path = directory / name
            path.write_text(text, encoding="utf-8")
            written.append(path)
        return written


def manifest_files(
    state: RoutingState,
    instance_id: str,
    region: str | None,
    exported_at: float,
    min_set_users: int | None = None,
    users_format: str = "yaml",
) -> ExportedFiles:
    """Manifests declaring exactly `state` (reserved `connect:` attributes are
    the service's: not declared, listed as external when users hold them);
    the users in `users.yaml`, or in `users.csv` (long layout) for
    `users_format` "csv"."""
    header = (
        f"# Exported from Amazon Connect instance {instance_id} ({region or 'default region'}) at "
        f"{to_iso(int(exported_at))} by `connect-reconciler export`.\n"
    )
    attributes = {n: a for n, a in state.attributes.items() if not limits.is_reserved(n)}
    held_reserved = sorted(
        {a for user in state.users.values() for a, _ in user.proficiencies if limits.is_reserved(a)}
    )
    instance = CommentedMap({"instance": CommentedMap({"id": instance_id})})
    if region:
        instance["instance"]["region"] = region
    if held_reserved:
        instance["settings"] = CommentedMap({"external_attributes": flow_list(held_reserved)})
    out = ExportedFiles({"instance.yaml": header + dump_yaml(instance)})
    out.files["attributes.yaml"] = header + dump_yaml(
        {
            "predefined_attributes": CommentedMap(
                {n: attribute_body(attributes[n]) for n in sorted(attributes)}
            )
        }
    )
    users = {name: user.proficiencies for name, user in state.users.items()}
    bundles = infer_sets(users, min_set_users) if min_set_users else {}
    out.inferred_sets = len(bundles)
    out.largest_bundle = max(Counter(_bundle(p) for p in users.values() if p).values(), default=0)
    if bundles:
        sets = CommentedMap(
            {
                name: proficiency_map({(a, v): lvl for a, v, lvl in bundle})
                for bundle, name in sorted(bundles.items(), key=lambda i: i[1])
            }
        )
        out.files["sets.yaml"] = header + dump_yaml({"proficiency_sets": sets})
    if users_format == "csv":
        out.files["users.csv"] = users_csv(users, bundles)
        return out
    body = CommentedMap()
    for name in sorted(users):
        bundle_name = bundles.get(_bundle(users[name]))
        if bundle_name is not None:
            body[name] = flow_map({"sets": flow_list([bundle_name])})
        elif users[name]:
            body[name] = CommentedMap({"proficiencies": proficiency_map(users[name])})
        else:
            body[name] = None  # managed to hold no proficiencies
    out.files["users.yaml"] = header + dump_yaml({"users": body})
    return out


def users_csv(users: dict[str, Proficiencies], bundles: dict[Bundle, str]) -> str:
    """Users as a long-layout CSV manifest: a row per proficiency, sorted; a
    user holding nothing (or only a set) gets one row with empty cells."""
    stream = io.StringIO()
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow([*LONG_COLUMNS, SETS_COLUMN] if bundles else LONG_COLUMNS)
    for name in sorted(users):
        bundle_name = bundles.get(_bundle(users[name]))
        held = {} if bundle_name else users[name]
        extra = [bundle_name or ""] if bundles else []
        rows = [[name, a, v, yaml_level(level)] for (a, v), level in sorted(held.items())]
        for row in rows or [[name, "", "", ""]]:
            writer.writerow([*row, *extra])
    return stream.getvalue()
