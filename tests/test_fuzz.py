"""A slice of the mutation fuzzer (bench/fuzz.py) runs with the suite."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_two_hundred_mutated_inputs_end_cleanly() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.fuzz", "--manifests", "150", "--environments", "30",
         "--snapshots", "20", "--seed", "2026"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.stdout.splitlines()[-1] == (
        "RESULT fuzz tried=200 clean=200 crashed=0 traceback=0 network=0 unlocated=0"
    ), result.stdout[-3000:]
    assert result.returncode == 0


PROBE = """
import random, sys, tempfile
from pathlib import Path
from bench.fuzz import Case, _config_files, run_case
files = {k: v.encode() for k, v in _config_files().items()}
args = sys.argv[1:]
with tempfile.TemporaryDirectory() as tmp:
    outcome, detail = run_case(Case(0, "probe", args, files), Path(tmp), random.Random(0))
print(outcome)
"""


def test_the_harness_catches_network_calls_and_tracebacks() -> None:
    def outcome(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-c", PROBE, *args],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
            env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
        )  # fmt: skip
        return result.stdout.strip().splitlines()[-1]

    # With no credentials botocore asks the instance metadata service: a
    # network call the harness must see and refuse.
    assert outcome("plan", "--config", "config", "--target", "aws") == "network"
    assert outcome("validate", "--config", "config") == "clean"
