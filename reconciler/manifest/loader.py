"""Load every manifest file, merge them, validate, and compile desired state."""

from __future__ import annotations

import difflib
import errno
import gc
import hashlib
import logging
import os
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import ValidationError

from reconciler.manifest.csv_source import parse_csv_source
from reconciler.manifest.errors import ManifestError, ManifestInvalid
from reconciler.manifest.merging import MergedDocument
from reconciler.manifest.models import (
    AttributeSpec,
    InstanceSpec,
    ManifestDocument,
    ProficiencyMap,
    SettingsSpec,
    known_keys,
)
from reconciler.manifest.source import DocPath, SourceFile, parse_source, read_bounded
from reconciler.quoting import clip, counted, excerpt
from reconciler.routing.coverage import Requirement
from reconciler.routing.expression import ExpressionError, parse_expression, references
from reconciler.service import limits
from reconciler.state import Attribute, Proficiencies, RoutingState, UserSelector, UserState

log = logging.getLogger(__name__)

# What gives a user the proficiencies written under their own name.
OWN_ENTRY = "own entry"
# key -> what gives it (see Manifest.provenance_of)
Sources = dict[tuple[str, str], str]


@dataclass(frozen=True)
class GroupSelector:
    """A group compiled: which live users it matches and what it gives them."""

    selector: UserSelector
    proficiencies: Proficiencies
    sources: Sources = field(default_factory=dict)


@dataclass(frozen=True)
class Environment:
    """One environment of environments.yaml: its name, its layers in merge
    order, and whether apply may write to its instance (false: a
    verify-only replica)."""

    name: str
    layers: tuple[str, ...]
    apply: bool
    file: str  # environments.yaml, and where in it the name is
    line: int
    column: int

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass
class Manifest:
    """The compiled manifests: desired state plus the policy around it."""

    instance: InstanceSpec
    settings: SettingsSpec
    desired: RoutingState  # declared attributes; declared users without groups applied
    groups: list[GroupSelector]
    requirements: list[Requirement]
    digest: str  # sha256 over every file's path and bytes
    files: list[str] = field(default_factory=list)
    # where each declared user's proficiencies come from (a set, or their own entries)
    sources: dict[str, Sources] = field(default_factory=dict)
    environment: Environment | None = None  # the environment these layers make up

    def proficiencies_of(self, username: str, group_members: list[set[str]]) -> Proficiencies:
        """One user's desired proficiencies, given who is in each group: the
        groups they are in, in order, then their own sets and entries."""
        return {
            key: level for key, (level, _) in self.provenance_of(username, group_members).items()
        }

    def provenance_of(
        self, username: str, group_members: list[set[str]]
    ) -> dict[tuple[str, str], tuple[float, str]]:
        """proficiencies_of, each level with what gives it (`group 1
        (routing_profile=X) set S`, `set S`, `own entry`): a later one wins."""
        given: dict[tuple[str, str], tuple[float, str]] = {}
        for group, members in zip(self.groups, group_members, strict=True):
            if username in members:
                given.update(
                    (key, (level, group.sources.get(key, "group")))
                    for key, level in group.proficiencies.items()
                )
        declared = self.desired.users.get(username)
        if declared is not None:
            sources = self.sources.get(username, {})
            given.update(
                (key, (level, sources.get(key, OWN_ENTRY)))
                for key, level in declared.proficiencies.items()
            )
        return given


# When the config directory holds it, the directory declares environments.
ENVIRONMENTS_FILE = "environments.yaml"
# Manifest file names end so, in lower case; other cases are refused, never skipped.
YAML_SUFFIXES = (".yaml", ".yml")
CSV_SUFFIX = ".csv"
MANIFEST_SUFFIXES = (*YAML_SUFFIXES, CSV_SUFFIX)
_LOWER_CASE = "rename it with a lower-case extension (or move it out of the config directory)"


def find_manifest_files(config_dir: Path) -> list[Path]:
    """Every *.yaml / *.yml / *.csv under `config_dir`, skipping hidden entries, sorted.

    Nothing that could hold a manifest is skipped silently: an unreadable
    directory, a dangling or looping symlink and a name that is not UTF-8 are
    errors naming the path (ManifestInvalid).
    """
    found, errors = _manifest_files(config_dir)
    if errors:
        raise ManifestInvalid(errors)
    return found


