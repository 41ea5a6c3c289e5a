"""The published JSON Schema agrees with the loader."""

from __future__ import annotations

import jsonschema
import pytest

from reconciler.manifest import json_schema
from reconciler.manifest.loader import find_manifest_files
from reconciler.manifest.source import read_source
from tests.conftest import ROOT


@pytest.mark.parametrize(
    "path",
    [p for p in find_manifest_files(ROOT / "config") if p.suffix != ".csv"],  # YAML's schema
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_demo_config_files_validate_against_the_schema(path) -> None:
    jsonschema.validate(read_source(path, str(path)).data, json_schema())


@pytest.mark.parametrize(
    "document",
    [
        {"usres": {}},
        {"users": {"jane": {"proficiencies": {"Language": {"Spanish": 6}}}}},
        {"users": {"jane": {"proficiencies": {"Language": {"Spanish": 3.5}}}}},
        {"predefined_attributes": {"Tier": {"values": ["x"] * 501}}},
        {"settings": {"users": "some"}},
    ],
)
def test_schema_rejects_what_the_loader_rejects(document) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, json_schema())
