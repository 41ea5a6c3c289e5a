"""The bad-input corpus: every malformed manifest set fails with its location.

Each case adds or replaces files over a small valid base (tests/conftest.py)
and names the file, line and a fragment of the message it must produce. The
cases run through the real CLI, which must exit 1 without a traceback.
"""

from __future__ import annotations

import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import cli
from reconciler.manifest import ManifestInvalid, load_manifest
from tests.conftest import write_config

USERS = "users.yaml"


@dataclass
class Case:
    name: str
    files: dict[str, str | bytes]
    file: str
    line: int
    fragment: str
    column: int | None = None
    drop: list[str] = field(default_factory=list)  # base files to leave out


def user(body: str) -> dict[str, str]:
    """A users.yaml with one user whose body is `body` (indented under it)."""
    indented = "".join(f"    {line}\n" for line in body.splitlines())
    return {USERS: f"users:\n  jane@example.com:\n{indented}"}


def levels(level: str) -> dict[str, str]:
    return user(f"proficiencies:\n  Language: {{Spanish: {level}}}")


CASES = [
    Case(
        "yaml syntax error",
        {USERS: "users:\n  jane: {sets: [bilingual}\n"},
        USERS,
        2,
        "invalid YAML",
    ),
    Case("tab indentation", {USERS: "users:\n\tjane: {}\n"}, USERS, 2, "tab", column=1),
    Case(
        "top level is a list", {USERS: "- jane\n- joe\n"}, USERS, 1, "top level must be a mapping"
    ),
    Case("top level is text", {USERS: "just some text\n"}, USERS, 1, "top level must be a mapping"),
    Case("empty file", {USERS: ""}, USERS, 1, "no YAML document"),
    Case("comments only", {USERS: "# users move to teams/\n"}, USERS, 1, "no YAML document"),
    Case(
        "non-UTF-8 bytes",
        {USERS: b"users:\n  jos\xe9@example.com: {}\n"},
        USERS,
        2,
        "not valid UTF-8",
        column=6,
    ),
    Case(
        "binary garbage",
        {USERS: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff"},
        USERS,
        1,
        "not valid UTF-8",
    ),
    Case("NUL byte in text", {USERS: "users:\n  ja\x00ne: {}\n"}, USERS, 2, "NUL byte", column=5),
    Case("level 0", levels("0"), USERS, 4, "must be a whole number from 1 to 5, got 0", column=27),
    Case("level 6", levels("6"), USERS, 4, "got 6"),
    Case("level 3.5", levels("3.5"), USERS, 4, "got 3.5"),
    Case("level as word", levels("high"), USERS, 4, "got 'high'"),
    Case("level as boolean", levels("true"), USERS, 4, "got True"),
    Case(
        "unknown key typo",
        user("profciencies:\n  Language: {Spanish: 3}"),
        USERS,
        3,
        "unknown key 'profciencies'",
        column=5,
    ),
    Case("unknown section", {USERS: "user:\n  jane: {}\n"}, USERS, 1, "unknown key 'user'"),
    Case(
        "value not declared",
        user("proficiencies:\n  Language: {Klingon: 3}"),
        USERS,
        4,
        "value 'Klingon' is not declared for attribute 'Language'",
    ),
    Case(
        "attribute not declared",
        user("proficiencies:\n  Skil: {Billing: 3}"),
        USERS,
        4,
        "attribute 'Skil' is not declared",
    ),
    Case(
        "set not defined",
        user("sets: [bilingal]"),
        USERS,
        3,
        "proficiency set 'bilingal' is not defined",
    ),
    Case(
        "same attribute in two files",
        {"more.yaml": "predefined_attributes:\n  Skill:\n    values: [Retention]\n"},
        "more.yaml",
        2,
        "predefined_attributes.Skill is already defined at config/attributes.yaml:4:3",
    ),
    Case(
        "same user in two files",
        {**user("sets: [bilingual]"), "more.yaml": "users:\n  jane@example.com: {}\n"},
        USERS,
        2,
        "users.jane@example.com is already defined at config/more.yaml:2:3",
    ),
    Case(
        "names differing only in case",
        {"more.yaml": "predefined_attributes:\n  language:\n    values: [Dutch]\n"},
        "more.yaml",
        2,
        "differs only in case from 'Language' at config/attributes.yaml:2:3",
    ),
    Case(
        "reserved connect: name",
        {"more.yaml": "predefined_attributes:\n  'connect:Subtype':\n    values: [x]\n"},
        "more.yaml",
        2,
        "reserved by Amazon Connect",
    ),
    Case(
        "connect:Language with settings",
        {
            "more.yaml": "predefined_attributes:\n  'connect:Language':\n    values: [nl-NL]\n    purposes: [x]\n"
        },
        "more.yaml",
        2,
        "only its custom values can be declared",
    ),
    Case(
        "connect:Language misspelled",
        {"more.yaml": "predefined_attributes:\n  'connect:language':\n    values: [nl-NL]\n"},
        "more.yaml",
        2,
        "is spelled 'connect:Language'",
    ),
    Case(
        "a connect: custom value",
        {"more.yaml": "predefined_attributes:\n  'connect:Language':\n    values: ['connect:x']\n"},
        "more.yaml",
        3,
        "reserved by Amazon Connect",
    ),
    Case(
        "reserved aws: name",
        {"more.yaml": "predefined_attributes:\n  AWS:Region:\n    values: [x]\n"},
        "more.yaml",
        2,
        "reserved by Amazon Connect",
    ),
    Case(
        "501 values",
        {
            "more.yaml": "predefined_attributes:\n  Queue:\n    values: [{}]\n".format(
                ", ".join(f"Q{i}" for i in range(501))
            )
        },
        "more.yaml",
        3,
        "at most 500 items",
    ),
    Case(
        "101-character value",
        {
            "more.yaml": f"predefined_attributes:\n  Queue:\n    values:\n      - ok\n      - {'x' * 101}\n"
        },
        "more.yaml",
        5,
        "must be 1 to 100 characters long (it has 101)",
    ),
    Case(
        "11 proficiencies after merge",
        {
            "more.yaml": "predefined_attributes:\n  Product:\n    values: [{}]\n".format(
                ", ".join(f"P{i}" for i in range(10))
            ),
            **user(
                "sets: [bilingual]\nproficiencies:\n  Product: {P0: 1, P1: 1, P2: 1, P3: 1, P4: 1, P5: 1, P6: 1, P7: 1, P8: 1}"
            ),
        },
        USERS,
        2,
        "would hold 11 proficiencies; the limit is 10",
    ),
    Case(
        "duplicate YAML keys",
        {USERS: "users:\n  jane@example.com: {}\n  joe@example.com: {}\n  jane@example.com: {}\n"},
        USERS,
        4,
        "duplicate key 'jane@example.com' (first defined on line 2)",
    ),
    Case(
        "custom YAML tag",
        {USERS: "users: !!python/object:os.system {}\n"},
        USERS,
        1,
        "is not allowed",
        column=8,
    ),
    Case(
        "local YAML tag",
        {USERS: "users:\n  jane@example.com: !include jane.yaml\n"},
        USERS,
        2,
        "'!include' is not allowed",
    ),
    Case(
        "binary YAML tag",
        {USERS: "users:\n  jane@example.com: !!binary aGVsbG8=\n"},
        USERS,
        2,
        "is not allowed",
    ),
    Case(
        "two documents in one file",
        {USERS: "users: {}\n---\nusers: {}\n"},
        USERS,
        2,
        "holds one YAML document",
    ),
    Case(
        "missing instance",
        {},
        "attributes.yaml",
        1,
        "missing required key 'instance'",
        drop=["instance.yaml"],
    ),
    Case(
        "instance with id and arn",
        {
            "instance.yaml": "instance:\n  id: abc\n  arn: arn:aws:connect:us-east-1:123456789012:instance/abc\n"
        },
        "instance.yaml",
        2,
        "exactly one of `id` or `arn`",
    ),
    Case(
        "bad region",
        {"instance.yaml": "instance:\n  id: abc\n  region: US East\n"},
        "instance.yaml",
        3,
        "should match pattern",
    ),
    Case(
        "bad users policy",
        {"settings.yaml": "settings:\n  users: some\n"},
        "settings.yaml",
        2,
        "'declared' or 'all'",
    ),
    Case(
        "quota for unknown API",
        {"settings.yaml": "settings:\n  quotas:\n    ListUser: {rate: 5, burst: 10}\n"},
        "settings.yaml",
        3,
        "unknown API operation 'ListUser'; did you mean ListUsers?",
    ),
    Case(
        "max_change_percent over 100",
        {"settings.yaml": "settings:\n  max_change_percent: 150\n"},
        "settings.yaml",
        2,
        "less than or equal to 100",
    ),
    Case(
        "value listed twice",
        {"more.yaml": "predefined_attributes:\n  Tier:\n    values:\n      - Gold\n      - Gold\n"},
        "more.yaml",
        5,
        "value 'Gold' is listed twice",
    ),
    Case(
        "forbidden character in value",
        {"more.yaml": "predefined_attributes:\n  Tier:\n    values: ['Gold#1']\n"},
        "more.yaml",
        3,
        "character '#' is not allowed",
    ),
    Case(
        "eleven purposes",
        {
            "more.yaml": "predefined_attributes:\n  Tier:\n    values: [Gold]\n    purposes: [{}]\n".format(
                ", ".join(f"p{i}" for i in range(11))
            )
        },
        "more.yaml",
        4,
        "at most 10 items",
    ),
    Case(
        "group set not defined",
        {"groups.yaml": "groups:\n  - match: {routing_profile: Sales}\n    sets: [sales]\n"},
        "groups.yaml",
        3,
        "proficiency set 'sales' is not defined",
    ),
    Case(
        "group selects nothing",
        {"groups.yaml": "groups:\n  - match: {}\n    sets: [bilingual]\n"},
        "groups.yaml",
        2,
        "at least one of routing_profile",
    ),
    Case(
        "duplicate requirement names",
        {
            "routing.yaml": "routing_requirements:\n  - name: es\n    expression: 'Language = Spanish >= 3'\n  - name: es\n    expression: 'Language = Spanish >= 4'\n"
        },
        "routing.yaml",
        4,
        "routing requirement 'es' is already defined at config/routing.yaml:2:5",
    ),
    Case(
        "attribute both declared and external",
        {"settings.yaml": "settings:\n  external_attributes: [Language]\n"},
        "settings.yaml",
        2,
        "both declared and external",
    ),
    Case(
        "list as mapping key",
        {USERS: "users:\n  [jane, joe]: {}\n"},
        USERS,
        2,
        "mapping key must be a plain name",
    ),
    Case(
        "user body is a list",
        user("- bilingual"),
        USERS,
        3,
        "expected a mapping (key: value), got a list",
    ),
    Case(
        "username longer than the service takes",
        {USERS: "users:\n  " + "u" * 101 + ": {}\n"},
        USERS,
        2,
        "at most 100 characters, the service's limit",
        column=3,
    ),
    Case(
        "a tag that only restates the type",
        levels("!!int 3"),
        USERS,
        4,
        "YAML tag '!!int' is not allowed",
    ),
    Case(
        "a quota rate no plan could run at",
        {"settings.yaml": "settings:\n  quotas:\n    ListUsers: {rate: 1.0e-300, burst: 1}\n"},
        "settings.yaml",
        3,
        "greater than or equal to 0.01",
    ),
    Case(
        "an upper-case extension is refused, never skipped",
        {"TEAM.YAML": "users:\n  joe@example.com: {}\n"},
        "TEAM.YAML",
        1,
        "not read: manifest names end in .yaml, .yml or .csv",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_manifest_is_reported_with_its_position(case: Case, config_dir: Path) -> None:
    write_config(config_dir, case.files)
    for name in case.drop:
        (config_dir / name).unlink()

    result = CliRunner().invoke(cli, ["validate", "--config", "config"])

    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    location = f"config/{case.file}:{case.line}:"
    if case.column is not None:
        location += f"{case.column}:"
    assert any(
        block.startswith(location) and case.fragment in block
        for block in error_blocks(result.output)
    ), result.output


def error_blocks(output: str) -> list[str]:
    """Each reported error with its hint lines."""
    blocks: list[str] = []
    for line in output.splitlines():
        if line.startswith("    ") and blocks:
            blocks[-1] += "\n" + line
        else:
            blocks.append(line)
    return blocks


def test_corpus_has_at_least_thirty_distinct_cases() -> None:
    assert len({c.name for c in CASES}) == len(CASES) >= 30


def test_every_error_is_reported_in_one_run(config_dir: Path) -> None:
    write_config(
        config_dir,
        {
            USERS: (
                "users:\n"
                "  jane@example.com:\n"
                "    proficiencies: {Language: {Spanish: 9}}\n"
                "  joe@example.com:\n"
                "    sets: [nope]\n"
                "  ann@example.com:\n"
                "    proficiencies: {Skill: {Cooking: 2}}\n"
            )
        },
    )
    with pytest.raises(ManifestInvalid) as raised:
        load_manifest(config_dir)
    assert [(e.file, e.line) for e in raised.value.errors] == [
        ("config/users.yaml", 3),
        ("config/users.yaml", 5),
        ("config/users.yaml", 7),
    ]


def test_alias_bomb_fails_fast_with_bounded_memory(config_dir: Path) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    write_config(config_dir, {"bomb.yaml": "\n".join(lines) + "\n"})

    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(ManifestInvalid) as raised:
        load_manifest(config_dir)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert "aliases expand to more than" in str(raised.value)
    assert raised.value.errors[0].file == "config/bomb.yaml"
    assert elapsed < 5, f"took {elapsed:.1f}s"
    assert peak < 100 * 1024 * 1024, f"peak {peak / 1e6:.0f} MB"


def test_a_few_aliases_are_fine(config_dir: Path) -> None:
    write_config(
        config_dir,
        {
            USERS: (
                "users:\n"
                "  jane@example.com: &bilingual_agent\n"
                "    sets: [bilingual]\n"
                "  joe@example.com: *bilingual_agent\n"
            )
        },
    )
    manifest = load_manifest(config_dir)
    assert manifest.desired.users["joe@example.com"].proficiencies == {
        ("Language", "English"): 4,
        ("Language", "Spanish"): 4,
    }
