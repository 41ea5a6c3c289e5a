"""YAML reading: the core schema, positions, and what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.manifest import ManifestInvalid
from reconciler.manifest.source import read_source


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


def test_deep_nesting_is_a_clean_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestInvalid):
        parse(tmp_path, "a: " + "[" * 5000 + "]" * 5000 + "\n")
