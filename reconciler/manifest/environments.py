"""Environments: one config directory, several Connect instances.

`environments.yaml` in the config directory names each environment's layer
directories; an environment's manifests are its layers merged in order, a
later layer overriding an earlier one key by key (see manifest/merging.py). A
layer is read only as part of an environment: every manifest file under the
config directory must lie in some environment's layer, so none is skipped
without a word.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from reconciler.manifest.errors import ManifestError, ManifestInvalid
from reconciler.manifest.loader import (
    ENVIRONMENTS_FILE,
    Environment,
    Manifest,
    find_manifest_files,
    in_layer,
    load_manifest,
    load_manifest_files,
    under,
)
from reconciler.manifest.source import SourceFile, parse_source, read_bounded
from reconciler.quoting import excerpt, unknown_names

# Names go into file names (`plan --out DIR`) and `--target ENV=TARGET`.
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,62}")
_TOP_KEYS = ("environments",)
_ENVIRONMENT_KEYS = ("layers", "apply")


class EnvironmentChoiceError(Exception):
    """`--env`/`--all-envs` do not select what the command needs."""


@dataclass(frozen=True)
class Environments:
    """The environments a config directory declares, in file order."""

    config_dir: Path
    by_name: dict[str, Environment]

    def select(self, names: Sequence[str], every: bool, several: bool) -> list[Environment]:
        """The environments `--env NAME...` / `--all-envs` ask for; `several`
        when the command can run more than one. EnvironmentChoiceError says
        what to give instead."""
        listed = ", ".join(self.by_name)
        if every and names:
            raise EnvironmentChoiceError("give --env NAME or --all-envs, not both")
        if not names and not every:
            raise EnvironmentChoiceError(
                f"{self.config_dir / ENVIRONMENTS_FILE} declares environments ({listed}): "
                "choose with --env NAME" + (" or --all-envs" if several else "")
            )
        unknown = [name for name in names if name not in self.by_name]
        if unknown:
            raise EnvironmentChoiceError(unknown_environment(unknown, self))
        chosen = list(self.by_name.values()) if every else [self.by_name[n] for n in names]
        chosen = list({e.name: e for e in chosen}.values())
        if len(chosen) > 1 and not several:
            raise EnvironmentChoiceError(
                f"this command runs against one instance: choose one with --env NAME ({listed})"
            )
        return chosen

    def load(self, environment: Environment) -> Manifest:
        """The environment's manifests (ManifestInvalid on errors)."""
        manifest = load_manifest(self.config_dir, environment.layers)
        manifest.environment = environment
        return manifest


def unknown_environment(names: Iterable[str], environments: Environments) -> str:
    """The error for environment names that match none, with the closest."""
    known = list(environments.by_name)
    problem = unknown_names("environment", names, known)
    return f"{problem} in {environments.config_dir / ENVIRONMENTS_FILE} ({', '.join(known)})"


def read_environments(config_dir: Path) -> Environments | None:
    """The environments `config_dir/environments.yaml` declares, None
    without one. Raises ManifestInvalid (file and line, no API call) for a
    bad file, a missing or repeated layer, or a manifest file in no layer."""
    path = config_dir / ENVIRONMENTS_FILE
    if not path.is_file():
        return None
    display = str(path)
    source = parse_source(read_bounded(path, display), display)
    environments, errors = _parse(source, _on_disk(config_dir))
    if errors:  # an environment left out would make its layers' files look unclaimed
        raise ManifestInvalid(errors)
    # a loop or a dangling link raises ManifestInvalid here, naming the path
    on_disk = [p.relative_to(config_dir).as_posix() for p in find_manifest_files(config_dir)]
    errors = _unclaimed([p for p in on_disk if p != ENVIRONMENTS_FILE], environments, display)
    if errors:
        raise ManifestInvalid(errors)
    return Environments(config_dir, environments)


def environment_at(files: list[tuple[str, str, bytes]], name: str) -> Manifest | None:
    """Environment `name`'s manifests from files read from git (relative to
    the config directory): None when that commit declared no such
    environment, or its layers held no manifest then (it is new). Other
    environments' layers are not this one's concern."""
    declared = next((f for f in files if f[0] == ENVIRONMENTS_FILE), None)
    if declared is None:
        return None
    environments, errors = _parse(parse_source(declared[2], declared[1]), lambda _: "")
    if errors:
        raise ManifestInvalid(errors)
    environment = environments.get(name)
    if environment is None or not any(in_layer(files, layer) for layer in environment.layers):
        return None
    manifest = load_manifest_files(files, environment.layers)
    manifest.environment = environment
    return manifest


def _on_disk(config_dir: Path) -> Callable[[str], str]:
    """Why a layer cannot be read from `config_dir` ("" when it can)."""

    def problem(layer: str) -> str:
        path = config_dir / layer
        if not path.is_dir():
            return f"layer directory {excerpt(layer)} does not exist in {config_dir}"
        resolved, root = path.resolve(), config_dir.resolve()
        if resolved == root or resolved in root.parents:
            return f"layer {excerpt(layer)} leads back to the config directory: a cycle"
        return ""

    return problem


