"""`import changes`: the AWS bulk attribute updater's change files become
manifest edits that `plan` shows, against an instance served by the emulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import cli
from reconciler.files import write_json_atomically
from tests.conftest import INSTANCE_ARN, INSTANCE_ID

# The sample's own template (aws-samples/sample-Bulk-Attribute-Updater,
# user_attribute_updates_template.csv), rows as published.
TEMPLATE = (
    "identifier,identifier_type,action,attribute,value,level\n"
    "john.doe@example.com,username,add,Language,Spanish,5\n"
    "user123,user_id,remove,Language,French,0\n"
    "jane.smith,username,update,Skill,Sales,3\n"
    "bob.wilson,username,add,Language,English,4\n"
    "sarah.jones,username,update,Skill,Technical,5"
)

# What each of those users holds, so that every row is valid against it.
HELD = {
    ("john.doe@example.com", "id-john"): [("Language", "English", 3)],
    ("pat.lee", "user123"): [("Language", "French", 2), ("Skill", "Sales", 4)],
    ("jane.smith", "id-jane"): [("Skill", "Sales", 1)],
    ("bob.wilson", "id-bob"): [],
    ("sarah.jones", "id-sarah"): [("Skill", "Technical", 2), ("Language", "English", 5)],
}


@pytest.fixture
def instance(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    write_json_atomically(
        tmp_path / "snapshot.json",
        {
            "Instance": {"Id": INSTANCE_ID, "Arn": INSTANCE_ARN, "InstanceStatus": "ACTIVE"},
            "PredefinedAttributes": [
                {"Name": "Language", "Values": {"StringList": ["English", "Spanish", "French"]}},
                {"Name": "Skill", "Values": {"StringList": ["Sales", "Technical"]}},
            ],
            "RoutingProfiles": [{"Id": "rp-basic", "Name": "Basic Routing Profile"}],
            "Users": [
                {
                    "User": {"Id": user_id, "Username": name, "RoutingProfileId": "rp-basic"},
                    "Proficiencies": [
                        {"AttributeName": a, "AttributeValue": v, "Level": level}
                        for a, v, level in held
                    ],
                }
                for (name, user_id), held in HELD.items()
            ],
        },
    )
    (tmp_path / "changes.csv").write_text(TEMPLATE)
    return tmp_path


def run(*args: str):
    return CliRunner().invoke(cli, [*args, "--target", "emulator:snapshot.json"])


def exported(users_format: str) -> None:
    result = run("export", "--out", "config", "--users-format", users_format)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("users_format", ["yaml", "csv"])
def test_the_samples_template_plans_exactly_its_rows(instance: Path, users_format: str) -> None:
    exported(users_format)
    users_file = instance / "config" / f"users.{users_format}"
    result = run("import", "changes", "changes.csv", "--into", "config")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"config/users.{users_format}: 5 changes",
        "  row 2: add john.doe@example.com Language/Spanish 5",
        "  row 3: remove pat.lee Language/French",
        "  row 4: update jane.smith Skill/Sales 3",
        "  row 5: add bob.wilson Language/English 4",
        "  row 6: update sarah.jones Skill/Technical 5",
    ]
    plan = run("plan", "--config", "config", "--format", "json")
    assert plan.exit_code == 0, plan.output
    changes = {
        change["username"]: [
            (kind, e["attribute"], e["value"], e["level"] if kind != "disassociate" else None)
            for kind in ("associate", "update", "disassociate")
            for e in change[kind]
        ]
        for change in json.loads(plan.output)["changes"]
    }
    assert changes == {
        "john.doe@example.com": [("associate", "Language", "Spanish", 5)],
        "pat.lee": [("disassociate", "Language", "French", None)],
        "jane.smith": [("update", "Skill", "Sales", 3)],
        "bob.wilson": [("associate", "Language", "English", 4)],
        "sarah.jones": [("update", "Skill", "Technical", 5)],
    }
    assert users_file.exists()  # a CSV stays a CSV


@pytest.mark.parametrize(
    ("rows", "error"),
    [
        ("john.doe@example.com,username,add,Language,English,4", "2:3: john.doe@example.com holds Language/English already (level 3)"),
        ("jane.smith,username,update,Skill,Technical,4", "2:3: jane.smith does not hold Skill/Technical by their own entries or sets"),
        ("bob.wilson,username,remove,Skill,Sales,0", "2:3: bob.wilson does not hold Skill/Sales by their own entries or sets"),
        ("jane.smith,username,add,Skill,Technical,0", "2:6: level '0' is not a whole number from 1 to 5 (0 is only for remove)"),
        ("jane.smith,username,add,Skill,Technical,6", "2:6: level '6' is not a whole number from 1 to 5"),
        ("jane.smith,username,add,Skill,Technical,3.0", "2:6: level '3.0' is not a whole number from 1 to 5"),
        ("jane.smith,username,add,Skill,Technical,", "2:6: level '(empty)' is not a whole number"),
        ("jane.smith,username,replace,Skill,Technical,3", "2:3: action 'replace' is not add, remove or update"),
        ("jane.smith,email,add,Skill,Technical,3", "2:2: identifier_type 'email' is not username or user_id"),
        ("jane.smyth,username,add,Skill,Technical,3", "2:1: jane.smyth is not declared in the manifests\n    hint: did you mean jane.smith?"),
        ("no-such-id,user_id,add,Skill,Technical,3", "2:1: no user with id 'no-such-id' in the instance"),
        ("jane.smith,username,add,Skill,Cooking,3", "2:5: value 'Cooking' is not declared for attribute 'Skill'"),
        ("jane.smith,username,add,Skil,Technical,3", "2:4: attribute 'Skil' is not declared in the manifests"),
        ("jane.smith,username,add,Skill,Technical", "2:1: row has 5 cells, the header has 6"),
    ],
)  # fmt: skip
def test_an_invalid_row_is_an_error_at_its_cell_and_nothing_is_written(
    instance: Path, rows: str, error: str
) -> None:
    exported("csv")
    before = (instance / "config" / "users.csv").read_bytes()
    header = TEMPLATE.splitlines()[0]
    # a valid row first: it must not be written either
    (instance / "bad.csv").write_text(f"{header}\n{rows}\nbob.wilson,username,add,Skill,Sales,2\n")
    result = run("import", "changes", "bad.csv", "--into", "config")
    assert result.exit_code == 1
    assert f"bad.csv:{error}" in result.output
    assert "1 error; no manifest was changed." in result.output
    assert (instance / "config" / "users.csv").read_bytes() == before


def test_rows_apply_in_order_and_a_set_given_value_can_be_removed(instance: Path) -> None:
    exported("yaml")
    (instance / "config" / "sets.yaml").write_text(
        "proficiency_sets:\n  french_sales: {Language: {French: 2}, Skill: {Sales: 4}}\n"
    )
    users = instance / "config" / "users.yaml"
    users.write_text(
        users.read_text().replace(
            "  pat.lee:\n    proficiencies:\n      Language: {French: 2}\n      Skill: {Sales: 4}\n",
            "  pat.lee:   # the Lisbon desk\n    sets: [french_sales]\n",
        )
    )
    assert run("plan", "--config", "config", "--detailed-exitcode").exit_code == 0
    (instance / "changes.csv").write_text(
        "Action,Identifier,Identifier_Type,Attribute,Value,Level\n"  # any order, any case
        "add,user123,USER_ID,Language,Spanish,3\n"
        "update,pat.lee,username,Language,Spanish,4\n"
        "remove,pat.lee,username,Language,French,\n"
    )
    result = run("import", "changes", "changes.csv", "--into", "config")
    assert result.exit_code == 0, result.output
    assert "# the Lisbon desk" in users.read_text()  # the round trip keeps comments
    plan = json.loads(run("plan", "--config", "config", "--format", "json").output)
    [change] = plan["changes"]
    assert change["username"] == "pat.lee"
    assert [(e["attribute"], e["value"], e["level"]) for e in change["associate"]] == [
        ("Language", "Spanish", 4)
    ]
    assert [(e["attribute"], e["value"]) for e in change["disassociate"]] == [
        ("Language", "French")
    ]


def test_a_bad_header_is_an_error_naming_the_column(instance: Path) -> None:
    exported("yaml")
    (instance / "bad.csv").write_text("identifier,identifier_type,action,attribute,value,lvl\n")
    result = run("import", "changes", "bad.csv", "--into", "config")
    assert result.exit_code == 1
    assert "bad.csv:1:6: column 'lvl' is not a change file column" in result.output
    assert "bad.csv:1:1: missing column 'level'" in result.output


def test_usernames_alone_need_no_connect_read(instance: Path) -> None:
    exported("csv")
    (instance / "changes.csv").write_text(
        TEMPLATE.splitlines()[0] + "\nbob.wilson,username,add,Skill,Sales,2\n"
    )
    offline = CliRunner().invoke(
        cli,
        ["import", "changes", "changes.csv", "--into", "config", "--target", "emulator:gone.json"],
    )
    assert offline.exit_code == 0, offline.output
    assert "bob.wilson,Skill,Sales,2" in (instance / "config" / "users.csv").read_text()


def test_edits_the_manifests_would_refuse_are_errors_and_nothing_is_written(
    instance: Path,
) -> None:
    exported("yaml")
    settings = instance / "config" / "instance.yaml"
    settings.write_text(settings.read_text() + "settings:\n  max_proficiencies_per_user: 2\n")
    before = (instance / "config" / "users.yaml").read_bytes()
    (instance / "changes.csv").write_text(
        TEMPLATE.splitlines()[0] + "\nsarah.jones,username,add,Language,Spanish,2\n"
    )
    result = run("import", "changes", "changes.csv", "--into", "config")
    assert result.exit_code == 1
    assert "config/users.yaml:" in result.output and "sarah.jones" in result.output
    assert "no manifest was changed" in result.output
    assert (instance / "config" / "users.yaml").read_bytes() == before
