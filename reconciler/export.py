"""Adopting an existing instance: live state as manifests or as a snapshot.

- `manifest_files`: new manifests (attributes, optional inferred sets, users)
  that `validate` accepts and that plan as "no changes" against the same
  live state;
- `update_manifests`: edit existing manifests in place (ruamel round trip:
  comments, key order and layout stay) so they match live state;
- `snapshot_document`: an emulator snapshot (DESIGN §4), the nightly job
  that lets pull-request CI plan with no AWS credentials.

All reads go through the same paced LiveStateReader as plan.
"""

from __future__ import annotations

import io
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from reconciler import limits
from reconciler.connect.reader import LiveState, LiveStateReader, ReadScope
from reconciler.emulator.protocol import to_iso
from reconciler.manifest.loader import GroupSelector, find_manifest_files
from reconciler.manifest.models import GroupMatch
from reconciler.state import Proficiencies, RoutingState

log = logging.getLogger(__name__)

Bundle = tuple[tuple[str, str, float], ...]


def read_live(
    reader: LiveStateReader, usernames: set[str] | None, groups: list[GroupMatch]
) -> LiveState:
    """Every user's proficiencies (or just `usernames`'), every attribute,
    and which users `groups` select."""
    if usernames is None:
        return reader.read(ReadScope(declared_users=set(), all_users=True, groups=groups))
    return reader.read(ReadScope(set(usernames), groups=groups, only_users=set(usernames)))


def group_contributions(groups: list[GroupSelector], live: LiveState) -> dict[str, Proficiencies]:
    """What the manifests' groups give each user they select, in order."""
    given: dict[str, Proficiencies] = {}
    for group, members in zip(groups, live.group_members, strict=True):
        for username in members:
            given.setdefault(username, {}).update(group.proficiencies)
    return given


def instance_region(reader: LiveStateReader) -> str | None:
    """The region in the instance's ARN (one DescribeInstance)."""
    arn = reader.call("DescribeInstance")["Instance"].get("Arn", "")
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 and parts[3] else None


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long value list
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _dump(data: Any) -> str:
    stream = io.StringIO()
    _yaml().dump(data, stream)
    return stream.getvalue()


_SPECIAL = re.compile(r"""[:#,\[\]{}&*!|>'"%@`]|^\s|\s$|^$""")


def _text(value: Any) -> Any:
    # ruamel writes `connect:Chat` bare inside [...] and then cannot read it
    # back: quote anything with a YAML indicator in it.
    return (
        DoubleQuotedScalarString(value)
        if isinstance(value, str) and _SPECIAL.search(value)
        else value
    )


def _flow(mapping: dict[str, Any]) -> CommentedMap:
    result = CommentedMap({_text(k): v for k, v in mapping.items()})
    result.fa.set_flow_style()
    return result


def _flow_list(items: list[str]) -> CommentedSeq:
    result = CommentedSeq([_text(item) for item in items])
    result.fa.set_flow_style()
    return result


def _level(level: float) -> int | float:
    return int(level) if float(level).is_integer() else level


