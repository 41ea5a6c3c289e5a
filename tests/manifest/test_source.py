"""YAML reading: the core schema, positions, and what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler import files
from reconciler.manifest import ManifestInvalid
from reconciler.manifest.source import MAX_DEPTH, read_source


def parse(tmp_path: Path, text: str):
    path = tmp_path / "m.yaml"
    path.write_text(text)
    return read_source(path, "m.yaml")


def test_yaml_1_2_core_scalars(tmp_path: Path) -> None:
    source = parse(
        tmp_path,
        "a: yes\nb: 010\nc: 0x1F\nd: 1.5\ne: true\nf: ~\ng: '3'\nh: 2024-01-01\n",
    )
    # 1.2: `yes` is text, 010 is decimal, dates are text
    assert source.data == {
        "a": "yes",
        "b": 10,
        "c": 31,
        "d": 1.5,
        "e": True,
        "f": None,
        "g": "3",
        "h": "2024-01-01",
    }


def test_mapping_keys_keep_their_text(tmp_path: Path) -> None:
    # Tier values like 1 and 2 are names, whatever YAML would type them as.
    assert parse(tmp_path, "Tier: {1: 4, true: 2}\n").data == {"Tier": {"1": 4, "true": 2}}


def test_positions_of_values_keys_and_missing_members(tmp_path: Path) -> None:
    source = parse(tmp_path, "users:\n  jane:\n    sets: [a, b]\n")
    assert source.position(("users", "jane", "sets", 1)) == (3, 15)
    assert source.position(("users", "jane"), at_key=True) == (2, 3)
    # a member that is not there resolves to where it would be added
    assert source.position(("users", "jane", "proficiencies")) == (3, 5)


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_bytes("\ufeffusers: {}\n".encode())
    assert read_source(path, "m.yaml").data == {"users": {}}


def errors_of(tmp_path: Path, text: str | bytes) -> list[str]:
    path = tmp_path / "m.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    with pytest.raises(ManifestInvalid) as raised:
        read_source(path, "m.yaml")
    return [str(e) for e in raised.value.errors]


@pytest.mark.parametrize("depth", [65, 5000, 30_000])
def test_deep_flow_nesting_is_refused_before_parsing(tmp_path: Path, depth: int) -> None:
    # depth 30,000 segfaulted the C composer; the bound is checked on the text
    [error] = errors_of(tmp_path, "proficiency_sets:\n  deep: " + "[" * depth + "]" * depth)
    assert error.startswith("m.yaml:2:")
    assert f"nested more than {MAX_DEPTH} levels" in error


def test_deep_block_nesting_is_refused_with_its_position(tmp_path: Path) -> None:
    [error] = errors_of(tmp_path, "a:\n" + "- " * 5000 + "x\n")
    assert error.startswith("m.yaml:2:") and "nested more than" in error


def test_brackets_in_quotes_and_comments_do_not_count_as_nesting(tmp_path: Path) -> None:
    deep = "[" * 100
    source = parse(tmp_path, f"a: '{deep}'\nb: \"{deep}\"  # {deep}\nc: [[1]]\n")
    assert source.data == {"a": deep, "b": deep, "c": [[1]]}


@pytest.mark.parametrize("text", ["0b100", "4_", "0x_4", "1_000", "0o_7", "+0x4", "0777_"])
def test_yaml_1_1_number_spellings_are_text(tmp_path: Path, text: str) -> None:
    assert parse(tmp_path, f"a: {text}\n").data == {"a": text}


def test_core_schema_numbers(tmp_path: Path) -> None:
    source = parse(tmp_path, "a: 0o17\nb: -3\nc: .inf\nd: -.Inf\ne: 1e3\nf: +4\n")
    expected = {"a": 15, "b": -3, "c": float("inf"), "d": float("-inf"), "e": 1000.0, "f": 4}
    assert source.data == expected


def test_a_number_too_long_for_int_is_text_not_a_crash(tmp_path: Path) -> None:
    digits = "9" * 5000
    assert parse(tmp_path, f"a: {digits}\n").data == {"a": digits}


@pytest.mark.parametrize(
    "text", ["a: !!int 4\n", "a: !!str 4\n", "a: ! x\n", "a: !!map {}\n", "a: !local [1]\n"]
)
def test_every_yaml_tag_is_an_error_even_one_that_restates_the_type(
    tmp_path: Path, text: str
) -> None:
    [error] = errors_of(tmp_path, text)
    assert error.startswith("m.yaml:1:4: YAML tag") and "is not allowed" in error


def test_a_second_document_is_an_error(tmp_path: Path) -> None:
    [error] = errors_of(tmp_path, "users: {}\n---\nusers: {}\n")
    assert error.startswith("m.yaml:2:") and "one YAML document" in error


def test_alias_to_an_undefined_anchor_is_positioned(tmp_path: Path) -> None:
    [error] = errors_of(tmp_path, "a: 1\nb: *nowhere\n")
    assert error.startswith("m.yaml:2:4: alias *'nowhere' names no anchor")


def test_aliases_share_values_and_keys_may_be_aliases(tmp_path: Path) -> None:
    source = parse(tmp_path, "a: &k name\nb: &l [1, 2]\nc: *l\n*k : 3\n")
    assert source.data == {"a": "name", "b": [1, 2], "c": [1, 2], "name": 3}


def test_collection_keys_and_duplicates_are_positioned(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, "? [a]\n: 1\nb: 2\nb: 3\n")
    assert errors[0].startswith("m.yaml:1:3: a mapping key must be a plain name")
    assert errors[1].startswith("m.yaml:4:1: duplicate key 'b' (first defined on line 3)")


def test_long_bad_values_are_quoted_short(tmp_path: Path) -> None:
    [error] = errors_of(tmp_path, "a: !" + "x" * 4_000_000 + " 1\n")
    assert error.startswith("m.yaml:1:4: YAML tag '!xxxx")
    assert len(error) < 300


def test_a_file_larger_than_the_bound_is_refused_unparsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "MAX_INPUT_BYTES", 1000)
    [error] = errors_of(tmp_path, "a: " + "x" * 2000 + "\n")
    assert error.startswith("m.yaml:1:1: the file is larger than 1,000 bytes")


def test_a_file_that_cannot_be_opened_is_named(tmp_path: Path) -> None:
    with pytest.raises(ManifestInvalid, match=r"gone\.yaml:1:1: cannot read the file"):
        read_source(tmp_path / "gone.yaml", "gone.yaml")


def test_top_level_that_is_not_a_mapping_is_positioned(tmp_path: Path) -> None:
    [error] = errors_of(tmp_path, "# header\n- a\n- b\n")
    assert error.startswith("m.yaml:2:1: the top level must be a mapping")


def test_positions_of_an_error_are_found_after_loading(tmp_path: Path) -> None:
    # Positions come from the kept text, composed only when an error asks.
    source = parse(tmp_path, "users:\n  jane: {sets: [a]}\n")
    assert source.position(("users", "jane", "sets", 0)) == (2, 17)
