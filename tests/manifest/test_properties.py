"""Random input never crashes the loader: it is valid, or cleanly invalid."""

from __future__ import annotations

import tempfile
from io import StringIO
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from reconciler.manifest import ManifestInvalid, load_manifest
from reconciler.manifest.models import known_keys
from tests.conftest import write_config

KEYS = [*sorted(known_keys()), "Language", "Spanish", "bilingual", "jane@example.com", "x"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10), st.floats(allow_nan=False), st.text(max_size=12)
)
structures = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), children, max_size=4),
    ),
    max_leaves=25,
)


def outcome(files: dict[str, str | bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = write_config(Path(tmp) / "config", files)
        try:
            load_manifest(directory)
        except ManifestInvalid as invalid:
            assert invalid.errors
            for error in invalid.errors:
                assert error.line >= 1 and error.column >= 1 and error.message


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_random_text(text: str) -> None:
    outcome({"random.yaml": text})


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes(data: bytes) -> None:
    outcome({"random.yaml": data})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(KEYS), structures, max_size=4))
def test_random_yaml_structures(document: dict) -> None:
    stream = StringIO()
    YAML(typ="safe", pure=True).dump(document, stream)
    outcome({"random.yaml": stream.getvalue()})
