"""Emulator snapshots: an instance's whole state as JSON in the API's own shapes.

    {"Instance": <DescribeInstance Instance>,
     "Quotas": {"ProficienciesPerUser": 10, "PredefinedAttributesPerInstance": 150},
     "PredefinedAttributes": [<DescribePredefinedAttribute PredefinedAttribute>],
     "Users": [{"User": <DescribeUser User>, "Proficiencies": [<UserProficiency>]}],
     "RoutingProfiles": [<RoutingProfileSummary> or <DescribeRoutingProfile RoutingProfile>],
     "UserHierarchyGroups": [<HierarchyGroupSummary> or <DescribeUserHierarchyGroup
                             HierarchyGroup>],
     "Contacts": [<DescribeContact Contact>]}

Every section but `Instance` is optional; describe records may be bare or
wrapped as the describe call returns them ({"RoutingProfile": {...}}).
Timestamps are ISO 8601 text, as the AWS CLI prints them (epoch numbers are
accepted too), so a snapshot exported from a real instance and one written by
hand load the same way. Anything malformed is one SnapshotError naming the
JSON path; top-level keys the emulator does not use are written back as read.
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

from botocore.model import Shape

from reconciler.emulator.backend import ConnectBackend
from reconciler.emulator.behaviour import Behaviour, BehaviourError
from reconciler.emulator.protocol import (
    convert_timestamps,
    output_item_shape,
    output_member_shape,
    shape_problems,
)
from reconciler.emulator.user_index import shared_level
from reconciler.files import InputFileError, read_utf8, write_json_atomically
from reconciler.service.timestamps import to_epoch, to_iso

Record = dict[str, Any]

# Snapshot `Quotas` member -> ConnectBackend option (account quotas the service
# lets you raise; see reconciler.service.limits for the defaults and their source).
QUOTAS = {
    "ProficienciesPerUser": "max_proficiencies_per_user",
    "PredefinedAttributesPerInstance": "max_attributes",
}
# Larger quotas than this are typing mistakes, not accounts.
MAX_QUOTA = 1_000_000
# Sections the emulator may change and writes back from its state. Every
# other top-level key (RoutingProfiles and UserHierarchyGroups, which the API
# never changes, and keys the emulator does not know) is written back as read.
_STATE_SECTIONS = ("Instance", "Quotas", "PredefinedAttributes", "Users", "Contacts")
_ARN = re.compile(r"arn:[^:]+:[^:]+:[^:]*:[^:]*:.+")


class SnapshotError(Exception):
    """A snapshot that does not fit the API's shapes."""


def _shapes() -> dict[str, Shape]:
    output, item = output_member_shape, output_item_shape
    return {
        "Instance": output("DescribeInstance", "Instance"),
        "PredefinedAttribute": output("DescribePredefinedAttribute", "PredefinedAttribute"),
        "User": output("DescribeUser", "User"),
        "UserProficiency": item("ListUserProficiencies", "UserProficiencyList"),
        "RoutingProfileSummary": item("ListRoutingProfiles", "RoutingProfileSummaryList"),
        "RoutingProfile": output("DescribeRoutingProfile", "RoutingProfile"),
        "HierarchyGroupSummary": item("ListUserHierarchyGroups", "UserHierarchyGroupSummaryList"),
        "HierarchyGroup": output("DescribeUserHierarchyGroup", "HierarchyGroup"),
        "Contact": output("DescribeContact", "Contact"),
    }


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number"
    )


def _epoch(value: Any) -> float:
    """A timestamp as epoch seconds that can also be written back."""
    try:
        epoch = to_epoch(value)
        to_iso(epoch)
    except (OverflowError, OSError) as exc:
        raise ValueError(f"timestamp {value!r:.40} is out of range") from exc
    except ValueError as exc:
        raise ValueError(f"not a timestamp: {value!r:.40}") from exc
    return epoch


