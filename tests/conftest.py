"""Shared test helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

BASE_FILES: dict[str, str | bytes] = {
    "instance.yaml": (
        "instance:\n  id: 11111111-2222-3333-4444-555555555555\n  region: us-east-1\n"
    ),
    "attributes.yaml": (
        "predefined_attributes:\n"
        "  Language:\n"
        "    values: [English, Spanish]\n"
        "  Skill:\n"
        "    values: [Billing, Payments]\n"
        "proficiency_sets:\n"
        "  bilingual:\n"
        "    Language: {English: 4, Spanish: 4}\n"
    ),
}


def write_config(directory: Path, files: dict[str, str | bytes], base: bool = True) -> Path:
    """Write manifest files (over the small valid base unless base=False)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in {**(BASE_FILES if base else {}), **files}.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return directory


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty `config/` in a temporary working directory."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "config"
    path.mkdir()
    return path