def _manifest_files(config_dir: Path) -> tuple[list[Path], list[ManifestError]]:
    """The manifest files found, and a problem per path that could hold one."""
    found: list[Path] = []
    errors: list[ManifestError] = []

    def problem(path: Path, message: str, hint: str) -> None:
        errors.append(ManifestError(_display(path), 1, 1, message, hint))

    def walk(directory: Path, ancestors: frozenset[tuple[int, int]]) -> None:
        try:
            with os.scandir(directory) as scan:
                entries = sorted(scan, key=lambda e: e.name)
        except OSError as exc:
            problem(directory, f"cannot read the directory: {exc.strerror or exc}", _PERMISSION)
            return
        for entry in entries:
            path = Path(entry.path)
            if entry.name.startswith("."):
                continue
            try:
                status = path.stat()
            except OSError as exc:
                if entry.is_symlink():
                    loop = exc.errno == errno.ELOOP
                    problem(
                        path,
                        "symlink loop" if loop else "dangling symlink: its target does not exist",
                        "fix or remove the link",
                    )
                else:
                    problem(path, f"cannot read it: {exc.strerror or exc}", _PERMISSION)
                continue
            is_dir = stat.S_ISDIR(status.st_mode)
            is_manifest = entry.name.endswith(MANIFEST_SUFFIXES)
            if (is_dir or is_manifest) and not _is_utf8(entry.name):
                problem(path, "the name is not valid UTF-8", "rename it using UTF-8 characters")
            elif is_dir:
                identity = (status.st_dev, status.st_ino)
                if identity in ancestors:
                    problem(path, "symlink loop: it leads back to a parent directory", "remove it")
                else:
                    walk(path, ancestors | {identity})
            elif is_manifest:
                if stat.S_ISREG(status.st_mode):
                    found.append(path)
                else:
                    problem(path, "not a regular file", "manifests must be regular files")
            elif entry.name.lower().endswith(MANIFEST_SUFFIXES):
                problem(path, "not read: manifest names end in .yaml, .yml or .csv", _LOWER_CASE)

    root = config_dir.stat()
    walk(config_dir, frozenset({(root.st_dev, root.st_ino)}))
    return sorted(found), errors


_PERMISSION = "check its permissions: every manifest must be readable"


def _is_utf8(name: str) -> bool:
    # os.fsdecode keeps undecodable bytes as lone surrogates.
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _display(path: Path) -> str:
    relative = os.path.relpath(path)
    shown = str(path) if relative.startswith("..") else relative
    # Undecodable bytes (lone surrogates) are shown escaped so printing works.
    return shown.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@contextmanager
def _collector_paused() -> Iterator[None]:
    # A large manifest allocates hundreds of thousands of acyclic objects; the
    # cyclic collector rescanning them repeatedly tripled load time.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_manifest(config_dir: Path, layers: Sequence[str] | None = None) -> Manifest:
    """Read, merge, validate and compile the manifests in `config_dir`, or
    in its `layers` (an environment's directories, relative to it), merged
    in order with a later layer overriding an earlier one key by key.

    Raises ManifestInvalid carrying every error found. Never calls an API.
    """
    with _collector_paused():
        return _load(config_dir, layers)


def _load(config_dir: Path, layers: Sequence[str] | None) -> Manifest:
    def invalid(path: Path, message: str, hint: str = "") -> ManifestInvalid:
        return ManifestInvalid([ManifestError(_display(path), 1, 1, message, hint)])

    if not config_dir.is_dir():
        raise invalid(config_dir, "config directory not found", "pass --config DIR")
    declared = config_dir / ENVIRONMENTS_FILE
    if layers is None and declared.is_file():
        raise invalid(
            declared,
            "this config directory declares environments",
            "choose one with --env NAME, or every one with --all-envs",
        )
    # Every problem in one run: files that can be read are, whatever else failed.
    errors: list[ManifestError] = []
    found: list[list[Path]] = []
    for directory in [config_dir] if layers is None else [config_dir / d for d in layers]:
        if not directory.is_dir():
            errors.extend(invalid(directory, "layer directory not found").errors)
            continue
        paths, problems = _manifest_files(directory)
        found.append(paths)
        errors.extend(problems)
    if not any(found) and not errors:
        raise invalid(config_dir, "no *.yaml, *.yml or *.csv files found")

    def readable(paths: list[Path]) -> Iterator[tuple[str, str, bytes]]:
        # one file's bytes at a time: a YAML file's go once it is parsed
        for path in paths:
            display = _display(path)
            try:
                yield str(path.relative_to(config_dir)), display, read_bounded(path, display)
            except ManifestInvalid as unreadable:
                errors.extend(unreadable.errors)

    return _compile_files([readable(paths) for paths in found], errors, layers is not None)


