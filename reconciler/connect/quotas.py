"""The one table of Amazon Connect API quotas this project relies on.

AWS documents 2 requests/s with a burst of 5 per API, per account and region,
for the APIs below unless Service Quotas says otherwise:
https://docs.aws.amazon.com/connect/latest/adminguide/amazon-connect-service-limits.html#connect-api-quotas
Both the client-side pacer and the emulator's throttling read this table;
`settings.quotas` in the manifests overrides entries for one account.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Quota:
    """A token bucket: `rate` requests per second, up to `burst` at once."""

    rate: float
    burst: int


_DEFAULT = Quota(rate=2.0, burst=5)

DEFAULT_QUOTAS: dict[str, Quota] = {
    **{
        op: _DEFAULT
        for op in (
            "ListUserProficiencies",
            "ListUsers",
            "DescribeUser",
            "SearchUsers",
            "ListPredefinedAttributes",
            "DescribePredefinedAttribute",
            "SearchPredefinedAttributes",
            "CreatePredefinedAttribute",
            "UpdatePredefinedAttribute",
            "DeletePredefinedAttribute",
            "AssociateUserProficiencies",
            "UpdateUserProficiencies",
            "DisassociateUserProficiencies",
            "ListRoutingProfiles",
            "ListUserHierarchyGroups",
            "DescribeInstance",
            "ListInstances",
            "CreateUser",
            "DeleteUser",
        )
    },
    "DescribeContact": Quota(rate=10.0, burst=15),
    "SearchContacts": Quota(rate=0.5, burst=1),
}


def quota_for(operation: str, overrides: dict[str, Quota] | None = None) -> Quota:
    """The quota in force for `operation`: an override, the table, or 2/5."""
    if overrides and operation in overrides:
        return overrides[operation]
    return DEFAULT_QUOTAS.get(operation, _DEFAULT)
