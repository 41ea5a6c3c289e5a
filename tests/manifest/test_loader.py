"""Merging files and compiling the desired state."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from reconciler.manifest import ManifestInvalid, load_manifest
from reconciler.state import Attribute
from tests.conftest import ROOT, unprivileged, write_config


def test_demo_config_compiles_with_merge_order() -> None:
    manifest = load_manifest(ROOT / "config")

    rosa = manifest.desired.users["rosa.alvarez@example.com"].proficiencies
    # sets [spanish_billing, retention], then explicit Spanish: 5 overrides the set's 4
    assert rosa == {
        ("Language", "Spanish"): 5,
        ("Language", "English"): 3,
        ("Skill", "Billing"): 3,
        ("Skill", "Retention"): 4,
    }
    assert manifest.desired.attributes["Region"] == Attribute(
        "Region", ("AMER", "EMEA", "LATAM"), purposes=("routing",)
    )
    assert manifest.instance.instance_id == "11111111-2222-3333-4444-555555555555"
    assert len(manifest.desired.users) >= 39


def test_later_set_wins_over_earlier_and_explicit_over_sets(config_dir: Path) -> None:
    write_config(
        config_dir,
        {
            "sets.yaml": "proficiency_sets:\n  spanish_first:\n    Language: {Spanish: 2}\n",
            "users.yaml": (
                "users:\n"
                "  a@example.com:\n"
                "    sets: [bilingual, spanish_first]\n"
                "  b@example.com:\n"
                "    sets: [spanish_first, bilingual]\n"
                "    proficiencies: {Language: {English: 1}}\n"
                "  c@example.com:\n"
            ),
        },
    )
    users = load_manifest(config_dir).desired.users
    assert users["a@example.com"].proficiencies == {
        ("Language", "English"): 4,
        ("Language", "Spanish"): 2,
    }
    assert users["b@example.com"].proficiencies == {
        ("Language", "English"): 1,
        ("Language", "Spanish"): 4,
    }
    assert users["c@example.com"].proficiencies == {}


def test_groups_are_kept_as_selectors(config_dir: Path) -> None:
    write_config(
        config_dir,
        {
            "groups.yaml": "groups:\n  - match: {username: '*@emea.example.com'}\n    sets: [bilingual]\n"
        },
    )
    (group,) = load_manifest(config_dir).groups
    assert group.selector.username == "*@emea.example.com"
    assert group.proficiencies == {("Language", "English"): 4, ("Language", "Spanish"): 4}


def test_sections_merge_across_files_and_lists_concatenate(config_dir: Path) -> None:
    write_config(
        config_dir,
        {
            "a/users.yaml": "users:\n  a@example.com: {}\n",
            "b/users.yml": "users:\n  b@example.com: {}\n",
            "a/routing.yaml": "routing_requirements:\n  - {name: one, expression: 'Language = English >= 1'}\n",
            "b/routing.yaml": "routing_requirements:\n  - {name: two, expression: 'Language = Spanish >= 1'}\n",
            ".hidden/ignored.yaml": "this: is not loaded\n",
        },
    )
    manifest = load_manifest(config_dir)
    assert set(manifest.desired.users) == {"a@example.com", "b@example.com"}
    assert [r.name for r in manifest.requirements] == ["one", "two"]
    assert len(manifest.files) == 6


def test_errors_in_merged_lists_point_into_the_right_file(config_dir: Path) -> None:
    write_config(
        config_dir,
        {
            "a.yaml": "groups:\n  - match: {routing_profile: A}\n    sets: [bilingual]\n",
            "b.yaml": "groups:\n  - match: {routing_profile: B}\n    sets: [missing]\n",
        },
    )
    with pytest.raises(ManifestInvalid) as raised:
        load_manifest(config_dir)
    (error,) = raised.value.errors
    assert (error.file, error.line) == ("config/b.yaml", 3)


def test_external_attributes_may_be_referenced_without_declaring(config_dir: Path) -> None:
    write_config(
        config_dir,
        {
            "settings.yaml": "settings:\n  external_attributes: [Certification]\n",
            "users.yaml": "users:\n  a@example.com:\n    proficiencies: {Certification: {CCNA: 3}}\n",
        },
    )
    users = load_manifest(config_dir).desired.users
    assert users["a@example.com"].proficiencies == {("Certification", "CCNA"): 3}


def test_raised_cap_allows_more_proficiencies(config_dir: Path) -> None:
    values = ", ".join(f"P{i}" for i in range(12))
    levels = ", ".join(f"P{i}: 1" for i in range(12))
    write_config(
        config_dir,
        {
            "more.yaml": f"predefined_attributes:\n  Product:\n    values: [{values}]\n",
            "settings.yaml": "settings:\n  max_proficiencies_per_user: 12\n",
            "users.yaml": f"users:\n  a@example.com:\n    proficiencies: {{Product: {{{levels}}}}}\n",
        },
    )
    assert len(load_manifest(config_dir).desired.users["a@example.com"].proficiencies) == 12


def test_instance_arn_gives_id_and_region(config_dir: Path) -> None:
    arn = "arn:aws:connect:eu-west-2:123456789012:instance/abcd-1234"
    write_config(config_dir, {"instance.yaml": f"instance:\n  arn: {arn}\n"})
    instance = load_manifest(config_dir).instance
    assert (instance.instance_id, instance.region_name) == ("abcd-1234", "eu-west-2")


def test_digest_changes_with_content_and_only_with_content(config_dir: Path) -> None:
    write_config(config_dir, {})
    first = load_manifest(config_dir).digest
    assert load_manifest(config_dir).digest == first
    (config_dir / "attributes.yaml").write_text(
        (config_dir / "attributes.yaml").read_text().replace("Payments", "Retention")
    )
    assert load_manifest(config_dir).digest != first


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda root: None, "config directory not found"),
        (lambda root: (root / "config").mkdir(), "no *.yaml, *.yml or *.csv files found"),
    ],
)
def test_missing_or_empty_config_directory(tmp_path: Path, monkeypatch, setup, message) -> None:
    monkeypatch.chdir(tmp_path)
    setup(tmp_path)
    with pytest.raises(ManifestInvalid, match=message.replace("*", r"\*")):
        load_manifest(Path("config"))


def test_system_attributes_need_no_external_listing(config_dir: Path) -> None:
    # predefined-attributes.html, "System predefined attributes": users may hold
    # connect: attributes; connect:Language takes custom values.
    write_config(
        config_dir,
        {
            "more.yaml": "predefined_attributes:\n  'connect:Language':\n    values: [nl-NL]\n",
            "users.yaml": "users:\n  a@example.com:\n    proficiencies:\n"
            "      'connect:Language': {nl-NL: 3, en-US: 4}\n      'connect:Subtype': {'connect:Chat': 1}\n",
        },
    )
    manifest = load_manifest(config_dir)
    assert manifest.desired.attributes["connect:Language"].values == ("nl-NL",)
    assert manifest.desired.users["a@example.com"].proficiencies == {
        ("connect:Language", "nl-NL"): 3,
        ("connect:Language", "en-US"): 4,
        ("connect:Subtype", "connect:Chat"): 1,
    }


def fs_errors(config_dir: Path) -> list[str]:
    with pytest.raises(ManifestInvalid) as raised:
        load_manifest(config_dir)
    return [str(e) for e in raised.value.errors]


def test_a_dangling_manifest_symlink_is_an_error_not_skipped(config_dir: Path) -> None:
    write_config(config_dir, {})
    (config_dir / "gone.yaml").symlink_to(config_dir / "nowhere.yaml")
    [error] = fs_errors(config_dir)
    assert error.startswith("config/gone.yaml:1:1: dangling symlink")


def test_a_symlink_loop_is_an_error(config_dir: Path) -> None:
    write_config(config_dir, {})
    (config_dir / "a.yaml").symlink_to(config_dir / "b.yaml")
    (config_dir / "b.yaml").symlink_to(config_dir / "a.yaml")
    (config_dir / "teams").mkdir()
    (config_dir / "teams" / "up").symlink_to(config_dir)
    errors = fs_errors(config_dir)
    assert [e.split("\n")[0].split(": ")[0:2] for e in errors] == [
        ["config/a.yaml:1:1", "symlink loop"],
        ["config/b.yaml:1:1", "symlink loop"],
        ["config/teams/up:1:1", "symlink loop"],
    ]


def test_a_symlinked_directory_is_followed(config_dir: Path, tmp_path: Path) -> None:
    write_config(tmp_path / "shared", {}, base=True)
    (config_dir / "shared").symlink_to(tmp_path / "shared")
    assert load_manifest(config_dir).instance.region == "us-east-1"


def test_a_name_that_is_not_utf8_is_an_error_naming_it(config_dir: Path) -> None:
    write_config(config_dir, {})
    (config_dir / os.fsdecode(b"team-\xff.yaml")).write_text("users: {}\n")
    [error] = fs_errors(config_dir)
    assert error.startswith("config/team-\\xff.yaml:1:1: the name is not valid UTF-8")
    error.encode("utf-8")  # printable: no lone surrogates


def test_a_manifest_that_is_not_a_regular_file_is_an_error(config_dir: Path) -> None:
    write_config(config_dir, {})
    os.mkfifo(config_dir / "pipe.yaml")
    [error] = fs_errors(config_dir)
    assert error.startswith("config/pipe.yaml:1:1: not a regular file")


def test_unreadable_files_and_directories_are_errors() -> None:
    # Root reads any file: as root, validate runs as nobody (unprivileged()),
    # in a world-readable directory it can reach.
    top = Path(tempfile.mkdtemp(prefix="unreadable-", dir="/tmp"))
    try:
        os.chmod(top, 0o755)
        config = write_config(
            top / "config", {"teams/a.yaml": "users: {}\n", "locked.yaml": "users: {}\n"}
        )
        (config / "teams").chmod(0)
        (config / "locked.yaml").chmod(0)
        result = subprocess.run(
            [*unprivileged(), sys.executable, "-m", "reconciler", "validate", "--config", "config"],
            cwd=top, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        )  # fmt: skip
    finally:
        (top / "config" / "teams").chmod(0o755)
        shutil.rmtree(top)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [
        line.split(": ")[0:2] for line in result.stderr.splitlines() if line.startswith("config")
    ]
    assert lines == [
        ["config/locked.yaml:1:1", "cannot read the file"],
        ["config/teams:1:1", "cannot read the directory"],
    ]