def _without_nulls(value: Any) -> Any:
    """`value` with null object members left out: the API omits a member it
    has no value for, so null and absent mean the same."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def _record(shapes: dict[str, Shape], kind: str, value: Any, where: str) -> Record:
    """`value` checked against the API shape `kind`, timestamps as epoch seconds."""
    shape = shapes[kind]
    if not isinstance(value, dict):
        raise SnapshotError(f"{where}: expected an object, got {_json_type(value)}")
    try:
        record: Record = convert_timestamps(shape, _without_nulls(value), _epoch, where)
    except ValueError as exc:
        raise SnapshotError(str(exc)) from None
    problems = shape_problems(shape, record, where)
    if problems:
        raise SnapshotError("; ".join(problems[:5]))
    return record


def _required(record: Record, member: str, where: str) -> str:
    value = record.get(member)
    if not value:
        raise SnapshotError(f"{where}.{member}: required")
    return str(value)


def _check_arn(record: Record, member: str, where: str) -> None:
    arn = record.get(member)
    if arn is not None and not _ARN.fullmatch(arn):
        raise SnapshotError(f"{where}.{member}: {arn!r} is not an ARN (arn:aws:connect:REGION:…)")


def _section(data: Record, key: str, where: str = "") -> list[Any]:
    items = data.get(key, [])
    if not isinstance(items, list):
        raise SnapshotError(f"{where}{key}: expected a list, got {_json_type(items)}")
    return items


def _unique(seen: dict[str, str], key: str, where: str, what: str) -> None:
    if key in seen:
        raise SnapshotError(f"{where}: {what} {key!r} is also at {seen[key]}")
    seen[key] = where


def _quotas(value: Any, overrides: dict[str, int | None]) -> dict[str, int]:
    """Backend options from the snapshot's `Quotas`; given overrides win."""
    if not isinstance(value, dict):
        raise SnapshotError(f"Quotas: expected an object, got {_json_type(value)}")
    options: dict[str, int] = {}
    for key, number in value.items():
        if key not in QUOTAS:
            raise SnapshotError(f"Quotas.{key}: unknown quota (known: {', '.join(QUOTAS)})")
        if type(number) is not int or not 1 <= number <= MAX_QUOTA:
            raise SnapshotError(f"Quotas.{key}: expected a whole number from 1 to {MAX_QUOTA}")
        options[QUOTAS[key]] = number
    options.update({name: number for name, number in overrides.items() if number is not None})
    return options


def _unwrap(item: Any, wrapper: str, where: str) -> tuple[Any, str]:
    """A describe record and its path, also when wrapped as the describe call
    returns it ({"RoutingProfile": {...}})."""
    if isinstance(item, dict) and set(item) == {wrapper}:
        return item[wrapper], f"{where}.{wrapper}"
    return item, where


def _routing_profile(shapes: dict[str, Shape], item: Any, where: str) -> Record:
    """A RoutingProfileSummary from a summary or a DescribeRoutingProfile record."""
    item, where = _unwrap(item, "RoutingProfile", where)
    if isinstance(item, dict) and "RoutingProfileId" in item:
        profile = _record(shapes, "RoutingProfile", item, where)
        _required(profile, "RoutingProfileId", where)
        summary = {
            "Id": profile["RoutingProfileId"],
            "Arn": profile.get("RoutingProfileArn"),
            "Name": profile.get("Name"),
            "LastModifiedTime": profile.get("LastModifiedTime"),
            "LastModifiedRegion": profile.get("LastModifiedRegion"),
        }
        _check_arn(profile, "RoutingProfileArn", where)
    else:
        summary = _record(shapes, "RoutingProfileSummary", item, where)
        _required(summary, "Id", where)
        _check_arn(summary, "Arn", where)
    _required(summary, "Name", where)
    return {k: v for k, v in summary.items() if v is not None}


def _hierarchy_group(shapes: dict[str, Shape], item: Any, where: str) -> Record:
    """A HierarchyGroup record (a summary carries a subset of its members)."""
    item, where = _unwrap(item, "HierarchyGroup", where)
    group = _record(shapes, "HierarchyGroup", item, where)
    _required(group, "Id", where)
    _required(group, "Name", where)
    _check_arn(group, "Arn", where)
    return group


