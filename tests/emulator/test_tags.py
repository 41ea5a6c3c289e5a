"""The emulator's TagResource / UntagResource / ListTagsForResource for users,
as the API reference and the service model describe them."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.conftest import INSTANCE_ID

IN = {"InstanceId": INSTANCE_ID}


def jane_arn(client) -> str:
    return client.describe_user(**IN, UserId="id-jane")["User"]["Arn"]


def test_tags_show_in_describe_user_search_users_and_list_tags(connect) -> None:
    _, client = connect
    arn = jane_arn(client)
    client.tag_resource(resourceArn=arn, tags={"team": "billing", "cost center": "42"})
    client.tag_resource(resourceArn=arn, tags={"team": "support"})  # replaces one value
    expected = {"team": "support", "cost center": "42"}
    assert client.list_tags_for_resource(resourceArn=arn)["tags"] == expected
    assert client.describe_user(**IN, UserId="id-jane")["User"]["Tags"] == expected
    found = client.search_users(**IN)["Users"]
    assert {u["Username"]: u.get("Tags") for u in found}["jane"] == expected
    client.untag_resource(resourceArn=arn, tagKeys=["team", "not there"])
    assert client.list_tags_for_resource(resourceArn=arn)["tags"] == {"cost center": "42"}
    client.untag_resource(resourceArn=arn, tagKeys=["cost center"])
    assert "Tags" not in client.describe_user(**IN, UserId="id-jane")["User"]


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ({"aws:team": "x"}, "aws: prefix is reserved"),
        ({"team": "AWS:x"}, "aws: prefix is reserved"),
        ({"team#1": "x"}, "characters tags do not allow"),
        ({"k" * 129: "x"}, "at most 128 characters"),  # TagKey: at most 128 (service model)
        ({"team": "v" * 257}, "at most 256 characters"),  # TagValue: at most 256
        ({f"key{i}": "x" for i in range(51)}, "1 to 50 tags"),
    ],
    ids=["aws key", "aws value", "bad character", "long key", "long value", "51 tags"],
)
def test_invalid_tags_are_refused(connect, tags: dict[str, str], message: str) -> None:
    _, client = connect
    with pytest.raises(ClientError) as refused:
        client.tag_resource(resourceArn=jane_arn(client), tags=tags)
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
    assert message in str(refused.value)


def test_fifty_tags_in_all_at_most(connect) -> None:
    _, client = connect
    arn = jane_arn(client)
    client.tag_resource(resourceArn=arn, tags={f"key{i}": "x" for i in range(50)})
    with pytest.raises(ClientError, match="1 to 50 tags"):
        client.tag_resource(resourceArn=arn, tags={"one more": "x"})


@pytest.mark.parametrize("operation", ["tag", "untag", "list"])
def test_an_unknown_arn_is_not_found(connect, operation: str) -> None:
    _, client = connect
    arn = jane_arn(client).replace("id-jane", "id-nobody")
    call = {
        "tag": lambda: client.tag_resource(resourceArn=arn, tags={"a": "b"}),
        "untag": lambda: client.untag_resource(resourceArn=arn, tagKeys=["a"]),
        "list": lambda: client.list_tags_for_resource(resourceArn=arn),
    }[operation]
    with pytest.raises(ClientError) as missing:
        call()
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
