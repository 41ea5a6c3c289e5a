"""CSV user manifests: the same desired state as YAML, the same rules, and
every error at the row and cell it is about."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler import files
from reconciler.connect.pacer import QuotaPacer
from reconciler.connect.reader import LiveStateReader
from reconciler.emulator import backend_from_snapshot
from reconciler.manifest import ManifestInvalid, load_manifest
from reconciler.manifest.csv_source import level_of
from reconciler.plan.planner import make_plan
from reconciler.plan.render import JsonRenderer
from tests.conftest import INSTANCE_ARN, INSTANCE_ID, write_config

LONG = "username,attribute,value,level\n"
BAD_LEVEL = "level of Language/Spanish must be a whole number from 1 to 5, got "


def loaded(tmp_path: Path, extra: dict[str, str | bytes]):
    return load_manifest(write_config(tmp_path / "config", extra))


def errors_of(tmp_path: Path, extra: dict[str, str | bytes]) -> list[str]:
    with pytest.raises(ManifestInvalid) as invalid:
        loaded(tmp_path, extra)
    return [
        f"{e.file.rsplit('/', 1)[-1]}:{e.line}:{e.column}: {e.message}"
        for e in invalid.value.errors
    ]


def users_of(manifest) -> dict[str, dict]:
    return {name: user.proficiencies for name, user in manifest.desired.users.items()}


def test_long_and_wide_layouts_declare_what_the_yaml_does(tmp_path: Path) -> None:
    yaml = loaded(tmp_path / "y", {"users.yaml": (
        "users:\n  jane: {proficiencies: {Language: {Spanish: 4}, Skill: {Billing: 2}}}\n"
        "  joe: {proficiencies: {}}\n  ann: {sets: [bilingual], proficiencies: {}}\n")})  # fmt: skip
    long = loaded(tmp_path / "l", {"team.csv": (
        "\ufeffUserName,Level,Attribute,Value,Sets\r\n"
        "jane,4,Language,Spanish,\r\n\"jane\",2,Skill,\"Billing\",\r\njoe,,,,\r\n"
        "ann,,,,bilingual\r\n,,,,\r\n")})  # fmt: skip
    wide = loaded(tmp_path / "w", {"team.csv": (
        "username,Language:Spanish,Skill:Billing,sets\n"
        "jane,4,2,\njoe,,,\nann,,,bilingual\n\n")})  # fmt: skip
    for csv_manifest in (long, wide):
        assert users_of(csv_manifest) == users_of(yaml)
        assert csv_manifest.desired.users == yaml.desired.users


def test_a_csv_user_also_in_yaml_or_another_csv_is_an_error_naming_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    errors = errors_of(tmp_path, {
        "a.csv": LONG + "jane,Language,Spanish,4\n",
        "b.csv": LONG + "joe,Language,Spanish,4\njane,Skill,Billing,1\n",
        "users.yaml": "users:\n  joe: {proficiencies: {}}\n",
    })  # fmt: skip
    assert errors == [
        "b.csv:3:1: users.jane is already defined at config/a.csv:2:1",
        "users.yaml:2:3: users.joe is already defined at config/b.csv:2:1",
    ]


def test_ignored_columns_are_skipped_and_others_named(tmp_path: Path) -> None:
    settings = {"settings.yaml": "settings:\n  csv_ignore_columns: [Employee ID]\n"}
    manifest = loaded(tmp_path / "ok", {**settings,
        "team.csv": "employee id,username,attribute,value,level\n77,jane,Language,Spanish,4\n"})  # fmt: skip
    assert users_of(manifest) == {"jane": {("Language", "Spanish"): 4}}
    assert errors_of(tmp_path / "bad", {"team.csv": "username,attribute,value,level,Notes\n"}) == [
        "team.csv:1:5: unknown column 'Notes'"
    ]


@pytest.mark.parametrize(
    ("rows", "error"),
    [
        ("username,attribute,level\n", "team.csv:1:1: missing column 'value'"),
        ("attribute,value,level\n", "team.csv:1:1: missing column 'username'"),
        (LONG + "jane,Language,Spanish,0\n", f"team.csv:2:4: {BAD_LEVEL}0"),
        (LONG + "jane,Language,Spanish,6\n", f"team.csv:2:4: {BAD_LEVEL}6"),
        (LONG + "jane,Language,Spanish,3.5\n", f"team.csv:2:4: {BAD_LEVEL}'3.5'"),
        (LONG + "jane,Language,Spanish,three\n", f"team.csv:2:4: {BAD_LEVEL}'three'"),
        (LONG + "jane,Language,Spanish,3.0\n", "team.csv:2:4: level '3.0' is not written as a whole number"),
        (LONG + "jane,Language,Spanish,\n", "team.csv:2:4: empty level"),
        (LONG + "jane,Langage,Spanish,3\n", "team.csv:2:2: attribute 'Langage' is not declared"),
        (LONG + "jane,Language,Spanis,3\n", "team.csv:2:3: value 'Spanis' is not declared for attribute 'Language'"),
        (LONG + "jane,Language,Spanish,3\njane,Language,Spanish,4\n", "team.csv:3:3: 'jane' holds 'Language/Spanish' already, on line 2"),
        (LONG + "jane,Language,Spanish\n", "team.csv:2:3: row has too few cells: 3, the header has 4"),
        (LONG + "jane,Language,Spanish,3,x\n", "team.csv:2:5: row has too many cells: 5, the header has 4"),
        (LONG + 'jane,"Language,Spanish,3\n', "team.csv:2:1: invalid CSV: unexpected end of data"),
        (LONG + "jane,Language,Spanish\x00,3\n", "team.csv:2:22: file contains a NUL byte: not a text file"),
        ("username,Language:Spanish\njane,4\njane,3\n", "team.csv:3:1: 'jane' has a row already, on line 2"),
        (LONG[:-1] + ",sets\njane,Language,Spanish,3,a\njane,Language,English,3,b\n", "team.csv:3:5: 'jane' lists other sets than on line 2"),
        ("username,Language:\n", "team.csv:1:2: column 'Language:' is not <Attribute>:<Value>"),
        ("username,Language:Spanish\njane,9\n", f"team.csv:2:2: {BAD_LEVEL}9"),
    ],
)  # fmt: skip
def test_bad_rows_are_errors_at_their_cell(tmp_path: Path, rows: str, error: str) -> None:
    assert errors_of(tmp_path, {"team.csv": rows})[0] == error


def test_bytes_that_are_not_a_text_file_are_refused(tmp_path: Path, monkeypatch) -> None:
    assert errors_of(tmp_path / "a", {"team.csv": LONG.encode() + b"jane,Language,Espa\xf1ol,3\n"}) == [
        "team.csv:2:19: file is not valid UTF-8 text"
    ]  # fmt: skip
    monkeypatch.setattr(files, "MAX_INPUT_BYTES", 1000)
    [error] = errors_of(tmp_path / "b", {"team.csv": LONG + "jane,Language,Spanish,3\n" * 100})
    assert error.startswith("team.csv:1:1: the file is larger than 1,000 bytes")


def test_the_yaml_rules_hold_for_csv_users(tmp_path: Path) -> None:
    settings = {"settings.yaml": "settings:\n  max_proficiencies_per_user: 2\n"}
    rows = "username,Language:English,Language:Spanish,Skill:Billing\njane,1,2,3\n"
    [error] = errors_of(tmp_path, {**settings, "team.csv": rows})
    assert error.startswith("team.csv:2:1: user 'jane' would hold 3 proficiencies")
    assert errors_of(tmp_path / "upper", {"team.CSV": LONG}) == [
        "team.CSV:1:1: not read: manifest names end in .yaml, .yml or .csv"
    ]


def test_level_cells_become_numbers_only_when_whole() -> None:
    assert [level_of(c) for c in ("3", "03", "3.0", "x", "")] == [3, 3, "3.0", "x", ""]


ATTRIBUTES = {"Language": ["English", "Spanish"], "Skill": ["Billing", "Payments"]}
KEYS = [(a, v) for a, values in ATTRIBUTES.items() for v in values]
users = st.dictionaries(
    st.from_regex(r"[a-z][a-z0-9.@]{0,8}", fullmatch=True),
    st.dictionaries(st.sampled_from(KEYS), st.integers(1, 5), max_size=4),
    max_size=8,
)


def as_yaml(declared: dict) -> str:
    lines = ["users:\n" if declared else "users: {}\n"]
    for name, held in declared.items():
        by_attribute: dict[str, dict[str, int]] = {}
        for (attribute, value), level in held.items():
            by_attribute.setdefault(attribute, {})[value] = level
        body = ", ".join(
            f"{a}: {{{', '.join(f'{v}: {n}' for v, n in vs.items())}}}"
            for a, vs in by_attribute.items()
        )
        lines.append(f"  '{name}': {{proficiencies: {{{body}}}}}\n")
    return "".join(lines)


def as_long_csv(declared: dict) -> str:
    rows = [LONG]
    for name, held in declared.items():
        rows += [f"{name},{a},{v},{n}\n" for (a, v), n in held.items()] or [f"{name},,,\n"]
    return "".join(rows)


def as_wide_csv(declared: dict) -> str:
    header = "username," + ",".join(f"{a}:{v}" for a, v in KEYS) + "\n"
    return header + "".join(
        name + "," + ",".join(str(held.get(key, "")) for key in KEYS) + "\n"
        for name, held in declared.items()
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(users)
def test_any_users_load_the_same_from_yaml_long_and_wide_csv(declared: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        loaded_as = {
            layout: load_manifest(write_config(root / layout, {name: text}))
            for layout, (name, text) in {
                "yaml": ("users.yaml", as_yaml(declared)),
                "long": ("users.csv", as_long_csv(declared)),
                "wide": ("users.csv", as_wide_csv(declared)),
            }.items()
        }
    expected = {n: {k: v for k, v in held.items()} for n, held in declared.items()}
    for manifest in loaded_as.values():
        assert users_of(manifest) == expected


def snapshot_of(live: dict) -> dict:
    return {
        "Instance": {"Id": INSTANCE_ID, "Arn": INSTANCE_ARN, "InstanceStatus": "ACTIVE"},
        "PredefinedAttributes": [
            {"Name": a, "Values": {"StringList": values}} for a, values in ATTRIBUTES.items()
        ],
        "RoutingProfiles": [{"Id": "rp-basic", "Name": "Basic Routing Profile"}],
        "Users": [
            {
                "User": {"Id": f"id-{name}", "Username": name, "RoutingProfileId": "rp-basic"},
                "Proficiencies": [
                    {"AttributeName": a, "AttributeValue": v, "Level": level}
                    for (a, v), level in held.items()
                ],
            }
            for name, held in live.items()
        ],
    }


@st.composite
def instances(draw: st.DrawFn) -> tuple[dict, dict]:
    """A live instance's users, and manifests declaring some of them."""
    live = draw(users)
    declared_names = draw(st.sets(st.sampled_from(sorted(live)))) if live else set()
    held = st.dictionaries(st.sampled_from(KEYS), st.integers(1, 5), max_size=4)
    return live, {name: draw(held) for name in sorted(declared_names)}


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(instances())
def test_any_instance_plans_the_same_from_yaml_and_csv(connect, instance: tuple) -> None:
    emulator, client = connect
    live, declared = instance
    emulator.reset(backend_from_snapshot(snapshot_of(live)))
    reader = LiveStateReader(QuotaPacer(client, time_scale=1000), INSTANCE_ID)
    plans = {}
    with tempfile.TemporaryDirectory() as tmp:
        for layout, (name, text) in {
            "yaml": ("users.yaml", as_yaml(declared)),
            "long": ("users.csv", as_long_csv(declared)),
            "wide": ("users.csv", as_wide_csv(declared)),
        }.items():
            manifest = load_manifest(write_config(Path(tmp) / layout, {name: text}))
            plans[layout] = json.loads(JsonRenderer().render(make_plan(manifest, reader)))
            plans[layout].pop("manifest_digest")
    assert plans["long"] == plans["yaml"] and plans["wide"] == plans["yaml"]