def backend_from_snapshot(
    data: Any,
    *,
    max_proficiencies_per_user: int | None = None,
    max_attributes: int | None = None,
    behaviour: tuple[str, ...] = (),
    **options: Any,
) -> ConnectBackend:
    """A backend holding the snapshot's state. Quotas given here win over the
    snapshot's `Quotas`, which win over the service's defaults; `behaviour`
    (`KEY=CHOICE` items) over the snapshot's `Behaviour` map."""
    shapes = _shapes()
    if not isinstance(data, dict) or "Instance" not in data:
        raise SnapshotError("a snapshot is a JSON object with at least an `Instance`")
    quotas = _quotas(
        data.get("Quotas", {}),
        {
            "max_proficiencies_per_user": max_proficiencies_per_user,
            "max_attributes": max_attributes,
        },
    )
    instance = _record(shapes, "Instance", data["Instance"], "Instance")
    _required(instance, "Id", "Instance")
    _check_arn(instance, "Arn", "Instance")
    instance.setdefault("Arn", f"arn:aws:connect:us-east-1:123456789012:instance/{instance['Id']}")
    try:
        recorded = Behaviour.from_map(data.get("Behaviour", {}))
    except BehaviourError as exc:
        raise SnapshotError(f"Behaviour: {exc}") from None
    answers = Behaviour.parse(behaviour, recorded)  # BehaviourError: the caller's to report
    backend = ConnectBackend(instance, **quotas, **options, behaviour=answers)  # type: ignore[arg-type]  # quotas: int options by name
    backend.kept_snapshot_sections = {
        key: copy.deepcopy(value) for key, value in data.items() if key not in _STATE_SECTIONS
    }
    _load_attributes(backend, shapes, _section(data, "PredefinedAttributes"))
    seen: dict[str, str] = {}
    for index, item in enumerate(_section(data, "RoutingProfiles")):
        where = f"RoutingProfiles[{index}]"
        profile = _routing_profile(shapes, item, where)
        _unique(seen, profile["Id"], where, "routing profile Id")
        backend.routing_profiles[profile["Id"]] = profile
    seen = {}
    for index, item in enumerate(_section(data, "UserHierarchyGroups")):
        where = f"UserHierarchyGroups[{index}]"
        group = _hierarchy_group(shapes, item, where)
        _unique(seen, group["Id"], where, "hierarchy group Id")
        backend.hierarchy_groups[group["Id"]] = group
    _load_users(backend, shapes, _section(data, "Users"))
    seen = {}
    for index, item in enumerate(_section(data, "Contacts")):
        where = f"Contacts[{index}]"
        contact = _record(shapes, "Contact", item, where)
        _unique(seen, _required(contact, "Id", where), where, "contact Id")
        _check_arn(contact, "Arn", where)
        _check_routing_steps(contact, where)
        backend.contacts[contact["Id"]] = contact
    return backend


def _check_routing_steps(contact: Record, where: str) -> None:
    """A contact's routing steps say what they ask for: each an Expression,
    each attribute condition a Name and a Value (or, for preferred agents,
    MatchCriteria). Kinds of expression the model does not know yet are left
    for the reader to skip, as a newer API's would be."""
    steps = (contact.get("RoutingCriteria") or {}).get("Steps") or []
    for index, step in enumerate(steps):
        at = f"{where}.RoutingCriteria.Steps[{index}]"
        if "Expression" not in step:
            raise SnapshotError(f"{at}.Expression: required (what the step asks for)")
        _check_expression(step["Expression"], f"{at}.Expression")


def _check_expression(expression: Record, at: str) -> None:
    for kind in ("AndExpression", "OrExpression"):
        for index, item in enumerate(expression.get(kind) or []):
            _check_expression(item, f"{at}.{kind}[{index}]")
    for kind in ("AttributeCondition", "NotAttributeCondition"):
        condition = expression.get(kind)
        if condition is None or "MatchCriteria" in condition:
            continue
        for member in ("Name", "Value"):
            if member not in condition:
                raise SnapshotError(f"{at}.{kind}.{member}: required")


def _load_attributes(backend: ConnectBackend, shapes: dict[str, Shape], items: list[Any]) -> None:
    names: dict[str, str] = {}
    for index, item in enumerate(items):
        where = f"PredefinedAttributes[{index}]"
        attribute = _record(shapes, "PredefinedAttribute", item, where)
        name = _required(attribute, "Name", where)
        # Names are case-insensitive (predefined-attributes.html).
        _unique(names, name.casefold(), f"{where}.Name", "attribute name (ignoring case)")
        if name.casefold().startswith("aws:"):
            raise SnapshotError(
                f"{where}.Name: {name!r}: aws: names are reserved, never attributes"
            )
        if name.casefold().startswith("connect:") and not attribute.get("Values", {}).get(
            "StringList"
        ):
            raise SnapshotError(
                f"{where}.Values: system attribute {name} has values in every instance; "
                "a snapshot lists them"
            )
        attribute.setdefault("Values", {"StringList": []})
        values: dict[str, str] = {}
        for number, value in enumerate(attribute["Values"].get("StringList", [])):
            _unique(values, value, f"{where}.Values.StringList[{number}]", "value")
        attribute["Values"].setdefault("StringList", [])
        backend.add_attribute(attribute)
    if len(backend.attributes) > backend.max_attributes:
        raise SnapshotError(
            f"PredefinedAttributes: {len(backend.attributes)} attributes, more than the "
            f"instance's quota of {backend.max_attributes} (Quotas.PredefinedAttributesPerInstance)"
        )