def load_manifest_files(
    files: list[tuple[str, str, bytes]], layers: Sequence[str] | None = None
) -> Manifest:
    """Compile manifests from (path relative to the config directory, path to
    show in errors, bytes) triples, e.g. read from git objects; with
    `layers`, those files under each layer, as `load_manifest` layers them.
    The digest is the one `load_manifest` gives the same files on disk."""
    grouped = [files] if layers is None else [in_layer(files, layer) for layer in layers]
    with _collector_paused():
        return _compile_files([iter(group) for group in grouped], [], layers is not None)


def in_layer(files: list[tuple[str, str, bytes]], layer: str) -> list[tuple[str, str, bytes]]:
    """The files (relative to the config directory) under directory `layer`."""
    return [f for f in files if under(f[0], layer)]


def under(relative: str, layer: str) -> bool:
    """Whether a path relative to the config directory lies in directory `layer`."""
    return PurePosixPath(relative).is_relative_to(PurePosixPath(layer))


def _compile_files(
    layers: list[Iterator[tuple[str, str, bytes]]], errors: list[ManifestError], overrides: bool
) -> Manifest:
    """Parse each layer's (relative path, display, bytes) in order, then
    compile. YAML files parse as they come (their bytes go at once); CSV
    files parse last, once the YAML settings say which of their columns to
    ignore. `overrides`: the layers are an environment's (MergedDocument)."""
    parsed: list[list[SourceFile | tuple[str, bytes]]] = []
    digest = hashlib.sha256()
    for files in layers:
        parsed.append([])
        for relative, display, raw in files:
            digest.update(os.fsencode(relative) + b"\0" + raw + b"\0")
            if relative.endswith(CSV_SUFFIX):
                parsed[-1].append((display, raw))
                continue
            try:
                parsed[-1].append(parse_source(raw, display))
            except ManifestInvalid as invalid:
                errors.extend(invalid.errors)
    ignored = _csv_ignore_columns(
        [p for layer in parsed for p in layer if isinstance(p, SourceFile)]
    )
    sources: list[list[SourceFile]] = []
    for layer in parsed:
        sources.append([])
        for item in layer:
            if isinstance(item, SourceFile):
                sources[-1].append(item)
                continue
            try:
                sources[-1].append(parse_csv_source(item[1], item[0], ignored))
            except ManifestInvalid as invalid:
                errors.extend(invalid.errors)
    return _compile_sources(sources, errors, digest.hexdigest(), overrides)


def _csv_ignore_columns(sources: list[SourceFile]) -> list[str]:
    """settings.csv_ignore_columns as written (the schema checks it later);
    a later layer's overrides an earlier one's, its `null` too."""
    for source in reversed(sources):
        settings = source.data.get("settings") if isinstance(source.data, dict) else None
        if isinstance(settings, dict) and "csv_ignore_columns" in settings:
            columns = settings["csv_ignore_columns"]
            return [c for c in columns if isinstance(c, str)] if isinstance(columns, list) else []
    return []


def _compile_sources(
    layers: list[list[SourceFile]], errors: list[ManifestError], digest: str, overrides: bool
) -> Manifest:
    if errors:
        raise ManifestInvalid(errors)
    merged = MergedDocument(layers, overrides)
    sources = merged.sources
    if merged.errors:
        raise ManifestInvalid(merged.errors)
    try:
        document = ManifestDocument.model_validate(merged.data)
    except ValidationError as exc:
        errors = _schema_errors(exc, merged)
        survivors = _without_invalid_entries(merged.data, exc)
        if survivors is not None:
            errors.extend(_reference_errors(survivors, merged))
        raise ManifestInvalid(errors) from None
    errors = list(_reference_errors(document, merged))
    if errors:
        raise ManifestInvalid(errors)
    manifest = _compile(document, digest, [s.path for s in sources])
    log.info(
        "loaded %s: %s, %s, %s",
        counted(len(sources), "file"),
        counted(len(manifest.desired.attributes), "attribute"),
        counted(len(manifest.desired.users), "user"),
        counted(len(manifest.groups), "group"),
    )
    return manifest


