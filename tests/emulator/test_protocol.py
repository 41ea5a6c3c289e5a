"""The wire protocol: model-driven routing, validation of any client's
request, error serialization. Raw HTTP and an unvalidated boto3 client send
what a well-behaved SDK never would."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from reconciler.emulator.protocol import ConnectProtocol, shape_problems
from reconciler.service.model import connect_model
from tests.conftest import INSTANCE_ID

IN = {"InstanceId": INSTANCE_ID}


@pytest.fixture(scope="module")
def unvalidated(emulator_server):
    """A boto3 client that sends requests botocore would normally refuse."""
    return boto3.session.Session(
        aws_access_key_id="x", aws_secret_access_key="y", region_name="us-east-1"
    ).client(
        "connect",
        endpoint_url=emulator_server.url,
        config=Config(parameter_validation=False, retries={"total_max_attempts": 1}),
    )


def raw(emulator, method: str, path: str, body: bytes | None = None) -> tuple[int, dict, dict]:
    url = urlsplit(emulator.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    payload = json.loads(response.read() or b"{}")
    connection.close()
    return response.status, dict(response.headers), payload


@pytest.mark.parametrize(
    ("operation", "params", "fragment"),
    [
        (
            "associate_user_proficiencies",
            {
                "UserId": "id-ann",
                "UserProficiencies": [
                    {"AttributeName": "Language", "AttributeValue": "French", "Level": 6}
                ],
            },
            "at most 5",
        ),
        (
            "associate_user_proficiencies",
            {"UserId": "id-ann", "UserProficiencies": [{"AttributeName": "Language", "Level": 2}]},
            "AttributeValue: required",
        ),
        ("create_predefined_attribute", {"Name": "x" * 101}, "at most 100 characters"),
        (
            "create_predefined_attribute",
            {"Name": "Tier", "Values": {"StringList": ["v"] * 501}},
            "at most 500 items",
        ),
        ("list_users", {"MaxResults": 1001}, "at most 1000"),
        (
            "search_users",
            {
                "SearchCriteria": {
                    "StringCondition": {
                        "FieldName": "Username",
                        "Value": "j",
                        "ComparisonType": "FUZZY",
                    }
                }
            },
            "not one of",
        ),
    ],
)
def test_requests_that_violate_the_model_get_invalid_parameter(
    connect, unvalidated, operation, params, fragment
) -> None:
    with pytest.raises(ClientError) as raised:
        getattr(unvalidated, operation)(**IN, **params)
    error = raised.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == (
        "InvalidParameterException",
        400,
    )
    assert fragment in error["Error"]["Message"]


def test_operation_without_invalid_parameter_uses_invalid_request(connect, unvalidated) -> None:
    # DescribeInstance declares only InvalidRequestException for bad input
    with pytest.raises(ClientError) as raised:
        unvalidated.describe_instance(InstanceId="x" * 101)
    assert raised.value.response["Error"]["Code"] == "InvalidRequestException"


def test_raw_http_errors_carry_the_code_header_and_message(connect) -> None:
    emulator, _ = connect
    status, headers, body = raw(
        emulator, "POST", f"/users/{INSTANCE_ID}/id-ann/associate-proficiencies", b"{not json"
    )
    assert (status, headers["x-amzn-ErrorType"]) == (400, "InvalidRequestException")
    assert "not valid JSON" in body["Message"]
    status, headers, body = raw(
        emulator, "POST", f"/users/{INSTANCE_ID}/id-ann/associate-proficiencies", b"{}"
    )
    assert (status, headers["x-amzn-ErrorType"]) == (400, "InvalidParameterException")
    assert "UserProficiencies: required" in body["Message"]
    wrong_type = json.dumps(
        {
            "UserProficiencies": [
                {"AttributeName": "Language", "AttributeValue": "French", "Level": "high"}
            ]
        }
    )
    status, headers, body = raw(
        emulator,
        "POST",
        f"/users/{INSTANCE_ID}/id-ann/associate-proficiencies",
        wrong_type.encode(),
    )
    assert (status, headers["x-amzn-ErrorType"]) == (400, "InvalidParameterException")
    assert "Level: expected a number" in body["Message"]


def test_query_string_members_are_typed(connect) -> None:
    emulator, _ = connect
    status, _, body = raw(emulator, "GET", f"/users-summary/{INSTANCE_ID}?maxResults=two")
    assert status == 400 and "not a valid integer" in body["Message"]
    status, _, body = raw(emulator, "GET", f"/users-summary/{INSTANCE_ID}?maxResults=1")
    assert status == 200 and len(body["UserSummaryList"]) == 1 and "NextToken" in body


def test_unknown_route_is_404(connect) -> None:
    emulator, _ = connect
    status, headers, _ = raw(emulator, "GET", "/no-such-thing")
    assert (status, headers["x-amzn-ErrorType"]) == (404, "UnknownOperationException")


def test_operation_in_the_model_but_not_emulated(connect) -> None:
    _, client = connect
    with pytest.raises(ClientError) as raised:
        client.list_queues(**IN)
    assert "not implemented by this emulator" in raised.value.response["Error"]["Message"]


def test_labels_with_spaces_and_slashes_are_decoded(connect) -> None:
    _, client = connect
    client.create_predefined_attribute(**IN, Name="Tier 1/2", Values={"StringList": ["a b"]})
    assert (
        client.describe_predefined_attribute(**IN, Name="Tier 1/2")["PredefinedAttribute"]["Name"]
        == "Tier 1/2"
    )


def test_routes_prefer_literal_segments() -> None:
    protocol = ConnectProtocol()
    operation, labels = protocol.match("GET", "/users/i-1/u-1/proficiencies")
    assert operation.name == "ListUserProficiencies" and labels == {
        "InstanceId": "i-1",
        "UserId": "u-1",
    }
    assert protocol.match("GET", "/users/i-1/u-1")[0].name == "DescribeUser"


def test_shape_problems_finds_each_kind_of_misfit() -> None:
    shape = connect_model().operation_model("ListUserProficiencies").output_shape
    assert (
        shape_problems(
            shape,
            {"UserProficiencyList": [{"AttributeName": "L", "AttributeValue": "V", "Level": 3}]},
        )
        == []
    )
    problems = shape_problems(
        shape,
        {"UserProficiencyList": [{"AttributeName": "", "Level": "3"}], "LastModifiedTime": "x"},
    )
    assert any("AttributeValue: required" in p for p in problems)
    assert any("at least 1 characters" in p for p in problems)
    assert any("expected a number" in p for p in problems)
    assert any("expected a timestamp" in p for p in problems)


def test_misfit_responses_fail_loudly_in_check_mode(connect) -> None:
    emulator, client = connect
    emulator.backend.users["id-jane"]["Proficiencies"].append(
        {"AttributeName": "Language", "AttributeValue": "English"}
    )
    with pytest.raises(ClientError) as raised:
        client.list_user_proficiencies(**IN, UserId="id-jane")
    assert "does not fit the model" in raised.value.response["Error"]["Message"]
