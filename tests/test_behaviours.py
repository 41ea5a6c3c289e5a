"""The demo planned, applied, exported and drifted under every answer the
emulator gives where Connect's documentation is silent, and with writes
reaching the read paths late: each run gives what the list read gives under
the default answers, or refuses naming the behaviour (and `doctor`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import cli
from reconciler.emulator.behaviour import CHOICES
from tests.conftest import ROOT, fast_demo_config

DEMO = ROOT / "examples" / "demo-snapshot.json"
COMPARED = ("changes", "errors", "guards", "coverage", "unmanaged_attributes", "summary")
# Every non-default answer, an OR limit below and one at the tool's own, and a lag.
ANSWERS = [
    *({key: choice} for key, (choices, default) in CHOICES.items() for choice in choices if choice != default),
    {"max-or-conditions": 1},
    {"max-or-conditions": 20},
    {"consistency-lag": 5, "seed": 3},
    {"consistency-lag": 5, "seed": 4, "list-condition": "any-proficiency"},
]  # fmt: skip


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def plan_json(target: str, config: Path, read: str) -> tuple[int, dict | str]:
    args = ["plan", "--config", str(config), "--target", target, "--format", "json", "--read", read]
    result = CliRunner().invoke(cli, args)
    try:
        document = json.loads(result.stdout)
    except ValueError:
        return result.exit_code, result.output
    return result.exit_code, {k: v for k, v in document.items() if k in COMPARED}


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    """The demo's manifests, paced as fast as the emulator answers."""
    return fast_demo_config(tmp_path_factory.mktemp("demo") / "config")


@pytest.fixture(scope="module")
def expected(tmp_path_factory, config: Path) -> dict:
    """The list read's plan under the default answers."""
    snapshot = tmp_path_factory.mktemp("baseline") / "snapshot.json"
    shutil.copy(DEMO, snapshot)
    code, plan = plan_json(f"emulator:{snapshot}", config, "list")
    assert code == 0 and isinstance(plan, dict)
    return plan


def refused_naming(code: int, output: object, answers: dict) -> bool:
    """Refused (exit 1, or 3 for a guard) with a message naming the behaviour
    in play, and doctor to settle it."""
    named = [key for key in answers if key != "seed"]
    said = str(output)
    return (
        code in (1, 3) and "connect-reconciler doctor" in said and all(key in said for key in named)
    )


@pytest.mark.parametrize(
    "answers", ANSWERS, ids=lambda a: ",".join(f"{k}={v}" for k, v in a.items())
)
def test_the_demo_under_every_answer(
    tmp_path: Path, monkeypatch, expected: dict, config: Path, answers: dict
) -> None:
    monkeypatch.chdir(tmp_path)
    snapshot = tmp_path / "snapshot.json"
    document = json.loads(DEMO.read_text())
    document["Behaviour"] = answers
    snapshot.write_text(json.dumps(document))
    target = f"emulator:{snapshot}"
    # (auto reads the demo by list; its fallback from a disagreeing search is
    # tests/connect/test_reader.py's)
    for read in ("list", "search"):
        code, plan = plan_json(target, config, read)
        assert plan == expected or refused_naming(code, plan, answers), (read, code, plan)
    code, output = run("apply", "--config", str(config), "--target", target, "--auto-approve")
    if refused_naming(code, output, answers):  # a guard on counts it cannot trust
        code, output = run(
            "apply", "--config", str(config), "--target", target, "--auto-approve", "--force"
        )
    assert code == 0, output
    assert json.loads(snapshot.read_text())["Behaviour"] == answers  # kept on write-back
    drift = CliRunner().invoke(
        cli, ["drift", "--config", str(config), "--target", target, "--read", "list"]
    )
    assert drift.exit_code == 0 and json.loads(drift.stdout)["in_sync"] is True, drift.output
    code, output = run("export", "--target", target, "--out", "exported")
    assert code == 0, output
    code, output = run("plan", "--config", "exported", "--target", target, "--detailed-exitcode")
    assert code == 0 and "No changes." in output, output


@pytest.mark.parametrize("answer", CHOICES["short-values"][0])
def test_one_character_values_plan_as_the_list_read_whatever_search_does_with_them(
    tmp_path: Path, answer: str
) -> None:
    document = json.loads(DEMO.read_text())
    document["Behaviour"] = {"short-values": answer}
    tier = next(a for a in document["PredefinedAttributes"] if a["Name"] == "Tier")
    tier["Values"]["StringList"].append("A")
    for user in document["Users"][:3]:
        user["Proficiencies"].append({"AttributeName": "Tier", "AttributeValue": "A", "Level": 2})
    config = fast_demo_config(tmp_path / "config")
    attributes = config / "attributes.yaml"
    attributes.write_text(
        attributes.read_text().replace("[Tier 1, Tier 2, Tier 3]", "[Tier 1, Tier 2, Tier 3, A]")
    )
    plans = {}
    for read in ("list", "search", "auto"):
        snapshot = tmp_path / f"{read}.json"
        snapshot.write_text(json.dumps(document))
        plans[read] = plan_json(f"emulator:{snapshot}", config, read)
    assert plans["list"][0] == 0 and plans["auto"] == plans["list"]
    # the search read never searches for it: it lists instead, and says why
    code, searched = plans["search"]
    assert searched == plans["list"][1] or (code == 1 and "too short" in str(searched))


def demo_answering(directory: Path, key: str, answer: str) -> Path:
    """The demo snapshot giving `answer` to the switch `key`."""
    document = json.loads(DEMO.read_text())
    document["Behaviour"] = {key: answer}
    snapshot = directory / f"{key}-{answer}.json"
    snapshot.write_text(json.dumps(document))
    return snapshot


def test_max_contacts_keeps_the_same_contacts_whatever_order_search_contacts_returns(
    tmp_path: Path, config: Path
) -> None:
    kept = []
    for answer in CHOICES["contact-order"][0]:
        snapshot = demo_answering(tmp_path, "contact-order", answer)
        result = CliRunner().invoke(cli, [
            "coverage", "--config", str(config), "--target", f"emulator:{snapshot}",
            "--from-contacts", "7d", "--until", "2026-11-21T00:00:00Z", "--max-contacts", "5",
            "--format", "json",
        ])  # fmt: skip
        assert result.exit_code in (0, 2), result.output
        kept.append(json.loads(result.stdout)["contacts"])
    assert kept[0] == kept[1] and kept[0]["read"] == 5


def test_explain_gives_the_same_answer_whatever_a_list_condition_matches(
    tmp_path: Path, config: Path
) -> None:
    explained = {}
    for answer in CHOICES["list-condition"][0]:
        snapshot = demo_answering(tmp_path, "list-condition", answer)
        result = CliRunner().invoke(cli, [
            "explain", "e1655d3d-a277-51d7-b5e5-e7875bcfbd80", "--config", str(config),
            "--target", f"emulator:{snapshot}", "--format", "json",
        ])  # fmt: skip
        assert result.exit_code == 0, result.output
        explained[answer] = json.loads(result.stdout)
    strict, loose = explained["one-proficiency"], explained["any-proficiency"]
    assert loose["steps"] == strict["steps"]
    assert strict["note"] == "" and "every user read by list instead" in loose["note"]
    assert "list-condition" in loose["note"]