_KNOWN_KEYS = known_keys()


def _is_level(path: DocPath) -> bool:
    return (len(path) == 5 and path[0] == "users" and path[2] == "proficiencies") or (
        len(path) == 4 and path[0] == "proficiency_sets"
    )


# pydantic's wording names our Python classes; say what YAML to write instead.
_EXPECTED = {
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
    "dict_type": "a mapping (key: value)",
    "list_type": "a list ([a, b] or '- a' lines)",
    "string_type": "text",
    "bool_type": "true or false",
}


def _schema_errors(exc: ValidationError, merged: MergedDocument) -> list[ManifestError]:
    errors = []
    for detail in exc.errors(include_url=False):
        path: DocPath = tuple(detail["loc"])
        kind = detail["type"]
        value = detail.get("input")
        if kind == "extra_forbidden":
            key = str(path[-1])
            close = difflib.get_close_matches(key, _KNOWN_KEYS, n=1)
            hint = f"did you mean {excerpt(close[0])}?" if close else "remove it"
            errors.append(merged.error(path, f"unknown key {excerpt(key)}", hint, at_key=True))
        elif kind == "missing":
            hint = (
                "add an `instance:` block with `id` and `region`" if path == ("instance",) else ""
            )
            errors.append(
                merged.error(
                    path[:-1],
                    f"missing required key {excerpt(path[-1])}",
                    hint,
                    at_key=len(path) > 1,
                )
            )
        elif _is_level(path):
            errors.append(
                merged.error(
                    path,
                    f"level of {clip(f'{path[-2]}/{path[-1]}')} must be a whole number from "
                    f"{limits.MIN_LEVEL} to {limits.MAX_LEVEL}, got {excerpt(value)}",
                    "1 is the lowest proficiency, 5 the highest",
                )
            )
        elif kind in _EXPECTED:
            errors.append(merged.error(path, f"expected {_EXPECTED[kind]}, got {excerpt(value)}"))
        elif kind in ("string_too_long", "string_too_short"):
            # pydantic names a mapping key's problem by the key, then "[key]"
            at_key = bool(path) and path[-1] == "[key]"
            errors.append(
                merged.error(
                    path[:-1] if at_key else path,
                    f"{detail['msg']}, the service's limit; got {excerpt(value)}",
                    "Amazon Connect refuses longer (or empty) names and values",
                    at_key=at_key,
                )
            )
        else:
            message = detail["msg"].removeprefix("Value error, ").replace(" after validation", "")
            if not isinstance(value, dict | list):
                message += f", got {excerpt(value)}"
            errors.append(merged.error(path, message))
    return errors


# Entries that only consume definitions: dropping an invalid one cannot make
# another entry's reference look broken.
_CONSUMER_SECTIONS = ("users", "groups", "routing_requirements")


def _without_invalid_entries(data: dict[str, Any], exc: ValidationError) -> ManifestDocument | None:
    """The document minus entries with schema errors, so that reference errors
    can be reported in the same run; None when a definition itself is invalid."""
    broken: dict[str, set[Any]] = {}
    for detail in exc.errors():
        loc = detail["loc"]
        if len(loc) < 2 or loc[0] not in _CONSUMER_SECTIONS:
            return None
        broken.setdefault(str(loc[0]), set()).add(loc[1])
    kept = dict(data)
    for section, keys in broken.items():
        value = kept[section]
        if isinstance(value, dict):
            kept[section] = {k: v for k, v in value.items() if k not in keys}
        else:
            kept[section] = [v for i, v in enumerate(value) if i not in keys]
    try:
        return ManifestDocument.model_validate(kept)
    except ValidationError:
        return None


