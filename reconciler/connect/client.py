"""boto3 clients for Connect, for AWS or for an emulator endpoint."""

from __future__ import annotations

import threading
from typing import Any

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

from reconciler.service.model import is_read

# Retries are ours (reconciler.connect pacing), so botocore must not retry
# behind our back: every call it makes is one the pacer accounted for.
_CONFIG = Config(
    # botocore reads `max_attempts` as retries; total_max_attempts counts the first.
    retries={"mode": "standard", "total_max_attempts": 1},
    max_pool_connections=32,
    connect_timeout=5,
    read_timeout=30,
)


# One botocore loader per process: the Connect model (a megabyte of JSON) is
# parsed once however many clients a process makes (each command's, the
# emulator's, every test's).
_LOADER = botocore.loaders.create_loader()
# Environments connect from threads at once: sessions share that loader.
_MAKING = threading.Lock()


def connect_client(
    region: str | None = None,
    profile: str | None = None,
    endpoint_url: str | None = None,
    emulator: bool = False,
) -> Any:
    """A Connect client. For an emulator, fixed dummy credentials are used so
    that no credential chain (files, IMDS) is consulted."""
    with _MAKING:
        return _client(region, profile, endpoint_url, emulator)


def _client(
    region: str | None, profile: str | None, endpoint_url: str | None, emulator: bool
) -> Any:
    core = botocore.session.Session()
    core.register_component("data_loader", _LOADER)
    if emulator:
        session = boto3.session.Session(
            aws_access_key_id="emulator",
            aws_secret_access_key="emulator",
            region_name=region or "us-east-1",
            botocore_session=core,
        )
    else:
        session = boto3.session.Session(
            profile_name=profile, region_name=region, botocore_session=core
        )
    # boto3 adds its data directory to the loader's search paths per session
    _LOADER.search_paths[:] = list(dict.fromkeys(_LOADER.search_paths))
    return session.client("connect", endpoint_url=endpoint_url, config=_CONFIG)


# The least-privilege policies of docs/iam/: reads, and apply's writes on top.
READ_POLICY = "docs/iam/plan-policy.json"
WRITE_POLICY = "docs/iam/apply-policy.json"
# Contact reads (coverage --from-contacts, explain) are granted apart.
AUDIT_POLICY = "docs/iam/audit-policy.json"
AUDIT_OPERATIONS = {"SearchContacts", "DescribeContact"}
# Reads only apply makes (right before a value-list update, an owner tag's
# read-back), granted with its writes (tests/test_iam.py observes them).
APPLY_READS = {"DescribePredefinedAttribute", "ListTagsForResource"}


def access_denied(exc: Exception) -> str | None:
    """What an AccessDenied answer means to the user: the `connect:` action
    to allow and the policy of docs/iam/ that grants it; None for any other error."""
    if not isinstance(exc, ClientError):
        return None
    if exc.response.get("Error", {}).get("Code") not in ("AccessDeniedException", "AccessDenied"):
        return None
    operation = exc.operation_name
    if operation in AUDIT_OPERATIONS:
        policy = AUDIT_POLICY
    else:
        policy = (
            READ_POLICY if is_read(operation) and operation not in APPLY_READS else WRITE_POLICY
        )
    return (
        f"access denied to connect:{operation}: the credentials' IAM policy must allow "
        f"that action ({policy} in the connect-reconciler repository grants it)"
    )


def caller_identity(profile: str | None, region: str | None) -> dict[str, Any]:
    """STS GetCallerIdentity for boto3's credential chain (needs no permission)."""
    session = boto3.session.Session(profile_name=profile, region_name=region)
    sts = session.client("sts", config=_CONFIG)
    identity: dict[str, Any] = sts.get_caller_identity()
    return identity