def _parse(
    source: SourceFile, layer_problem: Callable[[str], str]
) -> tuple[dict[str, Environment], list[ManifestError]]:
    errors: list[ManifestError] = []
    data = source.data
    if not isinstance(data, dict):
        return {}, [source.error((), "expected a mapping with an `environments:` key")]
    for key in data:
        if key not in _TOP_KEYS:
            errors.append(_unknown_key(source, (key,), key, _TOP_KEYS))
    declared = data.get("environments")
    if not isinstance(declared, dict) or not declared:
        errors.append(
            source.error(
                ("environments",),
                "expected `environments:` mapping each name to {layers: [...]}",
                "e.g. environments: {prod: {layers: [base, prod]}}",
            )
        )
        return {}, errors
    environments: dict[str, Environment] = {}
    for name, spec in declared.items():
        path = ("environments", name)
        line, column = source.position(path, at_key=True)
        if not NAME_PATTERN.fullmatch(name):  # keys are read as their text
            errors.append(
                source.error(
                    path,
                    f"environment name {excerpt(name)} is not a plain identifier",
                    "use letters, digits, '-' and '_', starting with a letter",
                    at_key=True,
                )
            )
            continue
        if not isinstance(spec, dict):
            errors.append(source.error(path, "expected {layers: [...], apply: true|false}"))
            continue
        for key in spec:
            if key not in _ENVIRONMENT_KEYS:
                errors.append(_unknown_key(source, (*path, key), key, _ENVIRONMENT_KEYS))
        apply = spec.get("apply", True)
        if not isinstance(apply, bool):
            errors.append(source.error((*path, "apply"), f"expected true or false, got {apply!r}"))
        layers = _layers(source, path, spec.get("layers"), layer_problem, errors)
        if layers is not None:
            environments[name] = Environment(
                name, layers, apply is not False, source.path, line, column
            )
    return environments, errors


def _layers(
    source: SourceFile,
    path: tuple[str, str],
    layers: Any,
    layer_problem: Callable[[str], str],
    errors: list[ManifestError],
) -> tuple[str, ...] | None:
    if not isinstance(layers, list) or not layers:
        errors.append(
            source.error(
                (*path, "layers"),
                "expected `layers:`, a list of directories",
                "e.g. layers: [base, prod]",
            )
        )
        return None
    found: list[str] = []
    seen: dict[str, int] = {}
    ok = True
    for index, layer in enumerate(layers):
        at = (*path, "layers", index)
        problem = _layer_problem(layer) or layer_problem(layer)
        if problem:
            errors.append(source.error(at, problem, "layers are directories inside the config one"))
            ok = False
            continue
        normal = PurePosixPath(layer).as_posix()
        for earlier, first in seen.items():
            if under(normal, earlier) or under(earlier, normal):
                what = "is listed twice" if normal == earlier else "is inside another of its layers"
                errors.append(
                    source.error(
                        at,
                        f"layer {excerpt(layer)} {what} (as item {first + 1} of the list): "
                        "its files would merge twice",
                        "list each directory once; layers must not nest",
                    )
                )
                ok = False
        seen.setdefault(normal, index)
        found.append(normal)
    return tuple(found) if ok else None


def _layer_problem(layer: Any) -> str:
    """What is wrong with a layer entry wherever it is read."""
    if not isinstance(layer, str) or not layer.strip():
        return f"a layer is a directory name, got {excerpt(layer)}"
    relative = PurePosixPath(layer)
    if relative.is_absolute() or ".." in relative.parts or relative.as_posix() == ".":
        return (
            f"layer {excerpt(layer)} must be a directory inside the config directory "
            "(not itself, a parent, or an absolute path): it would merge into a cycle"
        )
    if any(part.startswith(".") for part in relative.parts):
        return f"layer {excerpt(layer)} is hidden: hidden directories are never read"
    return ""


def _unclaimed(
    on_disk: list[str], environments: dict[str, Environment], display: str
) -> list[ManifestError]:
    """A manifest file no environment's layer holds would never be read."""
    layers = {layer for e in environments.values() for layer in e.layers}
    return [
        ManifestError(
            str(Path(display).parent / relative),
            1,
            1,
            "this file is in no environment's layer, so no environment reads it",
            f"move it into a layer, or add its directory to a layer list in {ENVIRONMENTS_FILE}",
        )
        for relative in sorted(on_disk)
        if not any(under(relative, layer) for layer in layers)
    ]


def _unknown_key(
    source: SourceFile, path: tuple[Any, ...], key: Any, known: Sequence[str]
) -> ManifestError:
    close = difflib.get_close_matches(str(key), known, n=1)
    hint = f"did you mean {excerpt(close[0])}?" if close else f"known keys: {', '.join(known)}"
    return source.error(path, f"unknown key {excerpt(key)}", hint, at_key=True)


def instance_collisions(manifests: Sequence[Manifest]) -> list[ManifestError]:
    """Two environments that may both apply to one instance (same id and
    region) would undo each other's writes: an error at the second's name."""
    errors = []
    first: dict[tuple[str, str | None], Environment] = {}
    for manifest in manifests:
        environment = manifest.environment
        if environment is None or not environment.apply:
            continue
        key = (manifest.instance.instance_id, manifest.instance.region_name)
        other = first.setdefault(key, environment)
        if other is not environment:
            errors.append(
                ManifestError(
                    environment.file,
                    environment.line,
                    environment.column,
                    f"environments {other.name!r} ({other.where}) and {environment.name!r} "
                    f"both apply to instance {key[0]} in {key[1] or 'the default region'}",
                    "give each environment its own instance, or set `apply: false` on the "
                    "replica that is only verified",
                )
            )
    return errors