def _reference_errors(doc: ManifestDocument, merged: MergedDocument) -> Iterator[ManifestError]:
    yield from _attribute_errors(doc, merged)
    declared = {name: set(spec.values) for name, spec in doc.predefined_attributes.items()}
    external = set(doc.settings.external_attributes)

    def check_map(prefix: DocPath, proficiencies: ProficiencyMap) -> Iterator[ManifestError]:
        for attribute, values in proficiencies.items():
            # System attributes are the service's: the plan checks them live.
            if attribute in external or limits.is_reserved(attribute):
                continue
            if attribute not in declared:
                close = difflib.get_close_matches(attribute, [*declared, *external], n=1)
                hint = (
                    f"did you mean {excerpt(close[0])}?"
                    if close
                    else "declare it under predefined_attributes, or list it in "
                    "settings.external_attributes if it is managed elsewhere"
                )
                removed = merged.removal_note(("predefined_attributes", attribute))
                yield merged.error(
                    (*prefix, attribute),
                    f"attribute {excerpt(attribute)} is not declared{removed}",
                    hint,
                    at_key=True,
                )
                continue
            for value in values:
                if value not in declared[attribute]:
                    close = difflib.get_close_matches(value, declared[attribute], n=1)
                    hint = (
                        f"did you mean {excerpt(close[0])}?"
                        if close
                        else "add it to the attribute's values"
                    )
                    yield merged.error(
                        (*prefix, attribute, value),
                        f"value {excerpt(value)} is not declared for attribute "
                        f"{excerpt(attribute)}",
                        hint,
                        at_key=True,
                    )

    for set_name, proficiencies in doc.proficiency_sets.items():
        yield from check_map(("proficiency_sets", set_name), proficiencies)

    def check_sets(prefix: DocPath, names: list[str]) -> Iterator[ManifestError]:
        for index, name in enumerate(names):
            if name not in doc.proficiency_sets:
                close = difflib.get_close_matches(name, list(doc.proficiency_sets), n=1)
                hint = (
                    f"did you mean {excerpt(close[0])}?"
                    if close
                    else "define it under proficiency_sets"
                )
                removed = merged.removal_note(("proficiency_sets", name))
                yield merged.error(
                    (*prefix, index),
                    f"proficiency set {excerpt(name)} is not defined{removed}",
                    hint,
                )

    for index, group in enumerate(doc.groups):
        yield from check_sets(("groups", index, "sets"), group.sets)

    cap = doc.settings.max_proficiencies_per_user
    for username, user in doc.users.items():
        yield from check_sets(("users", username, "sets"), user.sets)
        yield from check_map(("users", username, "proficiencies"), user.proficiencies)
        count = len(_given(doc, user.sets, user.proficiencies, ""))
        if count > cap:
            yield merged.error(
                ("users", username),
                f"user {excerpt(username)} would hold {count} proficiencies; the limit is {cap}",
                "drop some, or raise settings.max_proficiencies_per_user if your "
                "account's quota is higher",
                at_key=True,
            )

    for index, requirement in enumerate(doc.routing_requirements):
        path = ("routing_requirements", index, "expression")
        try:
            expression = parse_expression(requirement.expression)
        except ExpressionError as error:
            yield merged.error(
                path, f"routing requirement {excerpt(requirement.name)}: {error}", _EXPRESSION_HINT
            )
            continue
        for attribute, value in sorted(references(expression)):
            if attribute in external or limits.is_reserved(attribute):
                continue
            if attribute not in declared or value not in declared[attribute]:
                yield merged.error(
                    path,
                    f"routing requirement {excerpt(requirement.name)} uses "
                    f"{clip(f'{attribute}/{value}')}, which the manifests do not declare",
                    "declare it, or list the attribute in settings.external_attributes",
                )
    seen: dict[str, int] = {}
    for index, requirement in enumerate(doc.routing_requirements):
        if requirement.name in seen:
            first = merged.key_location(("routing_requirements", seen[requirement.name], "name"))
            yield merged.error(
                ("routing_requirements", index, "name"),
                f"routing requirement {excerpt(requirement.name)} is already defined at {first}",
            )
        seen.setdefault(requirement.name, index)


_EXPRESSION_HINT = (
    "text form: Language = Spanish >= 4 AND (Skill = Billing >= 3 OR Skill = Payments IN 4..5); "
    "or a routing step's Expression as in DescribeContact"
)