def proficiency_map(proficiencies: Proficiencies | dict[tuple[str, str], float]) -> CommentedMap:
    """attribute -> {value: level}, sorted, inner maps in flow style."""
    by_attribute: dict[str, dict[str, int | float]] = {}
    for (attribute, value), level in sorted(proficiencies.items()):
        by_attribute.setdefault(attribute, {})[value] = _level(level)
    return CommentedMap({_text(a): _flow(values) for a, values in by_attribute.items()})


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
) -> ExportedFiles:
    """Manifests declaring exactly `state` (reserved `connect:` attributes are
    the service's: not declared, listed as external when users hold them)."""
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
        instance["settings"] = CommentedMap({"external_attributes": _flow_list(held_reserved)})
    out = ExportedFiles({"instance.yaml": header + _dump(instance)})
    out.files["attributes.yaml"] = header + _dump(
        {
            "predefined_attributes": CommentedMap(
                {n: _attribute_body(attributes[n]) for n in sorted(attributes)}
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
        out.files["sets.yaml"] = header + _dump({"proficiency_sets": sets})
    body = CommentedMap()
    for name in sorted(users):
        bundle_name = bundles.get(_bundle(users[name]))
        if bundle_name is not None:
            body[name] = _flow({"sets": _flow_list([bundle_name])})
        elif users[name]:
            body[name] = CommentedMap({"proficiencies": proficiency_map(users[name])})
        else:
            body[name] = None  # managed to hold no proficiencies
    out.files["users.yaml"] = header + _dump({"users": body})
    return out


def _attribute_body(attribute: Any) -> CommentedMap:
    body = CommentedMap({"values": _flow_list(list(attribute.values))})
    if attribute.purposes:
        body["purposes"] = _flow_list(list(attribute.purposes))
    if attribute.enable_value_validation_on_association:
        body["enable_value_validation_on_association"] = True
    return body


# -- updating existing manifests in place ----------------------------------------


@dataclass
class ManifestUpdate:
    """What `update_manifests` did, and what it could not express."""

    changed: list[Path]
    # users a group gives proficiencies they do not hold live: only the
    # group (or the user's routing profile / hierarchy group) can fix that
    group_conflicts: dict[str, list[str]]


def update_manifests(
    config_dir: Path,
    live: LiveState,
    usernames: set[str] | None,
    group_given: dict[str, Proficiencies],
) -> ManifestUpdate:
    """Edit the manifests under `config_dir` so they match `live`. Only
    values that differ are touched; comments, key order and layout are kept.
    Attributes and users new live are appended to the file that holds their
    kind; ones gone live are removed. `usernames` limits the users touched
    (None: all). `group_given` is what groups give each user they select.
    New users a manifest would list with nothing (no proficiencies, nothing
    from groups) are not added; external attributes are never declared."""
    yaml = _yaml()
    documents = {
        path: yaml.load(path.read_text(encoding="utf-8"))
        for path in find_manifest_files(config_dir)
    }
    changed: set[Path] = set()
    external = {
        str(name)
        for d in documents.values()
        if isinstance(d, dict) and isinstance(d.get("settings"), dict)
        for name in d["settings"].get("external_attributes") or []
    }
    attributes = {
        n: a
        for n, a in live.state.attributes.items()
        if not limits.is_reserved(n) and n not in external
    }
    sets = _sets(documents)
    seen_attributes: set[str] = set()
    seen_users: set[str] = set()
    for path, document in documents.items():
        if not isinstance(document, dict):
            continue
        declared = document.get("predefined_attributes")
        if isinstance(declared, dict):
            for name in list(declared):
                seen_attributes.add(name)
                if name not in attributes:
                    del declared[name]
                    changed.add(path)
                elif _update_attribute(declared[name], attributes[name]):
                    changed.add(path)
        users = document.get("users")
        if isinstance(users, dict):
            for username in list(users):
                seen_users.add(username)
                if usernames is not None and username not in usernames:
                    continue  # not read: leave it as written
                held = live.state.users.get(username)
                if held is None:
                    del users[username]
                    changed.add(path)
                elif _update_user(
                    users, username, held.proficiencies, sets, group_given.get(username, {})
                ):
                    changed.add(path)
    new_attributes = sorted(set(attributes) - seen_attributes)
    if new_attributes:
        path = _file_holding(documents, "predefined_attributes", config_dir / "attributes.yaml")
        section = documents[path].setdefault("predefined_attributes", CommentedMap())
        for name in new_attributes:
            section[name] = _attribute_body(attributes[name])
        changed.add(path)
    new_users = sorted(
        name
        for name, user in live.state.users.items()
        if name not in seen_users
        and group_given.get(name, {}) != user.proficiencies  # groups already say it all
    )
    if new_users:
        path = _file_holding(documents, "users", config_dir / "users.yaml")
        section = documents[path].setdefault("users", CommentedMap())
        for username in new_users:
            section[username] = None
            _update_user(
                section,
                username,
                live.state.users[username].proficiencies,
                sets,
                group_given.get(username, {}),
            )
        changed.add(path)
    held_reserved = {
        a for u in live.state.users.values() for a, _ in u.proficiencies if limits.is_reserved(a)
    }
    path = _declare_external(documents, held_reserved, config_dir / "instance.yaml")
    if path is not None:
        changed.add(path)
    for path in sorted(changed):
        stream = io.StringIO()
        yaml.dump(documents[path], stream)
        path.write_text(stream.getvalue(), encoding="utf-8")
    log.info("updated %d file(s)", len(changed))
    conflicts = {
        name: sorted(
            f"{a}/{v}" for a, v in given if (a, v) not in live.state.users[name].proficiencies
        )
        for name, given in group_given.items()
        if name in live.state.users
        and any(key not in live.state.users[name].proficiencies for key in given)
    }
    return ManifestUpdate(sorted(changed), conflicts)


def _declare_external(documents: dict[Path, Any], names: set[str], default: Path) -> Path | None:
    """Add reserved attributes users hold to settings.external_attributes."""
    path = _file_holding(documents, "settings", default) if names else None
    if path is None:
        return None
    settings = documents[path].setdefault("settings", CommentedMap())
    listed = settings.get("external_attributes")
    missing = sorted(names - set(listed or []))
    if not missing:
        return None
    if isinstance(listed, list):
        listed.extend(_text(name) for name in missing)
    else:
        settings["external_attributes"] = _flow_list(missing)
    return path


def _sets(documents: dict[Path, Any]) -> dict[str, dict[tuple[str, str], float]]:
    sets: dict[str, dict[tuple[str, str], float]] = {}
    for document in documents.values():
        if isinstance(document, dict) and isinstance(document.get("proficiency_sets"), dict):
            for name, body in document["proficiency_sets"].items():
                sets[name] = _flatten(body)
    return sets


def _flatten(body: Any) -> dict[tuple[str, str], float]:
    if not isinstance(body, dict):
        return {}
    return {
        (str(attribute), str(value)): float(level)
        for attribute, values in body.items()
        if isinstance(values, dict)
        for value, level in values.items()
    }


def _file_holding(documents: dict[Path, Any], section: str, default: Path) -> Path:
    """The file with the most entries of `section` (or a new one)."""
    holding = [
        (len(d[section]), str(p), p)
        for p, d in documents.items()
        if isinstance(d, dict) and isinstance(d.get(section), dict)
    ]
    if holding:
        return max(holding)[2]
    documents.setdefault(default, CommentedMap())
    return default


def _update_attribute(body: Any, attribute: Any) -> bool:
    if not isinstance(body, dict):
        return False
    values = body.get("values")
    if isinstance(values, list) and set(map(str, values)) == set(attribute.values):
        return False
    if isinstance(values, CommentedSeq):
        kept = [v for v in values if str(v) in attribute.values]
        values[:] = kept + [_text(v) for v in attribute.values if v not in set(map(str, kept))]
    else:
        body["values"] = _flow_list(list(attribute.values))
    return True


def _update_user(
    users: Any,
    username: str,
    live: Proficiencies,
    sets: dict[str, dict[tuple[str, str], float]],
    from_groups: Proficiencies,
) -> bool:
    """Make one user's declared proficiencies, over what groups give, equal
    `live`, keeping their sets when what the sets give is still right."""
    body = users[username] if isinstance(users[username], dict) else CommentedMap()
    given: dict[tuple[str, str], float] = dict(from_groups)
    for name in body.get("sets") or []:
        given.update(sets.get(str(name), {}))
    explicit = _flatten(body.get("proficiencies"))
    target = {key: float(level) for key, level in live.items()}
    if {**given, **explicit} == target:
        return False
    dropped = any(key not in target for key in given) and bool(body.get("sets"))
    if dropped:
        body.pop("sets")  # a set gives something the user no longer holds
        given = dict(from_groups)
    overrides = {key: level for key, level in target.items() if given.get(key) != level}
    if not dropped and overrides == explicit:
        return False  # only a group could say it better (see group_conflicts)
    _set_proficiencies(body, overrides)
    users[username] = body if body else None
    return True


def _set_proficiencies(body: CommentedMap, wanted: dict[tuple[str, str], float]) -> None:
    """Edit `proficiencies` in place: keys keep their order and style."""
    current = body.get("proficiencies")
    if not wanted:
        body.pop("proficiencies", None)
        return
    if not isinstance(current, CommentedMap):
        body["proficiencies"] = proficiency_map(wanted)
        return
    by_attribute: dict[str, dict[str, float]] = {}
    for (attribute, value), level in sorted(wanted.items()):
        by_attribute.setdefault(attribute, {})[value] = level
    for attribute in [a for a in current if str(a) not in by_attribute]:
        del current[attribute]
    for attribute, values in by_attribute.items():
        existing = next((current[a] for a in current if str(a) == attribute), None)
        if not isinstance(existing, CommentedMap):
            current[_text(attribute)] = _flow({v: _level(level) for v, level in values.items()})
            continue
        for value in [v for v in existing if str(v) not in values]:
            del existing[value]
        for value, level in values.items():
            key = next((v for v in existing if str(v) == value), _text(value))
            if existing.get(key) != level:
                existing[key] = _level(level)


# -- snapshots ----------------------------------------------------------------------


def snapshot_document(reader: LiveStateReader) -> dict[str, Any]:
    """The live instance as an emulator snapshot: DescribeInstance, every
    attribute, every user (SearchUsers' summary carries the fields plans use)
    with its proficiencies, routing profiles and hierarchy groups."""
    instance = reader.call("DescribeInstance")["Instance"]
    attributes = reader.pages("SearchPredefinedAttributes", "PredefinedAttributes", MaxResults=100)
    users = reader.pages("SearchUsers", "Users", MaxResults=500)
    held = reader.proficiencies_of([u["Id"] for u in users])
    return _iso(
        {
            "Instance": instance,
            "PredefinedAttributes": attributes,
            "Users": [
                {
                    "User": user,
                    "Proficiencies": [
                        {"AttributeName": a, "AttributeValue": v, "Level": level}
                        for (a, v), level in sorted(proficiencies.items())
                    ],
                }
                for user, proficiencies in zip(users, held, strict=True)
            ],
            "RoutingProfiles": reader.pages(
                "ListRoutingProfiles", "RoutingProfileSummaryList", MaxResults=100
            ),
            "UserHierarchyGroups": reader.pages(
                "ListUserHierarchyGroups", "UserHierarchyGroupSummaryList", MaxResults=100
            ),
        }
    )


def _iso(value: Any) -> Any:
    """boto3 returns datetimes; snapshots hold ISO 8601 text."""
    if isinstance(value, dict):
        return {k: _iso(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_iso(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
