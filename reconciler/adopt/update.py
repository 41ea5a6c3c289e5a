"""Existing manifests edited in place so they match live state (YAML through
the ruamel round trip: comments, key order and layout stay; CSV row by row;
only values that differ change)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from reconciler.adopt.declarations import ManifestFiles, own_entries_for
from reconciler.adopt.yaml_style import attribute_body, flow_list, quoted, remove_entry
from reconciler.connect.reader import LiveState
from reconciler.files import write_atomically
from reconciler.manifest.loader import GroupSelector
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


def update_manifests(
    config_dir: Path,
    live: LiveState,
    usernames: set[str] | None,
    group_given: dict[str, Proficiencies],
    csv_ignore_columns: list[str],
) -> ManifestUpdate:
    """Edit the manifests under `config_dir` so they match `live`. Only
    values that differ are touched; comments, key order and layout are kept,
    and a CSV manifest stays CSV (its rows changed in place).
    Attributes and users new live are appended to the file that holds their
    kind; ones gone live are removed. `usernames` limits the users touched
    (None: all). `group_given` is what groups give each user they select.
    New users a manifest would list with nothing (no proficiencies, nothing
    from groups) are not added; external attributes are never declared, nor
    are new ones unless the manifests prune (undeclared ones are left alone
    otherwise: users' values of them make them external). Comments of the
    entries kept stay, those of removed entries go with them. ManifestInvalid,
    and nothing written, when the edits would not load (a value a wide CSV
    cannot name)."""
    files = ManifestFiles(config_dir, csv_ignore_columns)
    documents = files.documents
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
    seen_attributes: set[str] = set()
    for path, document in documents.items():
        declared = document.get("predefined_attributes") if isinstance(document, dict) else None
        if isinstance(declared, dict):
            for name in list(declared):
                seen_attributes.add(name)
                if name not in attributes:
                    remove_entry(declared, name)
                    files.changed.add(path)
                elif _update_attribute(declared[name], attributes[name]):
                    files.changed.add(path)
    set_levels = files.set_levels()
    declarations = files.declarations()
    for username, declared_in in declarations.items():
        if usernames is not None and username not in usernames:
            continue  # not read: leave it as written
        held = live.state.users.get(username)
        if held is None:
            declared_in.remove(username)
            continue
        wanted = own_entries_for(
            dict(held.proficiencies),
            declared_in.sets_of(username),
            declared_in.own(username),
            set_levels,
            dict(group_given.get(username, {})),
        )
        if wanted is not None:
            declared_in.declare(username, *wanted)
    # An attribute the manifests do not declare is left alone unless they
    # prune (then it would be deleted): never start managing it here.
    new_attributes = sorted(set(attributes) - seen_attributes) if _prunes(documents) else []
    left_alone = set(attributes) - seen_attributes - set(new_attributes)
    if new_attributes:
        path = _file_holding(documents, "predefined_attributes", config_dir / "attributes.yaml")
        section = documents[path].setdefault("predefined_attributes", CommentedMap())
        for name in new_attributes:
            section[name] = attribute_body(attributes[name])
        files.changed.add(path)
    new_users = sorted(
        name
        for name, user in live.state.users.items()
        if name not in declarations
        and group_given.get(name, {}) != user.proficiencies  # groups already say it all
    )
    if new_users:
        joined = files.for_new_users()
        for username in new_users:
            own = own_entries_for(
                dict(live.state.users[username].proficiencies),
                [],
                {},
                set_levels,
                dict(group_given.get(username, {})),
            )
            joined.add(username, own[1] if own else {})
    # What managed users hold of attributes the manifests do not manage is
    # theirs to keep: those attributes are external (plan leaves them alone).
    held_elsewhere = {
        a
        for u in live.state.users.values()
        for a, _ in u.proficiencies
        if limits.is_reserved(a) or a in left_alone
    }
    listed_in = _declare_external(documents, held_elsewhere, config_dir / "instance.yaml")
    if listed_in is not None:
        files.changed.add(listed_in)
    written = files.checked_texts()  # ManifestInvalid: nothing is written
    for path, text in written.items():
        write_atomically(path, text)
    log.info("updated %d file(s)", len(written))
    conflicts = {
        name: sorted(
            f"{a}/{v}" for a, v in given if (a, v) not in live.state.users[name].proficiencies
        )
        for name, given in group_given.items()
        if name in live.state.users
        and any(key not in live.state.users[name].proficiencies for key in given)
    }
    return ManifestUpdate(sorted(written), conflicts)


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