def _attribute_errors(doc: ManifestDocument, merged: MergedDocument) -> Iterator[ManifestError]:
    first_by_folded: dict[str, str] = {}
    for name, spec in doc.predefined_attributes.items():
        path: DocPath = ("predefined_attributes", name)
        if limits.takes_custom_values(name):
            yield from _system_attribute_errors(name, spec, path, merged)
        elif problem := limits.name_problem(name):
            yield merged.error(
                path,
                f"attribute name {excerpt(name)}: {problem}",
                f"of the system attributes only {limits.CUSTOM_VALUES_ATTRIBUTE}'s custom "
                "values can be declared"
                if limits.is_reserved(name)
                else "",
                at_key=True,
            )
        folded = name.casefold()
        if folded in first_by_folded:
            other = first_by_folded[folded]
            where = merged.key_location(("predefined_attributes", other))
            yield merged.error(
                path,
                f"attribute {excerpt(name)} differs only in case from {excerpt(other)} at {where}",
                "Amazon Connect attribute names are case-insensitive; keep one",
                at_key=True,
            )
        first_by_folded.setdefault(folded, name)
        seen_values: set[str] = set()
        for index, value in enumerate(spec.values):
            problem = limits.name_problem(value)
            if problem:
                yield merged.error(
                    (*path, "values", index), f"value {excerpt(value, 40)}: {problem}"
                )
            elif value in seen_values:
                yield merged.error(
                    (*path, "values", index), f"value {excerpt(value)} is listed twice"
                )
            seen_values.add(value)
    for index, name in enumerate(doc.settings.external_attributes):
        if name in doc.predefined_attributes:
            yield merged.error(
                ("settings", "external_attributes", index),
                f"attribute {excerpt(name)} is both declared and external",
                "an attribute is either managed here or elsewhere",
            )


def _system_attribute_errors(
    name: str, spec: AttributeSpec, path: DocPath, merged: MergedDocument
) -> Iterator[ManifestError]:
    """connect:Language may be declared for its custom values only: its name,
    its system values and its settings are the service's."""
    if name != limits.CUSTOM_VALUES_ATTRIBUTE:
        yield merged.error(
            path,
            f"system attribute {name!r} is spelled {limits.CUSTOM_VALUES_ATTRIBUTE!r}",
            at_key=True,
        )
    if spec.purposes or spec.enable_value_validation_on_association:
        yield merged.error(
            path,
            f"{limits.CUSTOM_VALUES_ATTRIBUTE} is a system attribute: only its custom values "
            "can be declared, not purposes or settings",
            at_key=True,
        )


def _given(
    doc: ManifestDocument, set_names: list[str], explicit: ProficiencyMap, label: str
) -> dict[tuple[str, str], tuple[float, str]]:
    """Sets merged in order, then explicit entries (a later level wins), each
    level with what gives it: `{label}set NAME` or OWN_ENTRY."""
    merged: dict[tuple[str, str], tuple[float, str]] = {}
    for name in set_names:
        _add(merged, doc.proficiency_sets.get(name, {}), f"{label}set {name}")
    _add(merged, explicit, OWN_ENTRY)
    return merged


def _add(
    into: dict[tuple[str, str], tuple[float, str]], proficiencies: ProficiencyMap, source: str
) -> None:
    for attribute, values in proficiencies.items():
        for value, level in values.items():
            into[(attribute, value)] = (level, source)


def _compile(doc: ManifestDocument, digest: str, files: list[str]) -> Manifest:
    attributes = {
        name: Attribute(
            name=name,
            values=tuple(spec.values),
            purposes=tuple(spec.purposes),
            enable_value_validation_on_association=spec.enable_value_validation_on_association,
        )
        for name, spec in doc.predefined_attributes.items()
    }
    given = {
        username: _given(doc, user.sets, user.proficiencies, "")
        for username, user in doc.users.items()
    }
    users = {
        username: UserState(username, {key: level for key, (level, _) in levels.items()})
        for username, levels in given.items()
    }
    groups = []
    for index, group in enumerate(doc.groups):
        match = group.match
        selector = UserSelector(match.routing_profile, match.hierarchy_group, match.username)
        # how plans name what a group gives: `group 2 (routing_profile=X) set S`
        levels = _given(doc, group.sets, {}, f"group {index + 1} {selector.describe()} ")
        groups.append(
            GroupSelector(
                selector,
                {key: level for key, (level, _) in levels.items()},
                {key: source for key, (_, source) in levels.items()},
            )
        )
    return Manifest(
        instance=doc.instance,
        settings=doc.settings,
        desired=RoutingState(attributes, users),
        groups=groups,
        requirements=[
            Requirement(r.name, parse_expression(r.expression), r.min_agents)
            for r in doc.routing_requirements
        ],
        digest=digest,
        files=files,
        sources={
            username: {key: source for key, (_, source) in levels.items()}
            for username, levels in given.items()
        },
    )