def _load_users(backend: ConnectBackend, shapes: dict[str, Shape], items: list[Any]) -> None:
    ids: dict[str, str] = {}
    usernames: dict[str, str] = {}
    for index, item in enumerate(items):
        where = f"Users[{index}]"
        if not isinstance(item, dict):
            raise SnapshotError(
                f'{where}: expected an object {{"User": …, "Proficiencies": […]}}, '
                f"got {_json_type(item)}"
            )
        user = _record(shapes, "User", item.get("User"), f"{where}.User")
        _unique(usernames, _required(user, "Username", f"{where}.User"), where, "username")
        _check_arn(user, "Arn", f"{where}.User")
        _user_id_of_arn(user, f"{where}.User")
        if "Id" in user:
            _unique(ids, user["Id"], where, "user Id")
        proficiencies = [
            _proficiency(backend, shapes, p, f"{where}.Proficiencies[{n}]")
            for n, p in enumerate(_section(item, "Proficiencies", f"{where}."))
        ]
        keys: dict[str, str] = {}
        for n, p in enumerate(proficiencies):
            key = f"{p['AttributeName']}/{p['AttributeValue']}"
            _unique(keys, key, f"{where}.Proficiencies[{n}]", "proficiency")
        if len(proficiencies) > backend.max_proficiencies_per_user:
            raise SnapshotError(
                f"{where}.Proficiencies: {len(proficiencies)} proficiencies, more than the "
                f"cap of {backend.max_proficiencies_per_user} (Quotas.ProficienciesPerUser)"
            )
        backend.add_user(user, proficiencies)


def _user_id_of_arn(user: Record, where: str) -> None:
    """A user's Id is the last part of its ARN (…:instance/ID/agent/USER_ID):
    taken from it when missing, and an error when the two disagree."""
    arn = user.get("Arn")
    if arn is None or "/agent/" not in arn:
        return
    from_arn = arn.rsplit("/agent/", 1)[1]
    if "Id" not in user:
        user["Id"] = from_arn
    elif user["Id"] != from_arn:
        raise SnapshotError(
            f"{where}.Id: {user['Id']!r} is not the id its Arn names ({from_arn!r})"
        )


def _proficiency(
    backend: ConnectBackend, shapes: dict[str, Shape], item: Any, where: str
) -> Record:
    proficiency = _record(shapes, "UserProficiency", item, where)
    attribute = backend.attributes.get(proficiency["AttributeName"].casefold())
    if attribute is None:
        raise SnapshotError(
            f"{where}.AttributeName: no predefined attribute {proficiency['AttributeName']!r}"
        )
    if proficiency["AttributeValue"] not in attribute["Values"]["StringList"]:
        raise SnapshotError(
            f"{where}.AttributeValue: {proficiency['AttributeValue']!r} is not a value of "
            f"{attribute['Name']}"
        )
    if not float(proficiency["Level"]).is_integer():
        raise SnapshotError(f"{where}.Level: the valid values are 1, 2, 3, 4 and 5")
    # One string and one float object for all holders of a value at a level:
    # at 50,000 users x 8 proficiencies, copies were tens of MB.
    return {
        **proficiency,
        "AttributeName": attribute["Name"],
        "AttributeValue": sys.intern(proficiency["AttributeValue"]),
        "Level": shared_level(proficiency["Level"]),
    }


EMPTY_INSTANCE_ID = "00000000-0000-4000-8000-000000000000"


def empty_backend(**options: Any) -> ConnectBackend:
    """An instance with nothing in it, for `emulator serve` without a snapshot."""
    return backend_from_snapshot(
        {"Instance": {"Id": EMPTY_INSTANCE_ID, "InstanceStatus": "ACTIVE"}}, **options
    )


def load_snapshot(path: Path, **options: Any) -> ConnectBackend:
    """A backend seeded from the snapshot file at `path`."""
    try:
        data = json.loads(read_utf8(path))
    except RecursionError:
        raise SnapshotError(f"{path}: JSON nested too deep to be a snapshot") from None
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except InputFileError as exc:
        raise SnapshotError(f"{path}: {exc}") from None
    except ValueError as exc:
        raise SnapshotError(f"{path}: not JSON: {exc}") from None
    try:
        return backend_from_snapshot(data, **options)
    except SnapshotError as exc:
        raise SnapshotError(f"{path}: {exc}") from None


def snapshot_of(backend: ConnectBackend) -> Record:
    """The backend's whole state in snapshot form."""
    shapes = _shapes()

    def iso(kind: str, record: Record) -> Record:
        converted: Record = convert_timestamps(shapes[kind], record, to_iso)
        return converted

    with backend.lock:
        return {
            "Instance": iso("Instance", backend.instance),
            "Quotas": {key: getattr(backend, option) for key, option in QUOTAS.items()},
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
                iso("RoutingProfileSummary", r) for r in backend.routing_profiles.values()
            ],
            "UserHierarchyGroups": [
                iso("HierarchyGroup", g) for g in backend.hierarchy_groups.values()
            ],
            "Contacts": [iso("Contact", c) for c in backend.contacts.values()],
            **copy.deepcopy(backend.kept_snapshot_sections),
        }


def save_snapshot(backend: ConnectBackend, path: Path) -> None:
    """Write the backend's state to `path` atomically."""
    write_json_atomically(path, snapshot_of(backend))
