"""environments.yaml and layered manifests: overrides, removals, and every
bad input the issue lists, each an error with its file and line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.manifest import ManifestInvalid, gitref
from reconciler.manifest.environments import (
    EnvironmentChoiceError,
    instance_collisions,
    read_environments,
)
from reconciler.manifest.gitref import manifest_at
from reconciler.manifest.loader import load_manifest
from tests.conftest import git, write_config

BASE = {
    "base/attributes.yaml": (
        "predefined_attributes:\n"
        "  Language: {values: [English, Spanish]}\n"
        "  Skill: {values: [Billing, Payments]}\n"
        "proficiency_sets:\n"
        "  billing: {Skill: {Billing: 3}}\n"
        "settings:\n"
        "  max_change_percent: 30\n"
        "  prune_attributes: true\n"
        "routing_requirements:\n"
        "  - {name: spanish, expression: 'Language = Spanish >= 4', min_agents: 2}\n"
        "  - {name: billing, expression: 'Skill = Billing >= 3', min_agents: 1}\n"
    ),
    "base/users.yaml": (
        "users:\n"
        "  jane: {sets: [billing], proficiencies: {Language: {Spanish: 4}}}\n"
        "  joe: {proficiencies: {Language: {English: 5}}}\n"
    ),
}
PROD = "instance: {id: 11111111-2222-3333-4444-555555555555, region: us-east-1}\n"
STAGING = "instance: {id: 22222222-3333-4444-5555-666666666666, region: us-east-1}\n"
ENVIRONMENTS = (
    "environments:\n  prod: {layers: [base, prod]}\n  staging: {layers: [base, staging]}\n"
)


def environments_in(config: Path, files: dict[str, str], environments: str = ENVIRONMENTS):
    write_config(config, {"environments.yaml": environments, **BASE, **files}, base=False)
    return read_environments(config)


def errors_of(call) -> list[str]:
    with pytest.raises(ManifestInvalid) as caught:
        call()
    return [str(e).split("\n")[0] for e in caught.value.errors]  # without the hint


def load_errors(tmp_path: Path, name: str, files: dict[str, str]) -> list[str]:
    """The errors of loading environment `name` from the example with `files`."""
    environments = environments_in(tmp_path, files)
    assert environments is not None
    return errors_of(lambda: environments.load(environments.by_name[name]))


def test_a_later_layer_overrides_key_by_key_and_null_removes(tmp_path: Path) -> None:
    environments = environments_in(tmp_path, {
        "prod/instance.yaml": PROD,
        "staging/instance.yaml": STAGING,
        "staging/overrides.yaml": (
            "predefined_attributes:\n  Skill: {values: [Billing, Payments, Retention]}\n"
            "proficiency_sets:\n  billing: {Skill: {Billing: 5}}\n"
            "settings: {max_change_percent: 80}\n"
            "users:\n  joe: null\n  ann: {proficiencies: {Skill: {Retention: 2}}}\n"
            "routing_requirements:\n"
            "  - {name: spanish, expression: 'Language = Spanish >= 3', min_agents: 1}\n"
            "  - {name: billing, expression: null}\n"
        ),
    })  # fmt: skip
    assert environments is not None
    prod = environments.load(environments.by_name["prod"])
    staging = environments.load(environments.by_name["staging"])
    assert prod.instance.instance_id.startswith("1111") and staging.instance.instance_id.startswith(
        "2222"
    )
    assert prod.desired.attributes["Skill"].values == ("Billing", "Payments")
    assert staging.desired.attributes["Skill"].values == ("Billing", "Payments", "Retention")
    # the set is replaced for everyone who uses it; the user removed is gone
    assert staging.desired.users["jane"].proficiencies[("Skill", "Billing")] == 5
    assert prod.desired.users["jane"].proficiencies[("Skill", "Billing")] == 3
    assert set(staging.desired.users) == {"jane", "ann"} and set(prod.desired.users) == {
        "jane",
        "joe",
    }
    # a setting is overridden alone: the others keep the earlier layer's value
    assert staging.settings.max_change_percent == 80 and staging.settings.prune_attributes
    assert [(r.name, r.min_agents) for r in staging.requirements] == [("spanish", 1)]
    assert [(r.name, r.min_agents) for r in prod.requirements] == [("spanish", 2), ("billing", 1)]
    assert staging.environment is not None and staging.environment.name == "staging"
    assert prod.digest != staging.digest


def test_an_error_in_an_overriding_key_names_both_places(tmp_path: Path) -> None:
    errors = load_errors(tmp_path, "staging", {
        "prod/instance.yaml": PROD,
        "staging/instance.yaml": STAGING + "users:\n  jane: {sets: [bilingual]}\n",
    })  # fmt: skip
    assert errors == [
        f"{tmp_path}/staging/instance.yaml:3:17: proficiency set 'bilingual' is not defined "
        f"(overriding {tmp_path}/base/users.yaml:2:3)"
    ]


def test_null_removing_what_no_earlier_layer_declares_is_an_error(tmp_path: Path) -> None:
    errors = load_errors(tmp_path, "prod", {
        "prod/instance.yaml": PROD + "users:\n  nobody: null\nrouting_requirements:\n"
                                     "  - {name: ghost, expression: null}\n",
        "staging/instance.yaml": STAGING,
    })  # fmt: skip
    assert errors == [
        f"{tmp_path}/prod/instance.yaml:3:3: null removes users.nobody, but no earlier layer "
        "declares it",
        f"{tmp_path}/prod/instance.yaml:5:5: null removes routing requirement 'ghost', but no "
        "earlier layer declares it",
    ]


def test_the_same_key_twice_inside_one_layer_is_still_an_error(tmp_path: Path) -> None:
    errors = load_errors(tmp_path, "prod", {
        "prod/instance.yaml": PROD + "users:\n  jane: {}\n",
        "prod/more.yaml": "users:\n  jane: {}\n",
        "staging/instance.yaml": STAGING,
    })  # fmt: skip
    assert errors == [
        f"{tmp_path}/prod/more.yaml:2:3: users.jane is already defined at "
        f"{tmp_path}/prod/instance.yaml:3:3"
    ]


@pytest.mark.parametrize(
    ("environments", "expected"),
    [
        ("environments:\n  prod: {layers: [base, missing]}\n",
         "environments.yaml:2:25: layer directory 'missing' does not exist"),
        ("environments:\n  prod: {layers: [base, prod, base]}\n",
         "environments.yaml:2:31: layer 'base' is listed twice (as item 1"),
        ("environments:\n  prod: {layers: [base, base/nested]}\n",
         "environments.yaml:2:25: layer 'base/nested' is inside another of its layers"),
        ("environments:\n  prod: {layers: [base, ..]}\n",
         "environments.yaml:2:25: layer '..' must be a directory inside the config directory"),
        ("environments:\n  prod: {layers: [base, loop]}\n",
         "environments.yaml:2:25: layer 'loop' leads back to the config directory: a cycle"),
        ("environments:\n  prod: {layers: [base, prod], aply: false}\n",
         "environments.yaml:2:32: unknown key 'aply'"),
        ("environment:\n  prod: {layers: [base, prod]}\n",
         "environments.yaml:1:1: unknown key 'environment'"),
        ("environments:\n  prod eu: {layers: [base, prod]}\n",
         "environments.yaml:2:3: environment name 'prod eu' is not a plain identifier"),
        ("environments:\n  prod: {layers: [base, prod], apply: 'no'}\n",
         "environments.yaml:2:39: expected true or false"),
        ("environments:\n  prod: {apply: true}\n",
         "environments.yaml:2:9: expected `layers:`, a list of directories"),
    ],
)  # fmt: skip
def test_bad_environments_files_are_errors_with_file_and_line(
    tmp_path: Path, environments: str, expected: str
) -> None:
    (tmp_path / "base" / "nested").mkdir(parents=True)
    if "loop" in environments:
        os.symlink(tmp_path, tmp_path / "loop")
    errors = errors_of(lambda: environments_in(tmp_path, {"prod/i.yaml": PROD}, environments))
    assert any(e.startswith(f"{tmp_path}/{expected}") for e in errors), errors


def test_a_manifest_in_no_layer_is_an_error_not_skipped(tmp_path: Path) -> None:
    errors = errors_of(lambda: environments_in(tmp_path, {
        "prod/instance.yaml": PROD, "staging/instance.yaml": STAGING, "stray.yaml": "users: {}\n",
        "drafts/users.yaml": "users: {}\n",
    }))  # fmt: skip
    assert [e.split(": this file")[0] for e in errors] == [
        f"{tmp_path}/drafts/users.yaml:1:1",
        f"{tmp_path}/stray.yaml:1:1",
    ]


def test_a_directory_with_environments_is_not_loaded_as_one(tmp_path: Path) -> None:
    environments_in(tmp_path, {"prod/instance.yaml": PROD, "staging/instance.yaml": STAGING})
    errors = errors_of(lambda: load_manifest(tmp_path))
    assert errors == [
        f"{tmp_path}/environments.yaml:1:1: this config directory declares environments"
    ]


def test_choosing_environments(tmp_path: Path) -> None:
    environments = environments_in(
        tmp_path, {"prod/instance.yaml": PROD, "staging/instance.yaml": STAGING}
    )
    assert environments is not None
    assert [e.name for e in environments.select((), True, True)] == ["prod", "staging"]
    assert [e.name for e in environments.select(("staging",), False, False)] == ["staging"]
    with pytest.raises(EnvironmentChoiceError, match=r"declares environments \(prod, staging\)"):
        environments.select((), False, True)
    with pytest.raises(EnvironmentChoiceError, match=r"'stagin' \(did you mean staging\?\)"):
        environments.select(("stagin",), False, True)
    with pytest.raises(EnvironmentChoiceError, match="runs against one instance"):
        environments.select((), True, False)


def test_two_environments_applying_to_one_instance_collide(tmp_path: Path) -> None:
    environments = environments_in(
        tmp_path, {"prod/instance.yaml": PROD, "staging/instance.yaml": PROD}
    )
    assert environments is not None
    loaded = [environments.load(e) for e in environments.by_name.values()]
    [error] = instance_collisions(loaded)
    assert (error.file, error.line, error.column) == (f"{tmp_path}/environments.yaml", 3, 3)
    assert "'prod'" in error.message and "'staging'" in error.message
    replica = "environments:\n  prod: {layers: [base, prod]}\n  staging: {layers: [base, staging], apply: false}\n"
    environments = environments_in(tmp_path, {}, replica)
    assert environments is not None
    assert instance_collisions([environments.load(e) for e in environments.by_name.values()]) == []


def committed(repo: Path) -> None:
    """A git repository whose one commit holds prod and staging in config/."""
    git(repo, "init", "-q")
    environments_in(repo / "config", {
        "prod/instance.yaml": PROD, "staging/instance.yaml": STAGING,
    })  # fmt: skip
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")


def test_an_environment_at_a_git_ref_is_its_layers_then(tmp_path: Path) -> None:
    committed(tmp_path)
    (tmp_path / "config" / "staging" / "instance.yaml").write_text(
        STAGING + "users:\n  joe: null\n"
    )
    now = read_environments(tmp_path / "config")
    assert now is not None
    staging_then = manifest_at(tmp_path / "config", "HEAD", "staging")
    prod_then = manifest_at(tmp_path / "config", "HEAD", "prod")
    assert staging_then is not None and prod_then is not None
    assert "joe" in staging_then.desired.users
    assert prod_then.digest == now.load(now.by_name["prod"]).digest  # prod's layers unchanged
    assert staging_then.digest != now.load(now.by_name["staging"]).digest
    assert manifest_at(tmp_path / "config", "HEAD", "qa") is None  # not declared then
    # a directory without environments now, with them then: nothing to compare with
    assert manifest_at(tmp_path / "config", "HEAD") is None
    # another environment's layer missing at the ref is not staging's concern
    (tmp_path / "config" / "environments.yaml").write_text(
        ENVIRONMENTS + "  qa: {layers: [base, qa]}\n"
    )
    (tmp_path / "config" / "qa").mkdir()
    (tmp_path / "config" / "qa" / "instance.yaml").write_text(PROD)
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "qa")
    (tmp_path / "config" / "qa" / "instance.yaml").unlink()
    (tmp_path / "config" / "qa" / "i.yaml").write_text(PROD)
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "qa moved")
    assert manifest_at(tmp_path / "config", "HEAD~1", "staging") is not None


def test_in_layers_an_empty_user_is_null_and_an_empty_mapping_is_a_user(tmp_path: Path) -> None:
    environments = environments_in(tmp_path, {
        "prod/instance.yaml": PROD + "users:\n  joe:\n  ann: {}\n",
        "staging/instance.yaml": STAGING + "users:\n  nobody:\n",
    })  # fmt: skip
    assert environments is not None
    prod = environments.load(environments.by_name["prod"])
    assert set(prod.desired.users) == {"jane", "ann"}  # joe removed, ann managed with none
    assert prod.desired.users["ann"].proficiencies == {}
    with pytest.raises(ManifestInvalid) as caught:
        environments.load(environments.by_name["staging"])
    [error] = caught.value.errors
    assert "null removes users.nobody" in error.message and "`{}`" in error.hint


def test_a_requirement_named_twice_in_one_layer_is_still_an_error(tmp_path: Path) -> None:
    errors = load_errors(tmp_path, "prod", {
        "prod/instance.yaml": PROD,
        "prod/a.yaml": "routing_requirements:\n  - {name: sales, expression: 'Skill = Billing', min_agents: 1}\n",
        "prod/b.yaml": "routing_requirements:\n  - {name: sales, expression: 'Skill = Billing', min_agents: 2}\n",
        "staging/instance.yaml": STAGING,
    })  # fmt: skip
    assert errors == [
        f"{tmp_path}/prod/b.yaml:2:12: routing requirement 'sales' is already defined at "
        f"{tmp_path}/prod/a.yaml:2:6"
    ]


def test_a_later_list_replaces_a_section_of_the_wrong_kind(tmp_path: Path) -> None:
    environments = environments_in(tmp_path, {
        "prod/instance.yaml": PROD + "routing_requirements:\n  - {name: x, expression: 'Skill = Billing'}\n",
        "staging/instance.yaml": STAGING,
        "base/attributes.yaml": BASE["base/attributes.yaml"].split("routing_requirements")[0]
        + "routing_requirements: {not: a list}\n",
    })  # fmt: skip
    assert environments is not None
    prod = environments.load(environments.by_name["prod"])
    assert [r.name for r in prod.requirements] == ["x"]
    # where nothing replaces it, it is the usual positioned error
    errors = errors_of(lambda: environments.load(environments.by_name["staging"]))
    assert errors == [
        f"{tmp_path}/base/attributes.yaml:9:23: expected a list ([a, b] or '- a' lines), "
        "got a mapping"
    ]


def test_what_a_later_null_removed_is_named_where_it_is_still_used(tmp_path: Path) -> None:
    errors = load_errors(tmp_path, "prod", {
        "prod/instance.yaml": PROD + "proficiency_sets:\n  billing: null\n",
        "staging/instance.yaml": STAGING,
    })  # fmt: skip
    assert errors == [
        f"{tmp_path}/base/users.yaml:2:17: proficiency set 'billing' is not defined "
        f"(removed at {tmp_path}/prod/instance.yaml:3:3)"
    ]


def test_the_environments_of_one_run_read_the_commit_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    committed(tmp_path)
    reads: list[tuple[str, ...]] = []
    real = gitref._git

    def counted(repo: Path, *args: str, stdin: bytes | None = None) -> bytes:
        reads.append(args)
        return real(repo, *args, stdin=stdin)

    monkeypatch.setattr(gitref, "_git", counted)
    prod = manifest_at(tmp_path / "config", "HEAD", "prod")
    staging = manifest_at(tmp_path / "config", "HEAD", "staging")
    assert prod is not None and staging is not None and prod.digest != staging.digest
    assert [a[0] for a in reads].count("cat-file") == 1  # the objects, once for both
