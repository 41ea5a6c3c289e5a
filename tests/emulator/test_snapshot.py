"""Snapshots: the API's own shapes in, the same out, written atomically."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from reconciler.emulator import (
    SnapshotError,
    backend_from_snapshot,
    load_snapshot,
    save_snapshot,
    snapshot_of,
)
from tests.conftest import ROOT, small_snapshot


def test_round_trip_keeps_every_record(tmp_path: Path) -> None:
    original = load_snapshot(ROOT / "examples" / "demo-snapshot.json")
    path = tmp_path / "copy.json"
    save_snapshot(original, path)
    again = load_snapshot(path)
    assert snapshot_of(again) == snapshot_of(original)
    written = json.loads(path.read_text())
    source = json.loads((ROOT / "examples" / "demo-snapshot.json").read_text())
    assert written["Users"] == source["Users"]
    assert written["PredefinedAttributes"] == source["PredefinedAttributes"]


def test_hand_written_minimal_snapshot_loads(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({
        "Instance": {"Id": "i-1"},
        "PredefinedAttributes": [{"Name": "Language", "Values": {"StringList": ["English"]}, "LastModifiedTime": 1700000000}],
        "Users": [{"User": {"Username": "jane"}, "Proficiencies": [{"AttributeName": "Language", "AttributeValue": "English", "Level": 3}]}],
    }))  # fmt: skip
    backend = load_snapshot(path)
    (user,) = backend.users.values()
    assert user["User"]["Id"] and user["User"]["Arn"].startswith("arn:aws:connect:")
    assert backend.attributes["language"]["LastModifiedTime"] == 1700000000.0


def test_members_from_newer_api_versions_are_kept(tmp_path: Path) -> None:
    snapshot = small_snapshot()
    snapshot["Users"][0]["User"]["SomeFutureMember"] = {"x": 1}
    assert snapshot_of(backend_from_snapshot(snapshot))["Users"][0]["User"]["SomeFutureMember"] == {
        "x": 1
    }


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda s: s.pop("Instance"), "at least an `Instance`"),
        (
            lambda s: s["Users"][0]["Proficiencies"][0].pop("Level"),
            "Users[0].Proficiencies[0].Level: required",
        ),
        (lambda s: s["Users"][0]["User"].pop("Username"), "Users[0].User.Username: required"),
        (
            lambda s: s["PredefinedAttributes"][0].update(LastModifiedTime="yesterday"),
            "PredefinedAttributes[0]",
        ),
        (lambda s: s["Users"][1]["Proficiencies"][0].update(Level="5"), "expected a number"),
    ],
)
def test_invalid_snapshots_are_refused_with_the_place(tmp_path: Path, mutate, fragment) -> None:
    snapshot = small_snapshot()
    mutate(snapshot)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(snapshot))
    with pytest.raises(SnapshotError, match=re.escape(fragment)):
        load_snapshot(path)


def test_not_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{")
    with pytest.raises(SnapshotError, match=r"bad\.json"):
        load_snapshot(path)


def test_atomic_write_leaves_no_temporary_files_and_keeps_mode(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text("{}")
    path.chmod(0o640)
    save_snapshot(backend_from_snapshot(small_snapshot()), path)
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]
    assert path.stat().st_mode & 0o777 == 0o640
    assert json.loads(path.read_text())["Instance"]["Id"]


def _users(s: dict) -> list:
    return s["Users"]


# Each defect of docs/design.md §4 / issue #10, with the message a user sees.
DEFECTS = [
    ("null list", lambda s: s.update(Users=None), "Users: expected a list, got null"),
    ("attributes not a list", lambda s: s.update(PredefinedAttributes={}), "PredefinedAttributes: expected a list, got an object"),
    ("user is a string", lambda s: _users(s).append("jane"), 'Users[3]: expected an object {"User": …, "Proficiencies": […]}, got a string'),
    ("user without User", lambda s: _users(s).append({}), "Users[3].User: expected an object, got null"),
    ("proficiencies null", lambda s: _users(s)[0].update(Proficiencies=None), "Users[0].Proficiencies: expected a list, got null"),
    ("profile without Id", lambda s: s["RoutingProfiles"].append({"Name": "x"}), "RoutingProfiles[2].Id: required"),
    ("profile without Name", lambda s: s["RoutingProfiles"].append({"Id": "rp-x"}), "RoutingProfiles[2].Name: required"),
    ("group without Name", lambda s: s["UserHierarchyGroups"].append({"Id": "hg-x"}), "UserHierarchyGroups[2].Name: required"),
    ("attribute without Name", lambda s: s["PredefinedAttributes"].append({"Values": {"StringList": []}}), "PredefinedAttributes[3].Name: required"),
    ("contact without Id", lambda s: s.update(Contacts=[{"Channel": "VOICE"}]), "Contacts[0].Id: required"),
    ("step without Expression", lambda s: s.update(Contacts=[{"Id": "c1", "RoutingCriteria": {"Steps": [{"Status": "ACTIVE"}]}}]), "Contacts[0].RoutingCriteria.Steps[0].Expression: required"),
    ("condition without Name", lambda s: s.update(Contacts=[{"Id": "c1", "RoutingCriteria": {"Steps": [{"Expression": {"AndExpression": [{"AttributeCondition": {"Value": "x"}}]}}]}}]), "Contacts[0].RoutingCriteria.Steps[0].Expression.AndExpression[0].AttributeCondition.Name: required"),
    ("instance without Id", lambda s: s["Instance"].pop("Id"), "Instance.Id: required"),
    ("non-ARN instance Arn", lambda s: s["Instance"].update(Arn="instance-1"), "Instance.Arn: 'instance-1' is not an ARN"),
    ("non-ARN user Arn", lambda s: _users(s)[0]["User"].update(Arn="x"), "Users[0].User.Arn: 'x' is not an ARN"),
    ("non-ARN profile Arn", lambda s: s["RoutingProfiles"][0].update(Arn="rp"), "RoutingProfiles[0].Arn: 'rp' is not an ARN"),
    ("huge timestamp", lambda s: s["Instance"].update(CreatedTime=10**400), "Instance.CreatedTime: timestamp 1000"),
    ("far-future timestamp", lambda s: s["Instance"].update(CreatedTime=1e300), "Instance.CreatedTime: timestamp 1e+300 is out of range"),
    ("not a timestamp", lambda s: _users(s)[0]["User"].update(LastModifiedTime="soon"), "Users[0].User.LastModifiedTime: not a timestamp: 'soon'"),
    ("NaN level", lambda s: _users(s)[0]["Proficiencies"][0].update(Level=float("nan")), "Users[0].Proficiencies[0].Level: expected a finite number"),
    ("huge level", lambda s: _users(s)[0]["Proficiencies"][0].update(Level=10**400), "Users[0].Proficiencies[0].Level: must be at most 5"),
    ("fractional level", lambda s: _users(s)[0]["Proficiencies"][0].update(Level=2.5), "Users[0].Proficiencies[0].Level: the valid values are 1, 2, 3, 4 and 5"),
    ("unknown attribute", lambda s: _users(s)[0]["Proficiencies"].append({"AttributeName": "Tone", "AttributeValue": "x", "Level": 1}), "Users[0].Proficiencies[2].AttributeName: no predefined attribute 'Tone'"),
    ("unknown value", lambda s: _users(s)[0]["Proficiencies"].append({"AttributeName": "Skill", "AttributeValue": "Sales", "Level": 1}), "Users[0].Proficiencies[2].AttributeValue: 'Sales' is not a value of Skill"),
    ("proficiency twice", lambda s: _users(s)[1]["Proficiencies"].append({"AttributeName": "language", "AttributeValue": "English", "Level": 1}), "Users[1].Proficiencies[1]: proficiency 'Language/English' is also at Users[1].Proficiencies[0]"),
    ("over the cap", lambda s: s.update(Quotas={"ProficienciesPerUser": 1}), "Users[0].Proficiencies: 2 proficiencies, more than the cap of 1 (Quotas.ProficienciesPerUser)"),
    ("over the attribute quota", lambda s: s.update(Quotas={"PredefinedAttributesPerInstance": 2}), "PredefinedAttributes: 3 attributes, more than the instance's quota of 2"),
    ("unknown quota", lambda s: s.update(Quotas={"Users": 5}), "Quotas.Users: unknown quota"),
    ("quota not a number", lambda s: s.update(Quotas={"ProficienciesPerUser": "12"}), "Quotas.ProficienciesPerUser: expected a whole number from 1 to 1000000"),
    ("quotas null", lambda s: s.update(Quotas=None), "Quotas: expected an object, got null"),
    ("two users one Id", lambda s: _users(s)[1]["User"].update(Id="id-jane"), "Users[1]: user Id 'id-jane' is also at Users[0]"),
    ("two users one username", lambda s: _users(s)[1]["User"].update(Username="jane"), "Users[1]: username 'jane' is also at Users[0]"),
    ("names equal but for case", lambda s: s["PredefinedAttributes"].append({"Name": "SKILL", "Values": {"StringList": []}}), "PredefinedAttributes[3].Name: attribute name (ignoring case) 'skill' is also at PredefinedAttributes[1].Name"),
    ("duplicate values", lambda s: s["PredefinedAttributes"][1]["Values"]["StringList"].append("Billing"), "PredefinedAttributes[1].Values.StringList[2]: value 'Billing' is also at PredefinedAttributes[1].Values.StringList[0]"),
    ("two profiles one Id", lambda s: s["RoutingProfiles"].append({"Id": "rp-basic", "Name": "again"}), "RoutingProfiles[2]: routing profile Id 'rp-basic' is also at RoutingProfiles[0]"),
    ("not an object", lambda s: s.clear(), "a snapshot is a JSON object with at least an `Instance`"),
    ("Id not its Arn's", lambda s: _users(s)[0]["User"].update(Arn="arn:aws:connect:us-east-1:123456789012:instance/i/agent/other"), "Users[0].User.Id: 'id-jane' is not the id its Arn names ('other')"),
    ("aws: attribute", lambda s: s["PredefinedAttributes"].append({"Name": "aws:Tier", "Values": {"StringList": ["A"]}}), "PredefinedAttributes[3].Name: 'aws:Tier': aws: names are reserved"),
    ("connect: attribute without values", lambda s: s["PredefinedAttributes"][2].update(Values={"StringList": []}), "PredefinedAttributes[2].Values: system attribute connect:Subtype has values in every instance"),
]  # fmt: skip


def test_a_user_without_id_takes_the_one_its_arn_names() -> None:
    snapshot = small_snapshot()
    user = _users(snapshot)[0]["User"]
    del user["Id"]
    user["Arn"] = "arn:aws:connect:us-east-1:123456789012:instance/i/agent/from-arn"
    backend = backend_from_snapshot(snapshot)
    assert "from-arn" in backend.users


@pytest.mark.parametrize(
    ("mutate", "message"), [d[1:] for d in DEFECTS], ids=[d[0] for d in DEFECTS]
)
def test_each_defect_is_one_snapshot_error_naming_the_path(tmp_path: Path, mutate, message) -> None:
    snapshot = small_snapshot()
    mutate(snapshot)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(snapshot))
    with pytest.raises(SnapshotError) as raised:
        load_snapshot(path)
    assert str(raised.value).startswith(f"{path}: {message}")


def test_routing_profiles_and_groups_in_describe_shape(connect) -> None:
    from tests.conftest import INSTANCE_ARN, INSTANCE_ID

    emulator, client = connect
    snapshot = small_snapshot()
    snapshot["RoutingProfiles"] = [
        {
            "RoutingProfile": {
                "RoutingProfileId": "rp-basic",
                "RoutingProfileArn": f"{INSTANCE_ARN}/routing-profile/rp-basic",
                "Name": "Basic",
                "InstanceId": INSTANCE_ID,
                "Description": "d",
            }
        },
        {
            "RoutingProfileId": "rp-spanish",
            "Name": "Spanish",
            "LastModifiedTime": "2026-01-01T00:00:00+00:00",
        },
    ]
    snapshot["UserHierarchyGroups"] = [
        {"HierarchyGroup": {"Id": "hg-emea", "Name": "EMEA", "LevelId": "1"}},
        {"Id": "hg-dublin", "Name": "Dublin", "LevelId": "2", "HierarchyPath": {"LevelOne": {"Id": "hg-emea", "Name": "EMEA"}}},
    ]  # fmt: skip
    backend = backend_from_snapshot(snapshot)
    emulator.reset(backend)
    profiles = client.list_routing_profiles(InstanceId=INSTANCE_ID)["RoutingProfileSummaryList"]
    assert [(p["Id"], p["Name"]) for p in profiles] == [
        ("rp-basic", "Basic"),
        ("rp-spanish", "Spanish"),
    ]
    assert profiles[0]["Arn"].endswith("/routing-profile/rp-basic")
    groups = client.list_user_hierarchy_groups(InstanceId=INSTANCE_ID)[
        "UserHierarchyGroupSummaryList"
    ]
    assert [g["Id"] for g in groups] == ["hg-emea", "hg-dublin"]
    written = snapshot_of(backend)
    assert written["RoutingProfiles"] == snapshot["RoutingProfiles"]
    assert written["UserHierarchyGroups"] == snapshot["UserHierarchyGroups"]


def test_wrapped_describe_record_errors_name_the_wrapper() -> None:
    snapshot = small_snapshot()
    snapshot["RoutingProfiles"] = [{"RoutingProfile": {"RoutingProfileId": "rp-1"}}]
    with pytest.raises(
        SnapshotError, match=re.escape("RoutingProfiles[0].RoutingProfile.Name: required")
    ):
        backend_from_snapshot(snapshot)


def test_unknown_top_level_keys_survive_write_back(tmp_path: Path) -> None:
    snapshot = small_snapshot()
    snapshot["ExportedBy"] = {"tool": "someone", "at": [1, 2]}
    path = tmp_path / "s.json"
    save_snapshot(backend_from_snapshot(snapshot), path)
    assert json.loads(path.read_text())["ExportedBy"] == {"tool": "someone", "at": [1, 2]}


def test_quotas_load_and_write_back_and_options_win() -> None:
    snapshot = {**small_snapshot(), "Quotas": {"ProficienciesPerUser": 12}}
    backend = backend_from_snapshot(snapshot)
    assert (backend.max_proficiencies_per_user, backend.max_attributes) == (12, 150)
    assert snapshot_of(backend)["Quotas"] == {
        "ProficienciesPerUser": 12,
        "PredefinedAttributesPerInstance": 150,
    }
    assert (
        backend_from_snapshot(snapshot, max_proficiencies_per_user=4).max_proficiencies_per_user
        == 4
    )


def test_proficiency_names_take_the_attributes_spelling() -> None:
    snapshot = small_snapshot()
    snapshot["Users"][1]["Proficiencies"][0]["AttributeName"] = "LANGUAGE"
    backend = backend_from_snapshot(snapshot)
    assert backend.users["id-joe"]["Proficiencies"][0]["AttributeName"] == "Language"


# -- random snapshot-shaped documents -------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
NAMES = st.sampled_from(["Language", "language", "Skill", "connect:Subtype", "X", ""])


def _maybe(strategy):
    return st.one_of(strategy, JSON)


PROFICIENCY = st.fixed_dictionaries(
    {}, optional={"AttributeName": _maybe(NAMES), "AttributeValue": _maybe(st.sampled_from(["English", "Billing", "x"])),
                  "Level": _maybe(st.sampled_from([1, 3.0, 5, 0, 2.5, 10**30, float("inf")]))},
)  # fmt: skip
USER = st.fixed_dictionaries(
    {}, optional={"User": _maybe(st.fixed_dictionaries({}, optional={
        "Id": _maybe(st.sampled_from(["u1", "u2"])), "Username": _maybe(st.sampled_from(["jane", "joe"])),
        "Arn": _maybe(st.sampled_from(["arn:aws:connect:us-east-1:1:instance/i/agent/u", "nope"]))})),
        "Proficiencies": _maybe(st.lists(_maybe(PROFICIENCY), max_size=3))},
)  # fmt: skip
ATTRIBUTE = st.fixed_dictionaries(
    {}, optional={"Name": _maybe(NAMES), "Values": _maybe(st.fixed_dictionaries({}, optional={
        "StringList": _maybe(st.lists(st.sampled_from(["English", "Billing", "x"]), max_size=3))}))},
)  # fmt: skip
RECORD = st.fixed_dictionaries(
    {}, optional={"Id": _maybe(st.sampled_from(["a", "b"])), "Name": _maybe(st.just("n")),
                  "Arn": _maybe(st.just("arn:aws:connect:us-east-1:1:instance/i/x")),
                  "RoutingProfileId": _maybe(st.just("rp")), "LastModifiedTime": _maybe(st.just("2026-01-01T00:00:00Z"))},
)  # fmt: skip
SNAPSHOT = st.fixed_dictionaries(
    {"Instance": _maybe(st.fixed_dictionaries({"Id": _maybe(st.just("i-1"))}, optional={
        "Arn": _maybe(st.just("arn:aws:connect:eu-west-2:1:instance/i-1")), "CreatedTime": _maybe(st.just(0))}))},
    optional={
        "Quotas": _maybe(st.fixed_dictionaries({}, optional={"ProficienciesPerUser": _maybe(st.integers(-1, 20))})),
        "PredefinedAttributes": _maybe(st.lists(_maybe(ATTRIBUTE), max_size=3)),
        "Users": _maybe(st.lists(_maybe(USER), max_size=3)),
        "RoutingProfiles": _maybe(st.lists(_maybe(st.one_of(RECORD, st.builds(lambda r: {"RoutingProfile": r}, RECORD))), max_size=2)),
        "UserHierarchyGroups": _maybe(st.lists(_maybe(st.one_of(RECORD, st.builds(lambda r: {"HierarchyGroup": r}, RECORD))), max_size=2)),
        "Contacts": _maybe(st.lists(_maybe(RECORD), max_size=2)),
        "Extra": JSON,
    },
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SNAPSHOT)
def test_random_snapshots_load_or_fail_with_a_snapshot_error(document) -> None:
    try:
        backend = backend_from_snapshot(document)
    except SnapshotError as exc:
        assert str(exc)
        return
    # A loaded snapshot writes back as JSON that loads to the same state.
    written = json.loads(json.dumps(snapshot_of(backend)))
    assert snapshot_of(backend_from_snapshot(written)) == written


def test_a_snapshot_in_describe_shape_plans(tmp_path: Path, monkeypatch) -> None:
    from click.testing import CliRunner

    from reconciler.cli import cli
    from tests.conftest import INSTANCE_ID, write_config

    monkeypatch.chdir(tmp_path)
    snapshot = small_snapshot()
    snapshot["RoutingProfiles"] = [
        {"RoutingProfile": {"RoutingProfileId": "rp-basic", "Name": "Basic Routing Profile"}},
        {"RoutingProfile": {"RoutingProfileId": "rp-spanish", "Name": "Spanish Support"}},
    ]
    snapshot["UserHierarchyGroups"] = [
        {"HierarchyGroup": g} for g in snapshot["UserHierarchyGroups"]
    ]
    (tmp_path / "snapshot.json").write_text(json.dumps(snapshot))
    write_config(tmp_path / "config", {
        "instance.yaml": f"instance:\n  id: {INSTANCE_ID}\n  region: us-east-1\n",
        "attributes.yaml": "predefined_attributes:\n  Language: {values: [English, Spanish, French]}\n  Skill: {values: [Billing, Payments]}\n",
        "sets.yaml": "proficiency_sets:\n  spanish: {Language: {Spanish: 4}, Skill: {Billing: 3}}\n",
        "groups.yaml": "groups:\n  - match: {routing_profile: Spanish Support}\n    sets: [spanish]\n",
    }, base=False)  # fmt: skip
    plan = ["plan", "--detailed-exitcode", "--target", "emulator:snapshot.json"]
    result = CliRunner().invoke(cli, plan)
    assert result.exit_code == 0, result.output  # jane, in Spanish Support, already matches
    groups = tmp_path / "config" / "groups.yaml"
    groups.write_text(groups.read_text().replace("Spanish Support", "Basic Routing Profile"))
    result = CliRunner().invoke(cli, [*plan, "--format", "json"])
    assert result.exit_code == 2, result.output
    assert {c.get("username") for c in json.loads(result.output)["changes"]} == {"joe", "ann"}


@pytest.mark.parametrize(
    ("text", "message"),
    [("[" * 100_000 + "]" * 100_000, "JSON nested too deep"), ("{", "not JSON")],
    ids=["deep", "truncated"],
)
def test_a_snapshot_file_that_is_not_a_snapshot_document_is_one_error(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "s.json"
    path.write_text(text)
    with pytest.raises(SnapshotError, match=message):
        load_snapshot(path)
