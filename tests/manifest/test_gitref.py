"""Manifests read from git objects at a ref, in a fresh `git init` repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.manifest import load_manifest
from reconciler.manifest.gitref import GitRefError, config_in_repository, manifest_at
from tests.conftest import BASE_FILES, git, write_config


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q")
    return tmp_path


def test_reads_the_config_directory_at_a_ref_without_touching_the_tree(repo: Path) -> None:
    config = write_config(repo / "infra" / "config", {
        "users.yaml": "users:\n  jane: {sets: [bilingual]}\n",
        ".drafts/ignored.yaml": "not: [valid",
        "notes.txt": "not a manifest",
    })  # fmt: skip
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    committed = load_manifest(config)
    (config / "users.yaml").write_text("users:\n  joe: {}\n")
    (config / "more.yml").write_text("users:\n  ann: {}\n")
    status = git(repo, "status", "--porcelain")
    at_head = manifest_at(config, "HEAD")
    assert at_head is not None
    assert at_head.digest == committed.digest  # the same files give the same digest
    assert set(at_head.desired.users) == {"jane"}
    assert at_head.files == ["HEAD:infra/config/attributes.yaml", "HEAD:infra/config/instance.yaml",
                             "HEAD:infra/config/users.yaml"]  # fmt: skip
    assert git(repo, "status", "--porcelain") == status
    assert (config / "users.yaml").read_text() == "users:\n  joe: {}\n"


def test_config_at_the_repository_root(repo: Path) -> None:
    write_config(repo, {})
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    assert config_in_repository(repo)[1] == ""
    manifest = manifest_at(repo, "HEAD")
    assert manifest is not None and manifest.files[0] == "HEAD:attributes.yaml"


def test_a_config_directory_new_since_the_ref_has_no_manifests(repo: Path) -> None:
    (repo / "README").write_text("x")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    config = write_config(repo / "config", {})
    assert manifest_at(config, "HEAD") is None


def test_a_missing_ref_is_a_clear_error(repo: Path) -> None:
    config = write_config(repo / "config", {})
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    with pytest.raises(GitRefError, match=r"git ref 'origin/main' not found.*fetch-depth"):
        manifest_at(config, "origin/main")


def test_outside_a_repository_is_an_error(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config", BASE_FILES)
    with pytest.raises(GitRefError, match="is not inside a git repository"):
        manifest_at(config, "HEAD")


def test_a_symlinked_manifest_at_the_ref_is_refused(repo: Path) -> None:
    config = write_config(repo / "config", {})
    (config / "linked.yaml").symlink_to(config / "attributes.yaml")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    with pytest.raises(GitRefError, match=r"HEAD:config/linked\.yaml is a symbolic link"):
        manifest_at(config, "HEAD")


def test_a_shallow_clone_reads_the_base_once_it_is_fetched(repo: Path, tmp_path_factory) -> None:
    write_config(repo / "config", {"users.yaml": "users:\n  jane: {}\n"})
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    base = git(repo, "rev-parse", "HEAD").strip()
    (repo / "config" / "users.yaml").write_text("users:\n  joe: {}\n")
    git(repo, "commit", "-qam", "pull request")
    clone = tmp_path_factory.mktemp("ci") / "clone"
    git(repo.parent, "clone", "-q", "--depth=1", f"file://{repo}", str(clone))
    with pytest.raises(GitRefError, match="in a shallow CI clone fetch it first"):
        manifest_at(clone / "config", base)
    git(clone, "fetch", "-q", "--depth=1", "origin", base)
    manifest = manifest_at(clone / "config", base)
    assert manifest is not None and set(manifest.desired.users) == {"jane"}
