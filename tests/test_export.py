"""Export and adopt: live state to manifests (new or updated in place) and
to snapshots, checked by planning against the same live state."""

from __future__ import annotations

import difflib
import json
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.synthetic import INSTANCE_ID as SYNTHETIC_ID
from bench.synthetic import Shape, snapshot_of_state, synthetic_state
from reconciler.adopt.export import manifest_files, read_live
from reconciler.cli import cli
from reconciler.connect.pacer import QuotaPacer
from reconciler.connect.reader import LiveStateReader
from reconciler.emulator import backend_from_snapshot
from reconciler.manifest import load_manifest
from reconciler.plan.planner import make_plan
from tests.conftest import ROOT, demo_config_in_yaml

DEMO = ROOT / "examples" / "demo-snapshot.json"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    shutil.copy(DEMO, tmp_path / "snapshot.json")
    return tmp_path


def run(*args: str, target: str = "emulator:snapshot.json"):
    return CliRunner().invoke(cli, [*args, "--target", target, "--config", "config"])


@pytest.mark.parametrize("extra", [[], ["--infer-sets", "2"]], ids=["plain", "infer-sets"])
def test_demo_export_validates_and_plans_empty(workdir: Path, extra: list[str]) -> None:
    exported = run("export", "--out", "config", *extra)
    assert exported.exit_code == 0, exported.output
    assert CliRunner().invoke(cli, ["validate", "--config", "config"]).exit_code == 0
    plan = run("plan", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.output
    users = (workdir / "config" / "users.yaml").read_text()
    assert users.startswith(
        "# Exported from Amazon Connect instance 11111111-2222-3333-4444-555555555555 (us-east-1)"
    )
    if extra:
        assert "proficiency_sets:" in (workdir / "config" / "sets.yaml").read_text()
        assert "sets: [" in users


@pytest.mark.parametrize("extra", [[], ["--infer-sets", "2"]], ids=["plain", "infer-sets"])
def test_demo_export_to_csv_plans_empty(workdir: Path, extra: list[str]) -> None:
    exported = run("export", "--out", "config", "--users-format", "csv", *extra)
    assert exported.exit_code == 0, exported.output
    assert not (workdir / "config" / "users.yaml").exists()
    rows = (workdir / "config" / "users.csv").read_text().splitlines()
    assert rows[0] == (
        "username,attribute,value,level,sets" if extra else "username,attribute,value,level"
    )
    assert rows[1:] == sorted(rows[1:])  # sorted by user, attribute, value
    plan = run("plan", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.output
    refused = run("export", "--update", "config", "--users-format", "csv")
    assert refused.exit_code == 1 and "--users-format applies to --out DIR only" in refused.output
    update = run("export", "--update", "config")
    assert update.exit_code == 0 and "updated 0 file(s)" in update.output, update.output


# A team's CSV as a spreadsheet saves it (BOM, CRLF, capitalised header, a
# needlessly quoted cell, rows in no particular order), against the demo: david's
# English is 3 live, ghost left, emily lost nothing, liam holds Region/EMEA too.
TEAM_CSV = (
    "\ufeffUsername,Attribute,Value,Level\r\n"
    '"emily.chen@example.com",Skill,Collections,2\r\n'
    "david.kim@example.com,Skill,Billing,4\r\n"
    "david.kim@example.com,Language,English,5\r\n"
    "ghost@example.com,Skill,Billing,1\r\n"
    "david.kim@example.com,Skill,Payments,3\r\n"
    "emily.chen@example.com,Language,English,5\r\n"
    "emily.chen@example.com,Skill,Billing,4\r\n"
    "emily.chen@example.com,Skill,Payments,3\r\n"
    "emily.chen@example.com,Product,Broadband,4\r\n"
    "liam.murphy@example.com,Skill,Technical Support,4\r\n"
    "liam.murphy@example.com,Tier,Tier 2,4\r\n"
)


def team_config(workdir: Path, team: str) -> Path:
    config = workdir / "config"
    config.mkdir()
    (config / "instance.yaml").write_text(HAND_WRITTEN["instance.yaml"])
    (config / "attributes.yaml").write_text(
        HAND_WRITTEN["attributes.yaml"].replace("French, German]", "French, German, Portuguese]")
    )
    (config / "team.csv").write_bytes(team.encode())
    return config


def test_update_edits_a_csv_in_place_and_appends_new_users(workdir: Path) -> None:
    config = team_config(workdir, TEAM_CSV)
    result = run("export", "--update", "config")
    assert result.exit_code == 0 and "updated 1 file(s): config/team.csv" in result.output
    rows = (config / "team.csv").read_bytes().decode("utf-8").split("\r\n")
    before = TEAM_CSV.split("\r\n")
    assert rows[0] == before[0]  # the BOM and the header as written
    # order kept, untouched rows byte for byte, the level changed where it was, ghost gone
    assert rows[1:11] == [
        before[1], before[2], "david.kim@example.com,Language,English,3", *before[5:12],
    ]  # fmt: skip
    assert rows[11] == "liam.murphy@example.com,Region,EMEA,5"  # after liam's last row
    appended = rows[12:-1]
    assert appended == sorted(appended) and appended[0].startswith("ana.gomez@example.com,")
    assert rows[-1] == ""  # CRLF after every row
    assert run("plan", "--detailed-exitcode").exit_code == 0
    assert "updated 0 file(s)" in run("export", "--update", "config").output


def test_update_of_a_wide_csv_adds_columns_for_new_proficiencies(workdir: Path) -> None:
    wide = (
        "username,Language:English,Skill:Billing,Skill:Payments,note\n"
        "david.kim@example.com,5,4,3,desk 4\n"
        "sarah.wilson@example.com,5,,,\n"
    )
    config = team_config(workdir, wide)
    (config / "instance.yaml").write_text(
        HAND_WRITTEN["instance.yaml"] + "  csv_ignore_columns: [note]\n"
    )
    result = run("export", "--update", "config", "--users", "david.kim@example.com",
                 "--users", "sarah.wilson@example.com", "--users", "emily.chen@example.com")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (config / "team.csv").read_text().splitlines() == [
        "username,Language:English,Skill:Billing,Skill:Payments,note,Product:Broadband,Skill:Collections",
        "david.kim@example.com,3,4,3,desk 4,,",
        "sarah.wilson@example.com,5,4,,,,",
        "emily.chen@example.com,5,4,3,,4,2",
    ]  # fmt: skip
    plan = run("plan", "--detailed-exitcode", "--user", "david.kim@example.com",
               "--user", "sarah.wilson@example.com", "--user", "emily.chen@example.com")  # fmt: skip
    assert plan.exit_code == 0, plan.output


def test_update_keeps_users_with_nothing_and_sets_in_a_csv(workdir: Path) -> None:
    sets = (
        "proficiency_sets:\n  desk: {Language: {English: 5}, Skill: {Billing: 4}}\n"
        "  mobile_desk: {Language: {English: 5}, Product: {Mobile: 3}}\n"
    )
    team = (
        "username,attribute,value,level,sets\n"
        "sarah.wilson@example.com,,,,desk\n"
        "david.kim@example.com,Skill,Payments,3,mobile_desk\n"
    )
    config = team_config(workdir, team)
    (config / "sets.yaml").write_text(sets)
    names = ["--users", "david.kim@example.com", "--users", "sarah.wilson@example.com"]
    assert run("export", "--update", "config", *names).exit_code == 0
    # sarah holds what her set gives: untouched; david's set gives Product/Mobile, which
    # he does not hold: the set goes and his own rows say it all
    assert (config / "team.csv").read_text().splitlines() == [
        "username,attribute,value,level,sets",
        "sarah.wilson@example.com,,,,desk",
        "david.kim@example.com,Skill,Payments,3,",
        "david.kim@example.com,Language,English,3,",
        "david.kim@example.com,Skill,Billing,4,",
    ]


def test_a_wide_csv_names_system_attributes_and_refuses_what_it_cannot_name(
    workdir: Path,
) -> None:
    wide = "username,Language:English,Skill:Payments\nnoah.thompson@example.com,4,5\n"
    config = team_config(workdir, wide)
    (config / "instance.yaml").write_text(
        HAND_WRITTEN["instance.yaml"].replace("Legacy Queue]", 'Legacy Queue, "connect:Language"]')
    )
    noah = ["--users", "noah.thompson@example.com"]
    assert run("export", "--update", "config", *noah).exit_code == 0
    assert (config / "team.csv").read_text().splitlines() == [
        "username,Language:English,Skill:Payments,connect:Language:en-US",
        "noah.thompson@example.com,4,5,4",
    ]
    assert run("plan", "--detailed-exitcode", "--user", "noah.thompson@example.com").exit_code == 0
    # an attribute whose own name holds a colon cannot be a wide column: refused, unwritten
    document = json.loads((workdir / "snapshot.json").read_text())
    document["PredefinedAttributes"].append(
        {"Name": "Desk:Floor", "Values": {"StringList": ["Third"]}}
    )
    user = next(
        u for u in document["Users"] if u["User"]["Username"] == "noah.thompson@example.com"
    )
    user["Proficiencies"].append(
        {"AttributeName": "Desk:Floor", "AttributeValue": "Third", "Level": 2}
    )
    (workdir / "snapshot.json").write_text(json.dumps(document))
    (config / "instance.yaml").write_text(
        (config / "instance.yaml")
        .read_text()
        .replace("Legacy Queue,", 'Legacy Queue, "Desk:Floor",')
    )
    before = (config / "team.csv").read_bytes()
    refused = run("export", "--update", "config", *noah)
    assert refused.exit_code == 1, refused.output
    assert "the updated manifests would not load; nothing was written" in refused.output
    assert (config / "team.csv").read_bytes() == before


def test_update_keeps_a_users_sets_when_the_row_naming_them_goes(workdir: Path) -> None:
    team = (
        "username,attribute,value,level,sets\n"
        "sarah.wilson@example.com,Skill,Payments,3,desk\n"
        "sarah.wilson@example.com,Language,English,5,\n"
    )
    config = team_config(workdir, team)
    (config / "sets.yaml").write_text("proficiency_sets:\n  desk: {Skill: {Billing: 4}}\n")
    assert run("export", "--update", "config", "--users", "sarah.wilson@example.com").exit_code == 0
    # live: English 5 and Billing 4 (the set's): the Payments row goes, its sets stay
    assert (config / "team.csv").read_text().splitlines() == [
        "username,attribute,value,level,sets",
        "sarah.wilson@example.com,Language,English,5,desk",
    ]
    assert run("plan", "--detailed-exitcode", "--user", "sarah.wilson@example.com").exit_code == 0


def test_update_edits_a_numeric_username_where_it_is(workdir: Path) -> None:
    document = json.loads((workdir / "snapshot.json").read_text())
    user = next(u for u in document["Users"] if u["User"]["Username"] == "sarah.wilson@example.com")
    user["User"]["Username"] = "12345"
    (workdir / "snapshot.json").write_text(json.dumps(document))
    config = team_config(workdir, "username,attribute,value,level\n")
    (config / "team.csv").unlink()
    (config / "users.yaml").write_text(
        "users:\n  12345:   # badge number\n    proficiencies: {Language: {English: 4}}\n"
    )
    result = run("export", "--update", "config", "--users", "12345")
    assert result.exit_code == 0, result.output
    assert (config / "users.yaml").read_text() == (
        "users:\n  12345:   # badge number\n    proficiencies: {Language: {English: 5}, Skill: {Billing: 4}}\n"
    )


def test_reserved_attributes_are_left_out_but_kept_usable(workdir: Path) -> None:
    assert run("export", "--out", "config").exit_code == 0
    attributes = (workdir / "config" / "attributes.yaml").read_text()
    assert "connect:" not in attributes and "Legacy Queue:" in attributes
    assert (
        'external_attributes: ["connect:Language"]'
        in (workdir / "config" / "instance.yaml").read_text()
    )
    assert '"connect:Language": {en-US: 4}' in (workdir / "config" / "users.yaml").read_text()


def test_export_refuses_to_overwrite(workdir: Path) -> None:
    assert run("export", "--out", "config").exit_code == 0
    again = run("export", "--out", "config")
    assert again.exit_code == 1 and "use --update" in again.output


def test_export_named_users_only(workdir: Path) -> None:
    assert (
        run(
            "export",
            "--out",
            "config",
            "--users",
            "jane.doe@example.com",
            "--users",
            "joao.silva@example.com",
        ).exit_code
        == 0
    )
    assert set(load_manifest(workdir / "config").desired.users) == {
        "jane.doe@example.com",
        "joao.silva@example.com",
    }


def test_export_needs_exactly_one_destination(workdir: Path) -> None:
    result = run("export")
    assert result.exit_code == 1 and "exactly one of" in result.output


def test_snapshot_export_seeds_an_emulator_that_exports_the_same(workdir: Path) -> None:
    assert run("export", "--snapshot", "exported.json").exit_code == 0
    snapshot = json.loads((workdir / "exported.json").read_text())
    assert (
        len(snapshot["Users"]) == 43
        and snapshot["Instance"]["Id"] == "11111111-2222-3333-4444-555555555555"
    )
    assert run("export", "--out", "config").exit_code == 0
    shutil.move(workdir / "config", workdir / "first")
    assert run("export", "--out", "config", target="emulator:exported.json").exit_code == 0
    for name in ("attributes.yaml", "users.yaml", "instance.yaml"):
        first = (workdir / "first" / name).read_text().splitlines()[1:]  # the header has the time
        second = (workdir / "config" / name).read_text().splitlines()[1:]
        assert first == second, name


HAND_WRITTEN = {
    "instance.yaml": (
        "# Managed by the CC platform team.\n"
        "instance:\n"
        "  id: 11111111-2222-3333-4444-555555555555   # production\n"
        "  region: us-east-1\n"
        "settings:\n"
        "  users: declared\n"
        '  external_attributes: ["connect:Language", Legacy Queue]\n'
    ),
    "attributes.yaml": (
        "predefined_attributes:\n"
        "  # Languages we staff.\n"
        "  Language:\n"
        "    values: [English, Spanish, French, German]   # no Portuguese yet\n"
        "  Skill:\n"
        "    values: [Billing, Technical Support, Payments, Retention, Onboarding, Collections]\n"
        "  Product: {values: [Mobile, Broadband, TV]}\n"
        "  Region:\n"
        "    values: [AMER, EMEA, LATAM]\n"
        "    purposes: [routing]\n"
        "  Tier:\n"
        "    values: [Tier 1, Tier 2, Tier 3]\n"
    ),
    "users.yaml": (
        "users:\n"
        "  # Austin billing desk\n"
        "  david.kim@example.com:\n"
        "    proficiencies:\n"
        "      Language: {English: 5}   # console says 3: fix live or here\n"
        "      Skill: {Billing: 4, Payments: 3}\n"
        "  emily.chen@example.com:\n"
        "    proficiencies:\n"
        "      Language: {English: 5}\n"
        "      Skill: {Billing: 4, Payments: 3, Collections: 2}\n"
        "      Product: {Broadband: 4}\n"
        "\n"
        "  # Dublin support (ask Liam before changing)\n"
        "  liam.murphy@example.com:\n"
        "    proficiencies:\n"
        "      Skill: {Technical Support: 4}\n"
        "      Tier: {Tier 2: 4}\n"
        "      Region: {EMEA: 5}\n"
        "  ghost@example.com:   # left the company\n"
    ),
}


def test_update_changes_only_what_differs_and_keeps_comments(workdir: Path) -> None:
    config = workdir / "config"
    config.mkdir()
    for name, text in HAND_WRITTEN.items():
        (config / name).write_text(text)
    result = run("export", "--update", "config", "--users", "david.kim@example.com", "--users", "emily.chen@example.com",
                 "--users", "liam.murphy@example.com", "--users", "ghost@example.com")  # fmt: skip
    assert result.exit_code == 0, result.output
    changes = {
        name: [
            line
            for line in difflib.ndiff(
                HAND_WRITTEN[name].splitlines(), (config / name).read_text().splitlines()
            )
            if line[:1] in "+-"
        ]
        for name in HAND_WRITTEN
    }
    assert changes["instance.yaml"] == []
    # live has Portuguese; Legacy Queue is live too but listed as external
    assert changes["attributes.yaml"] == [
        "-     values: [English, Spanish, French, German]   # no Portuguese yet",
        # the comment survives; ruamel re-spaces it on the line that grew
        "+     values: [English, Spanish, French, German, Portuguese] # no Portuguese yet",
    ]
    assert changes["users.yaml"] == [
        "-       Language: {English: 5}   # console says 3: fix live or here",
        "+       Language: {English: 3}   # console says 3: fix live or here",
        "-   ghost@example.com:   # left the company",
    ]
    assert run("plan", "--detailed-exitcode", "--user", "david.kim@example.com", "--user", "emily.chen@example.com",
               "--user", "liam.murphy@example.com").exit_code == 0  # fmt: skip


def test_update_removing_an_entry_keeps_the_comments_of_the_entries_after_it(
    workdir: Path,
) -> None:
    config = workdir / "config"
    config.mkdir()
    users = HAND_WRITTEN["users.yaml"].replace("  ghost@example.com:   # left the company\n", "")
    users = users.replace(
        "\n  # Dublin support",
        "  # ghost: temp contract\n  ghost@example.com:\n    proficiencies:\n"
        "      Skill: {Billing: 1}   # until March\n\n  # Dublin support",
    )
    for name, text in {**HAND_WRITTEN, "users.yaml": users}.items():
        (config / name).write_text(text)
    assert run("export", "--update", "config", "--users", "ghost@example.com").exit_code == 0
    removed = [
        line
        for line in difflib.ndiff(
            users.splitlines(), (config / "users.yaml").read_text().splitlines()
        )
        if line[:1] in "+-"
    ]
    # ghost goes with its own comment; Liam's comment, kept in ghost's entry by ruamel, stays
    assert removed == [
        "-   # ghost: temp contract",
        "-   ghost@example.com:",
        "-     proficiencies:",
        "-       Skill: {Billing: 1}   # until March",
    ]


@pytest.mark.parametrize("prune", [False, True])
def test_update_never_starts_managing_an_attribute_left_alone(workdir: Path, prune: bool) -> None:
    config = workdir / "config"
    config.mkdir()
    instance = HAND_WRITTEN["instance.yaml"].replace(", Legacy Queue]", "]")
    instance += f"  prune_attributes: {str(prune).lower()}\n"
    for name, text in {**HAND_WRITTEN, "instance.yaml": instance}.items():
        (config / name).write_text(text)
    assert run("export", "--update", "config", "--users", "david.kim@example.com").exit_code == 0
    manifest = load_manifest(config)
    # not declared when left alone; declared when the manifests prune (else it would be deleted)
    assert ("Legacy Queue" in manifest.desired.attributes) is prune
    assert "Legacy Queue" not in manifest.settings.external_attributes  # david holds none of it
    assert run("export", "--update", "config", "--users", "maria.lopez@example.com").exit_code == 0
    maria = load_manifest(config)
    assert (
        maria.desired.users["maria.lopez@example.com"].proficiencies[("Legacy Queue", "Gold")] == 3
    )
    # maria holds Legacy Queue/Gold: left alone, it must be external to be written for her
    assert ("Legacy Queue" in maria.settings.external_attributes) is not prune


def test_update_twice_changes_nothing_the_second_time(workdir: Path) -> None:
    demo_config_in_yaml(workdir / "config")
    assert run("export", "--update", "config").exit_code == 0
    second = run("export", "--update", "config")
    assert "updated 0 file(s)" in second.output
    # the demo group gives mateo what he does not hold live: reported, not hidden
    assert (
        "warning: mateo.rios@example.com: groups give Language/English, Skill/Billing"
        in second.output
    )


def test_update_appends_new_kinds_to_the_file_holding_them(workdir: Path) -> None:
    config = workdir / "config"
    config.mkdir()
    (config / "instance.yaml").write_text(HAND_WRITTEN["instance.yaml"])
    (config / "attributes.yaml").write_text(HAND_WRITTEN["attributes.yaml"])
    (config / "people.yaml").write_text(
        "users:\n  david.kim@example.com:\n    proficiencies: {Language: {English: 3}, Skill: {Billing: 4, Payments: 3}}\n"
    )
    assert run("export", "--update", "config").exit_code == 0
    people = load_manifest(config)
    assert (
        "tom.baker@example.com" in people.desired.users
    )  # appended to people.yaml, the users file
    assert (config / "people.yaml").read_text().startswith("users:\n  david.kim@example.com:")
    assert "Certification" not in (config / "attributes.yaml").read_text()  # not live in the demo


def test_generated_instance_round_trips(connect) -> None:
    emulator, client = connect
    # few distinct bundles, so sets can be inferred
    state = synthetic_state(Shape(users=600, attributes=3, values=3, proficiencies=2, seed=3))
    emulator.reset(backend_from_snapshot(snapshot_of_state(state)))
    reader = LiveStateReader(QuotaPacer(client, time_scale=1000), SYNTHETIC_ID)
    live = read_live(reader, None, [])
    for min_users in (None, 4):
        directory = Path(emulator.backend.instance["Id"] + f"-{min_users}")
        files = manifest_files(live.state, SYNTHETIC_ID, "us-east-1", time.time(), min_users)
        files.write(directory)
        try:
            manifest = load_manifest(directory)
            plan = make_plan(manifest, reader)
            assert plan.changes == [] and plan.errors == [] and plan.unchanged_users == 600
            if min_users:
                assert "sets.yaml" in files.files
        finally:
            shutil.rmtree(directory)


def test_unknown_users_are_an_error_with_the_closest_names(workdir: Path) -> None:
    result = run("export", "--out", "config", "--users", "david.kin@example.com")
    assert result.exit_code == 1
    assert (
        "no user named 'david.kin@example.com' (did you mean david.kim@example.com" in result.output
    )
    assert not (workdir / "config").exists()


@pytest.mark.parametrize(
    ("threshold", "said"),
    [("2", "--infer-sets 2: "), ("1000", "--infer-sets 1000: no set inferred: at most ")],
)
def test_infer_sets_says_what_it_found(workdir: Path, threshold: str, said: str) -> None:
    result = run("export", "--out", "config", "--infer-sets", threshold)
    assert result.exit_code == 0
    assert said in result.stderr
    if threshold == "2":
        count = int(result.stderr.split("--infer-sets 2: ")[1].split()[0])
        sets = (workdir / "config" / "sets.yaml").read_text()
        assert count == sum(
            1 for line in sets.splitlines() if line.startswith("  ") and not line.startswith("    ")
        )
