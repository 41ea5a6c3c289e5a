"""Existing manifests edited in place so they match live state (ruamel round
trip: comments, key order and layout stay; only values that differ change)."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from reconciler.adopt.yaml_style import (
    attribute_body,
    flow_list,
    flow_map,
    proficiency_map,
    quoted,
    remove_entry,
    round_trip_yaml,
    yaml_level,
)
from reconciler.connect.reader import LiveState
from reconciler.manifest.loader import (
    CSV_SUFFIX,
    GroupSelector,
    find_manifest_files,
)
from reconciler.service import limits
from reconciler.state import Proficiencies

log = logging.getLogger(__name__)


def group_contributions(groups: list[GroupSelector], live: LiveState) -> dict[str, Proficiencies]:
    """What the manifests' groups give each user they select, in order."""
    given: dict[str, Proficiencies] = {}
    for group, members in zip(groups, live.group_members, strict=True):
        for username in members:
            given.setdefault(username, {}).update(group.proficiencies)
    return given


@dataclass
class ManifestUpdate:
    """What `update_manifests` did, and what it could not express."""

    changed: list[Path]
    # users a group gives proficiencies they do not hold live: only the
    # group (or the user's routing profile / hierarchy group) can fix that
    group_conflicts: dict[str, list[str]]


class CsvNotUpdated(Exception):
    """`export --update` edits YAML manifests only."""

    def __init__(self, paths: list[Path]) -> None:
        super().__init__(
            f"export --update does not edit CSV manifests yet: {', '.join(map(str, paths))}; "
            "nothing was changed. Export them with --out DIR --users-format csv and compare"
        )


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
    from groups) are not added; external attributes are never declared, nor
    are new ones unless the manifests prune (undeclared ones are left alone
    otherwise: users' values of them make them external). Comments of the
    entries kept stay, those of removed entries go with them."""
    paths = find_manifest_files(config_dir)
    kept_in_csv = [p for p in paths if p.suffix == CSV_SUFFIX]
    if kept_in_csv:
        # Editing them as YAML would declare their users a second time.
        raise CsvNotUpdated(kept_in_csv)
    yaml = round_trip_yaml()
    documents = {path: yaml.load(path.read_text(encoding="utf-8")) for path in paths}
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
                    remove_entry(declared, name)
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
                    remove_entry(users, username)
                    changed.add(path)
                elif _update_user(
                    users, username, held.proficiencies, sets, group_given.get(username, {})
                ):
                    changed.add(path)
    # An attribute the manifests do not declare is left alone unless they
    # prune (then it would be deleted): never start managing it here.
    new_attributes = sorted(set(attributes) - seen_attributes) if _prunes(documents) else []
    left_alone = set(attributes) - seen_attributes - set(new_attributes)
    if new_attributes:
        path = _file_holding(documents, "predefined_attributes", config_dir / "attributes.yaml")
        section = documents[path].setdefault("predefined_attributes", CommentedMap())
        for name in new_attributes:
            section[name] = attribute_body(attributes[name])
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
    # What managed users hold of attributes the manifests do not manage is
    # theirs to keep: those attributes are external (plan leaves them alone).
    held_elsewhere = {
        a
        for u in live.state.users.values()
        for a, _ in u.proficiencies
        if limits.is_reserved(a) or a in left_alone
    }
    declared_in = _declare_external(documents, held_elsewhere, config_dir / "instance.yaml")
    if declared_in is not None:
        changed.add(declared_in)
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


def _prunes(documents: dict[Path, Any]) -> bool:
    return any(
        isinstance(d, dict)
        and isinstance(d.get("settings"), dict)
        and d["settings"].get("prune_attributes") is True
        for d in documents.values()
    )


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
        listed.extend(quoted(name) for name in missing)
    else:
        settings["external_attributes"] = flow_list(missing)
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
        values[:] = kept + [quoted(v) for v in attribute.values if v not in set(map(str, kept))]
    else:
        body["values"] = flow_list(list(attribute.values))
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
        remove_entry(current, attribute)
    for attribute, values in by_attribute.items():
        existing = next((current[a] for a in current if str(a) == attribute), None)
        if not isinstance(existing, CommentedMap):
            current[quoted(attribute)] = flow_map(
                {v: yaml_level(level) for v, level in values.items()}
            )
            continue
        for value in [v for v in existing if str(v) not in values]:
            remove_entry(existing, value)
        for value, level in values.items():
            key = next((v for v in existing if str(v) == value), quoted(value))
            if existing.get(key) != level:
                existing[key] = yaml_level(level)
