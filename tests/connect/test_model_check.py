"""The start-up check of botocore's Connect model against what the tool uses."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import botocore.session
import pytest
from botocore.model import ServiceModel

from reconciler.service.model import (
    BOTOCORE_FLOOR,
    REQUIREMENTS,
    ModelTooOld,
    missing_from,
    require_model,
)
from tests.conftest import write_config


def installed_model_json() -> dict:
    loader = botocore.session.get_session().get_component("data_loader")
    return copy.deepcopy(loader.load_service_model("connect", "service-2"))


def test_the_installed_model_has_every_requirement() -> None:
    assert missing_from(ServiceModel(installed_model_json(), "connect")) == []
    require_model()


def older(edit) -> ServiceModel:
    document = installed_model_json()
    edit(document["shapes"], document["operations"])
    return ServiceModel(document, "connect")


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda s, o: s["CreatePredefinedAttributeRequest"]["members"].pop("Purposes"), "CreatePredefinedAttribute input Purposes"),
        (lambda s, o: s["CreatePredefinedAttributeRequest"]["required"].append("Values"), "CreatePredefinedAttribute input Values (optional)"),
        (lambda s, o: s["PredefinedAttributeName"].update(max=64), "CreatePredefinedAttribute input Name (up to 100; this model allows 64)"),
        (lambda s, o: s["PredefinedAttributeStringValuesList"].update(max=128), "Values.StringList (up to 500; this model allows 128)"),
        (lambda s, o: s["PredefinedAttributeStringValue"].update(max=64), "Values.StringList.* (up to 100; this model allows 64)"),
        (lambda s, o: s["ContactSearchSummary"]["members"].pop("RoutingCriteria"), "SearchContacts output Contacts.RoutingCriteria"),
        (lambda s, o: s["SegmentAttributeValue"]["members"].pop("ValueMap"), "Contact.SegmentAttributes.ValueMap"),
        (lambda s, o: s["UserSearchCriteria"]["members"].pop("ListCondition"), "SearchUsers input SearchCriteria.ListCondition"),
        (lambda s, o: o.pop("SearchPredefinedAttributes"), "operation SearchPredefinedAttributes"),
    ],
)  # fmt: skip
def test_an_older_model_is_named_with_what_it_lacks(edit, named) -> None:
    model = older(edit)
    assert any(named in problem for problem in missing_from(model))
    with pytest.raises(ModelTooOld, match=f"install botocore>={BOTOCORE_FLOOR}"):
        require_model(model)


def test_requirements_are_distinct() -> None:
    assert len(set(REQUIREMENTS)) == len(REQUIREMENTS)


def run_under_an_older_model(tmp_path: Path, *command: str) -> subprocess.CompletedProcess:
    # AWS_DATA_PATH models win over botocore's own: the CLI sees an older API.
    document = installed_model_json()
    document["shapes"]["CreatePredefinedAttributeRequest"]["members"].pop("Purposes")
    folder = tmp_path / "connect" / "2017-08-08"
    folder.mkdir(parents=True)
    (folder / "service-2.json").write_text(json.dumps(document))
    write_config(tmp_path / "config", {})  # manifests that validate: plan gets to connect
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *command],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "AWS_DATA_PATH": str(tmp_path)},
        timeout=60,
    )


@pytest.mark.parametrize(
    "command", [["emulator", "serve", "--port", "0"], ["plan", "--target", "emulator:s.json"]]
)
def test_commands_that_need_the_model_exit_1_naming_the_version(tmp_path: Path, command) -> None:
    result = run_under_an_older_model(tmp_path, *command)
    assert result.returncode == 1
    assert f"install botocore>={BOTOCORE_FLOOR}" in result.stderr
    assert "CreatePredefinedAttribute input Purposes" in result.stderr


def test_offline_validate_does_not_need_the_model(tmp_path: Path) -> None:
    assert run_under_an_older_model(tmp_path, "validate").returncode == 0


def test_pyproject_declares_the_floor_found_here() -> None:
    import tomllib

    from reconciler.service.model import BOTO3_FLOOR
    from tests.conftest import ROOT

    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"botocore>={BOTOCORE_FLOOR}" in dependencies
    assert f"boto3>={BOTO3_FLOOR}" in dependencies
