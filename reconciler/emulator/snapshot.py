"""Emulator snapshots: an instance's whole state as JSON in the API's own shapes.

    {"Instance": <DescribeInstance Instance>,
     "PredefinedAttributes": [<DescribePredefinedAttribute PredefinedAttribute>],
     "Users": [{"User": <DescribeUser User>, "Proficiencies": [<UserProficiency>]}],
     "RoutingProfiles": [<RoutingProfileSummary>],
     "UserHierarchyGroups": [<HierarchyGroupSummary>],
     "Contacts": [<DescribeContact Contact>]}

Timestamps are ISO 8601 text, as the AWS CLI prints them (epoch numbers are
accepted too), so a snapshot exported from a real instance and one written by
hand load the same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from botocore.model import Shape

from reconciler.atomic import write_json_atomically
from reconciler.emulator.backend import ConnectBackend
from reconciler.emulator.protocol import (
    connect_model,
    convert_timestamps,
    shape_problems,
    to_epoch,
    to_iso,
)


class SnapshotError(Exception):
    """A snapshot that does not fit the API's shapes."""


def _shapes() -> dict[str, Shape]:
    model = connect_model()

    def output(operation: str, member: str) -> Shape:
        return model.operation_model(operation).output_shape.members[member]  # type: ignore[union-attr]

    return {
        "Instance": output("DescribeInstance", "Instance"),
        "PredefinedAttribute": output("DescribePredefinedAttribute", "PredefinedAttribute"),
        "User": output("DescribeUser", "User"),
        "UserProficiency": output("ListUserProficiencies", "UserProficiencyList").member,  # type: ignore[attr-defined]
        "RoutingProfile": output("ListRoutingProfiles", "RoutingProfileSummaryList").member,  # type: ignore[attr-defined]
        "UserHierarchyGroup": output(
            "ListUserHierarchyGroups", "UserHierarchyGroupSummaryList"
        ).member,  # type: ignore[attr-defined]
        "Contact": output("DescribeContact", "Contact"),
    }


def _record(shapes: dict[str, Shape], kind: str, value: Any, where: str) -> dict[str, Any]:
    shape = shapes[kind]
    try:
        record = convert_timestamps(shape, value, to_epoch)
    except (ValueError, TypeError) as exc:
        raise SnapshotError(f"{where}: {exc}") from None
    problems = shape_problems(shape, record, where)
    if problems:
        raise SnapshotError("; ".join(problems[:5]))
    return record


def backend_from_snapshot(data: dict[str, Any], **options: Any) -> ConnectBackend:
    """A backend holding the snapshot's state."""
    shapes = _shapes()
    if not isinstance(data, dict) or "Instance" not in data:
        raise SnapshotError("a snapshot is a JSON object with at least an `Instance`")
    instance = _record(shapes, "Instance", data["Instance"], "Instance")
    if "Id" not in instance:
        raise SnapshotError("Instance.Id: required")
    instance.setdefault("Arn", f"arn:aws:connect:us-east-1:123456789012:instance/{instance['Id']}")
    backend = ConnectBackend(instance, **options)
    for index, item in enumerate(data.get("PredefinedAttributes", [])):
        attribute = _record(shapes, "PredefinedAttribute", item, f"PredefinedAttributes[{index}]")
        attribute.setdefault("Values", {"StringList": []})
        backend.add_attribute(attribute)
    for index, item in enumerate(data.get("RoutingProfiles", [])):
        profile = _record(shapes, "RoutingProfile", item, f"RoutingProfiles[{index}]")
        backend.routing_profiles[profile["Id"]] = profile
    for index, item in enumerate(data.get("UserHierarchyGroups", [])):
        group = _record(shapes, "UserHierarchyGroup", item, f"UserHierarchyGroups[{index}]")
        backend.hierarchy_groups[group["Id"]] = group
    for index, item in enumerate(data.get("Users", [])):
        where = f"Users[{index}]"
        user = _record(shapes, "User", item.get("User"), f"{where}.User")
        if "Username" not in user:
            raise SnapshotError(f"{where}.User.Username: required")
        proficiencies = [
            _record(shapes, "UserProficiency", p, f"{where}.Proficiencies[{n}]")
            for n, p in enumerate(item.get("Proficiencies", []))
        ]
        backend.add_user(user, proficiencies)
    for index, item in enumerate(data.get("Contacts", [])):
        contact = _record(shapes, "Contact", item, f"Contacts[{index}]")
        backend.contacts[contact["Id"]] = contact
    return backend


EMPTY_INSTANCE_ID = "00000000-0000-4000-8000-000000000000"


def empty_backend(**options: Any) -> ConnectBackend:
    """An instance with nothing in it, for `emulator serve` without a snapshot."""
    return backend_from_snapshot(
        {"Instance": {"Id": EMPTY_INSTANCE_ID, "InstanceStatus": "ACTIVE"}}, **options
    )


def load_snapshot(path: Path, **options: Any) -> ConnectBackend:
    """A backend seeded from the snapshot file at `path`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SnapshotError(f"{path}: {exc}") from None
    try:
        return backend_from_snapshot(data, **options)
    except SnapshotError as exc:
        raise SnapshotError(f"{path}: {exc}") from None


def snapshot_of(backend: ConnectBackend) -> dict[str, Any]:
    """The backend's whole state in snapshot form."""
    shapes = _shapes()

    def iso(kind: str, record: dict[str, Any]) -> dict[str, Any]:
        return convert_timestamps(shapes[kind], record, to_iso)

    with backend.lock:
        return {
            "Instance": iso("Instance", backend.instance),
            "PredefinedAttributes": [
                iso("PredefinedAttribute", a) for a in backend.attributes.values()
            ],
            "Users": [
                {
                    "User": iso("User", u["User"]),
                    "Proficiencies": [dict(p) for p in u["Proficiencies"]],
                }
                for u in backend.users.values()
            ],
            "RoutingProfiles": [
                iso("RoutingProfile", r) for r in backend.routing_profiles.values()
            ],
            "UserHierarchyGroups": [
                iso("UserHierarchyGroup", g) for g in backend.hierarchy_groups.values()
            ],
            "Contacts": [iso("Contact", c) for c in backend.contacts.values()],
        }


def save_snapshot(backend: ConnectBackend, path: Path) -> None:
    """Write the backend's state to `path` atomically."""
    write_json_atomically(path, snapshot_of(backend))
