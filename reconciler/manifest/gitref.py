"""The manifests as they were at a git ref, read from git objects.

`plan --changed-since REF` compares them with the manifests on disk. Nothing
is checked out and the working tree is never touched: `git ls-tree` lists
the config directory's files at REF and `git cat-file --batch` reads them.
"""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path, PurePosixPath

from reconciler.manifest.environments import environment_at
from reconciler.manifest.loader import (
    ENVIRONMENTS_FILE,
    MANIFEST_SUFFIXES,
    Manifest,
    load_manifest_files,
)

SYMLINK_MODE = "120000"


class GitRefError(Exception):
    """The ref, the repository or the config directory cannot be read."""


def _git(repo: Path, *args: str, stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args], input=stdin, capture_output=True, check=False
        )
    except FileNotFoundError:
        raise GitRefError("git is not installed; --changed-since needs it") from None
    if done.returncode != 0:
        raise GitRefError(done.stderr.decode(errors="replace").strip() or f"git {args[0]} failed")
    return done.stdout


def config_in_repository(config_dir: Path) -> tuple[Path, str]:
    """(repository root, the config directory's path inside it)."""
    if not config_dir.is_dir():
        raise GitRefError(f"config directory {config_dir} not found")
    try:
        root = Path(_git(config_dir, "rev-parse", "--show-toplevel").decode().strip())
    except GitRefError as exc:
        raise GitRefError(f"{config_dir} is not inside a git repository ({exc})") from None
    inside = config_dir.resolve().relative_to(root.resolve()).as_posix()
    return root, "" if inside == "." else inside


def manifest_files_at(config_dir: Path, ref: str) -> list[tuple[str, str, bytes]]:
    """(path relative to the config directory, `REF:path` for errors, bytes)
    for every manifest file under the config directory at `ref`; sorted and
    filtered as `find_manifest_files` does on disk."""
    root, inside = config_in_repository(config_dir)
    try:
        commit = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except GitRefError:
        raise GitRefError(
            f"git ref {ref!r} not found in {root}; in a shallow CI clone fetch it first "
            "(actions/checkout with fetch-depth: 0, or `git fetch --depth=1 origin "
            f"{ref.removeprefix('origin/')}` for a branch, or the commit's SHA)"
        ) from None
    sha = commit.decode().strip()
    # Every environment of a run reads the same commit: its objects once.
    with _READ_LOCK:
        key = (str(root.resolve()), inside, sha, ref)
        if key not in _READ:
            if len(_READ) >= _KEPT:  # a long-lived process (the tests) reads many commits
                _READ.clear()
            _READ[key] = _files_at_commit(root, inside, sha, ref)
        return list(_READ[key])


# (repository, directory, commit, ref as shown) -> its manifest files
_READ: dict[tuple[str, str, str, str], list[tuple[str, str, bytes]]] = {}
_READ_LOCK = threading.Lock()
_KEPT = 8


def _files_at_commit(root: Path, inside: str, sha: str, ref: str) -> list[tuple[str, str, bytes]]:
    listing = _git(root, "ls-tree", "-r", "-z", "--full-tree", sha, "--", inside or ".")
    entries: list[tuple[PurePosixPath, str]] = []
    for record in listing.split(b"\0"):
        if not record:
            continue
        meta, path_bytes = record.split(b"\t", 1)
        mode, kind, blob = meta.decode().split()
        path = PurePosixPath(path_bytes.decode(errors="replace"))
        relative = path.relative_to(inside) if inside else path
        hidden = any(part.startswith(".") for part in relative.parts)
        if kind != "blob" or hidden:
            continue
        if path.suffix.lower() in MANIFEST_SUFFIXES and path.suffix not in MANIFEST_SUFFIXES:
            raise GitRefError(
                f"{ref}:{path}: manifest names end in .yaml, .yml or .csv (lower case); "
                "rename it, as the config directory on disk must too"
            )
        if path.suffix not in MANIFEST_SUFFIXES:
            continue
        if mode == SYMLINK_MODE:
            # Its blob is the link's target, not the manifest: fail closed.
            raise GitRefError(f"{ref}:{path} is a symbolic link; --changed-since cannot follow it")
        entries.append((relative, blob))
    entries.sort()
    if not entries:
        return []
    batch = _git(root, "cat-file", "--batch", stdin="".join(f"{b}\n" for _, b in entries).encode())
    files = []
    offset = 0
    for relative, _ in entries:
        header_end = batch.index(b"\n", offset)
        size = int(batch[offset:header_end].split()[2])
        content = batch[header_end + 1 : header_end + 1 + size]
        offset = header_end + 1 + size + 1  # the object, then a newline
        shown = f"{ref}:{(PurePosixPath(inside) / relative) if inside else relative}"
        files.append((str(relative), shown, content))
    return files


def manifest_at(config_dir: Path, ref: str, environment: str | None = None) -> Manifest | None:
    """The manifests under `config_dir` as they were at `ref` (environment
    `environment`'s, of environments.yaml as it was then), or None when the
    directory (or that environment) held no manifest files then. Raises
    GitRefError, or ManifestInvalid when they did not load at that ref."""
    files = manifest_files_at(config_dir, ref)
    if environment is not None:
        return environment_at(files, environment)
    if any(relative == ENVIRONMENTS_FILE for relative, _, _ in files):
        return None  # environments then, one directory now: nothing to compare with
    return load_manifest_files(files) if files else None
