"""botocore's model of the Connect API, and whether it is the API this tool speaks.

The client and the emulator are both driven by botocore's service model, so
an old botocore means an old API: members the tool sends would be refused
client-side and members the emulator returns would be dropped. Every shape
and member the tool and the emulator rely on is listed here; the first
botocore release that has them all is the declared floor (pyproject.toml).
The floor was found by loading candidate releases' (`pip download --no-deps
botocore==X`) botocore/data/connect/2017-08-08/service-2.json.gz and
checking it with `missing_from`: 1.34.100 lacks 17 requirements (Purposes,
AttributeConfiguration, the 100-character and 500-value limits, ListCondition,
RoutingCriteria, SegmentAttributes' ValueMap/ValueInteger, ...); 1.35.0 14;
1.36.0 to 1.40.25 still the predefined attribute members; 1.40.30 to 1.40.39
only SearchContacts' summary RoutingCriteria; 1.40.40, 1.40.76, 1.41.0,
1.41.6, 1.42.1 and 1.44.5 none.
"""

from __future__ import annotations

from dataclasses import dataclass

import botocore
import botocore.session
from botocore.model import ListShape, MapShape, Shape

# The first releases whose Connect model has every requirement below.
BOTOCORE_FLOOR = "1.40.40"  # 1.40.39 lacks SearchContacts' summary RoutingCriteria
BOTO3_FLOOR = "1.40.40"  # the boto3 release that requires botocore 1.40.40


@dataclass(frozen=True)
class Requirement:
    """A member reached from an operation's input or output: `path` is
    dot-separated member names (lists and maps are stepped through; a last
    `*` is the item of the list before it)."""

    operation: str
    side: str  # "input" or "output"
    path: str
    optional: bool = False  # the member must not be required
    min_max: int | None = None  # its `max` length must be at least this


REQUIREMENTS = (
    *(
        Requirement(operation, "input", "InstanceId")
        for operation in (
            "DescribeInstance",
            "ListUsers",
            "DescribeUser",
            "CreateUser",
            "DeleteUser",
            "ListRoutingProfiles",
            "DescribeRoutingProfile",
            "ListUserHierarchyGroups",
            "DescribeUserHierarchyGroup",
            "ListPredefinedAttributes",
            "DescribePredefinedAttribute",
            "DeletePredefinedAttribute",
            "ListUserProficiencies",
            "AssociateUserProficiencies",
            "UpdateUserProficiencies",
            "DisassociateUserProficiencies",
            "DescribeContact",
        )
    ),
    Requirement("CreatePredefinedAttribute", "input", "Purposes"),
    Requirement("CreatePredefinedAttribute", "input", "AttributeConfiguration"),
    Requirement("CreatePredefinedAttribute", "input", "Values", optional=True),
    Requirement("CreatePredefinedAttribute", "input", "Name", min_max=100),
    Requirement("CreatePredefinedAttribute", "input", "Values.StringList", min_max=500),
    Requirement("CreatePredefinedAttribute", "input", "Values.StringList.*", min_max=100),
    Requirement("UpdatePredefinedAttribute", "input", "Purposes"),
    Requirement("UpdatePredefinedAttribute", "input", "AttributeConfiguration"),
    Requirement("UpdatePredefinedAttribute", "input", "Values", optional=True),
    Requirement("DescribePredefinedAttribute", "output", "PredefinedAttribute.Purposes"),
    Requirement(
        "DescribePredefinedAttribute", "output", "PredefinedAttribute.AttributeConfiguration"
    ),
    Requirement("SearchPredefinedAttributes", "input", "SearchCriteria.OrConditions"),
    Requirement("SearchPredefinedAttributes", "output", "PredefinedAttributes.Purposes"),
    Requirement("ListUserProficiencies", "output", "LastModifiedTime"),
    Requirement("SearchUsers", "input", "SearchCriteria.ListCondition.Conditions.NumberCondition"),
    Requirement("SearchUsers", "input", "SearchCriteria.ListCondition.TargetListType"),
    Requirement("SearchUsers", "input", "SearchCriteria.HierarchyGroupCondition"),
    Requirement("DescribeContact", "output", "Contact.RoutingCriteria.Steps.Expression"),
    Requirement("DescribeContact", "output", "Contact.SegmentAttributes.ValueMap"),
    Requirement("DescribeContact", "output", "Contact.SegmentAttributes.ValueInteger"),
    Requirement("SearchContacts", "input", "SearchCriteria.AgentIds"),
    Requirement("SearchContacts", "input", "Sort.FieldName"),
    Requirement("SearchContacts", "output", "Contacts.RoutingCriteria"),
)


def _step(shape: Shape) -> Shape:
    """Through lists and maps to the structure their items are."""
    while isinstance(shape, ListShape | MapShape):
        shape = shape.member if isinstance(shape, ListShape) else shape.value
    return shape


def _problem(model: botocore.model.ServiceModel, need: Requirement) -> str | None:
    where = f"{need.operation} {need.side} {need.path}"
    if need.operation not in model.operation_names:
        return f"operation {need.operation}"
    operation = model.operation_model(need.operation)
    shape: Shape | None = operation.input_shape if need.side == "input" else operation.output_shape
    parent: Shape | None = None
    member = None
    for name in need.path.split("."):
        if shape is None:
            return where
        if name == "*":
            shape = shape.member if isinstance(shape, ListShape) else None
            continue
        parent = _step(shape)
        members = getattr(parent, "members", {})
        if name not in members:
            return where
        member = name
        shape = members[name]
    if shape is None:
        return where
    if need.optional and member in getattr(parent, "required_members", []):
        return f"{where} (optional)"
    if need.min_max is not None:
        limit = shape.metadata.get("max")
        if limit is None or limit < need.min_max:
            return f"{where} (up to {need.min_max}; this model allows {limit})"
    return None


def missing_from(model: botocore.model.ServiceModel) -> list[str]:
    """What of REQUIREMENTS `model` lacks (empty when it has everything)."""
    return [problem for need in REQUIREMENTS if (problem := _problem(model, need))]


class ModelTooOld(RuntimeError):
    """The installed botocore models an older Connect API than this tool needs."""


def require_model(model: botocore.model.ServiceModel | None = None) -> None:
    """Raise ModelTooOld, naming the versions to install, unless `model`
    (the installed botocore's Connect model by default) has every requirement."""
    if model is None:
        model = botocore.session.get_session().get_service_model("connect")
    lacking = missing_from(model)
    if lacking:
        raise ModelTooOld(
            f"botocore {botocore.__version__} models an older Connect API "
            f"(it lacks {', '.join(lacking[:3])}{' …' if len(lacking) > 3 else ''}); "
            f"install botocore>={BOTOCORE_FLOOR} and boto3>={BOTO3_FLOOR}"
        )


_SERVICE_MODEL: botocore.model.ServiceModel | None = None


def connect_model() -> botocore.model.ServiceModel:
    """botocore's model of the Connect API, checked (loaded once per process)."""
    global _SERVICE_MODEL
    if _SERVICE_MODEL is None:
        model = botocore.session.get_session().get_service_model("connect")
        require_model(model)  # an older model would speak (or emulate) an older API
        _SERVICE_MODEL = model
    return _SERVICE_MODEL


# Connect's read operations are named so; everything else writes.
READ_PREFIXES = ("Describe", "List", "Search", "Get")


def is_read(operation: str) -> bool:
    """Whether `operation` only reads (a dropped connection cannot have changed anything)."""
    return operation.startswith(READ_PREFIXES)
