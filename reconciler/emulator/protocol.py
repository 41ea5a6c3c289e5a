"""Connect's REST-JSON wire protocol, driven by the service model botocore ships.

Nothing here knows about users or attributes: requests are routed by each
operation's HTTP method and `requestUri`, parameters are read from the URI,
query string, headers and JSON body according to each member's `location`,
checked against the input shape, and results are serialized by the output
shape. So any client that speaks the protocol (boto3, the AWS CLI) works.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from botocore.model import (
    ListShape,
    MapShape,
    OperationModel,
    ServiceModel,
    Shape,
    StructureShape,
)

from reconciler.service.model import connect_model
from reconciler.service.timestamps import to_epoch


class ApiError(Exception):
    """An error the service returns: its code, message and extra members."""

    def __init__(self, code: str, message: str, **members: Any) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.members = members


def invalid_parameter(operation: OperationModel, message: str) -> ApiError:
    """The 400 error the operation declares for bad input."""
    declared = {shape.name for shape in operation.error_shapes}
    code = (
        "InvalidParameterException"
        if "InvalidParameterException" in declared
        else "InvalidRequestException"
    )
    return ApiError(code, message)


@dataclass
class _Route:
    operation: OperationModel
    pattern: re.Pattern[str]
    labels: list[str]
    literal_segments: int
    first_segment: str  # "" when the path starts with a label


@dataclass(frozen=True)
class EncodedItems:
    """An output list whose items are JSON text already (see `item_json`):
    the backend keeps each user's JSON current as it writes, so a 500-user
    page is a join, not 500 encodings (what lets the emulator serve
    SearchUsers and ListUsers pages at 50,000 users fast)."""

    texts: list[str]


@dataclass
class Response:
    """What goes back on the wire."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def shape_problems(shape: Shape, value: Any, path: str = "") -> list[str]:
    """Everything about `value` that does not fit `shape` (types, required
    members, lengths, ranges, enums). Unknown structure members are ignored,
    as the service ignores them. Timestamps are epoch numbers here."""
    problems: list[str] = []
    where = path or shape.name
    kind = shape.type_name
    meta = shape.metadata
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            return [f"{where}: expected an object"]
        problems += [
            f"{where}.{name}: required"
            for name in shape.required_members
            if value.get(name) is None
        ]
        members = shape.members
        for name, item in value.items():  # what was sent, usually far fewer than members
            if item is not None and name in members:
                problems += shape_problems(members[name], item, f"{where}.{name}")
        return problems
    if isinstance(shape, ListShape):
        if not isinstance(value, list):
            return [f"{where}: expected a list"]
        problems += _length(meta, len(value), where, "items")
        for index, item in enumerate(value):
            problems += shape_problems(shape.member, item, f"{where}[{index}]")
        return problems
    if isinstance(shape, MapShape):
        if not isinstance(value, dict):
            return [f"{where}: expected an object"]
        for key, item in value.items():
            problems += shape_problems(shape.key, key, f"{where}.{key}")
            problems += shape_problems(shape.value, item, f"{where}.{key}")
        return problems
    if kind == "string":
        if not isinstance(value, str):
            return [f"{where}: expected a string"]
        problems += _length(meta, len(value), where, "characters")
        enum = getattr(shape, "enum", None)
        if enum and value not in enum:
            problems.append(f"{where}: {value!r} is not one of {', '.join(enum)}")
        return problems
    if kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            return [f"{where}: expected an integer"]
        return _range(meta, value, where)
    if kind in ("float", "double"):
        if not isinstance(value, int | float) or isinstance(value, bool):
            return [f"{where}: expected a number"]
        if isinstance(value, float) and not math.isfinite(value):
            return [f"{where}: expected a finite number"]
        return _range(meta, value, where)
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{where}: expected a boolean"]
    if kind == "timestamp":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{where}: expected a timestamp"]
    return []  # blob and document members carry anything


def _length(meta: dict[str, Any], length: int, where: str, unit: str) -> list[str]:
    if "min" in meta and length < meta["min"]:
        return [f"{where}: must have at least {meta['min']} {unit}"]
    if "max" in meta and length > meta["max"]:
        return [f"{where}: must have at most {meta['max']} {unit}"]
    return []


def _range(meta: dict[str, Any], value: float, where: str) -> list[str]:
    if "min" in meta and value < meta["min"]:
        return [f"{where}: must be at least {meta['min']}"]
    if "max" in meta and value > meta["max"]:
        return [f"{where}: must be at most {meta['max']}"]
    return []


def has_timestamps(shape: Shape, seen: set[str] | None = None) -> bool:
    """Whether `shape` has a timestamp member at any depth."""
    seen = set() if seen is None else seen
    if shape.name in seen:  # a recursive shape (criteria nest criteria)
        return False
    seen.add(shape.name)
    if isinstance(shape, StructureShape):
        children = list(shape.members.values())
    elif isinstance(shape, ListShape):
        children = [shape.member]
    elif isinstance(shape, MapShape):
        children = [shape.value]
    else:
        return bool(shape.type_name == "timestamp")
    return any(has_timestamps(child, seen) for child in children)


def convert_timestamps(shape: Shape, value: Any, convert: Any, path: str = "") -> Any:
    """A copy of `value` with every timestamp member passed through `convert`;
    a ValueError from `convert` names the member's path."""
    kind = shape.type_name
    if value is None:
        return None
    if kind == "timestamp":
        try:
            return convert(value)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}" if path else str(exc)) from None
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        members = shape.members
        return {
            key: convert_timestamps(members[key], item, convert, f"{path}.{key}")
            if key in members
            else item
            for key, item in value.items()
        }
    if isinstance(shape, ListShape) and isinstance(value, list):
        member = shape.member
        return [
            convert_timestamps(member, item, convert, f"{path}[{index}]")
            for index, item in enumerate(value)
        ]
    if isinstance(shape, MapShape) and isinstance(value, dict):
        return {
            k: convert_timestamps(shape.value, v, convert, f"{path}.{k}") for k, v in value.items()
        }
    return value


class ConnectProtocol:
    """Routes, parses, validates and serializes Connect API calls."""

    def __init__(self, model: ServiceModel | None = None) -> None:
        self.model = model or connect_model()
        self._timestamped: dict[str, bool] = {}  # operation name -> input has timestamps
        # (method, first path segment) -> routes: a request tries a handful
        # of patterns, not every one of the method's hundred-odd.
        self._routes: dict[tuple[str, str], list[_Route]] = {}
        for name in self.model.operation_names:
            operation = self.model.operation_model(name)
            route = _compile(operation)
            key = (operation.http["method"], route.first_segment)
            self._routes.setdefault(key, []).append(route)
        for routes in self._routes.values():
            # /users/{I}/{U}/proficiencies must win over /users/{I}/{U}/{X}
            routes.sort(key=lambda r: -r.literal_segments)

    def match(self, method: str, raw_path: str) -> tuple[OperationModel, dict[str, str]] | None:
        """The operation for this method and path, with its URI labels decoded."""
        first = raw_path.lstrip("/").split("/", 1)[0]
        candidates = self._routes.get((method, first), []) + self._routes.get((method, ""), [])
        for route in candidates:
            found = route.pattern.fullmatch(raw_path)
            if found:
                return route.operation, {
                    label: unquote(part)
                    for label, part in zip(route.labels, found.groups(), strict=True)
                }
        return None

    def parse(
        self,
        operation: OperationModel,
        labels: dict[str, str],
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
    ) -> dict[str, Any]:
        """The call's parameters by member name, validated against the input shape."""
        shape = operation.input_shape
        if shape is None:
            return {}
        params: dict[str, Any] = {}
        lowered = {k.lower(): v for k, v in headers.items()}
        body_members = {}
        for name, member in shape.members.items():
            location = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if location == "uri":
                if wire in labels:
                    params[name] = self._from_text(operation, member, labels[wire], name)
            elif location == "querystring":
                if wire in query:
                    values = query[wire]
                    params[name] = (
                        values
                        if member.type_name == "list"
                        else self._from_text(operation, member, values[-1], name)
                    )
            elif location == "header":
                if wire.lower() in lowered:
                    params[name] = self._from_text(operation, member, lowered[wire.lower()], name)
            else:
                body_members[wire] = name
        if body_members and body.strip():
            try:
                document = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                raise ApiError(
                    "InvalidRequestException", "The request body is not valid JSON."
                ) from None
            if not isinstance(document, dict):
                raise ApiError("InvalidRequestException", "The request body must be a JSON object.")
            for wire, name in body_members.items():
                if wire in document:
                    params[name] = document[wire]
        problems = shape_problems(shape, params, operation.name)
        if problems:
            raise invalid_parameter(operation, "; ".join(problems[:5]))
        if operation.name not in self._timestamped:
            self._timestamped[operation.name] = has_timestamps(shape)
        if not self._timestamped[operation.name]:
            return params  # most inputs have none: skip the walk
        converted: dict[str, Any] = convert_timestamps(shape, params, to_epoch)
        return converted

    def _from_text(self, operation: OperationModel, member: Shape, text: str, name: str) -> Any:
        try:
            if member.type_name in ("integer", "long"):
                return int(text)
            if member.type_name == "boolean":
                return {"true": True, "false": False}[text.lower()]
            if member.type_name == "timestamp":
                return to_epoch(text)
        except (ValueError, KeyError):
            raise invalid_parameter(
                operation, f"{name}: {text!r} is not a valid {member.type_name}"
            ) from None
        return text

    def serialize(self, operation: OperationModel, result: dict[str, Any]) -> Response:
        """The HTTP response for a successful call."""
        shape = operation.output_shape
        headers = {"Content-Type": "application/json"}
        status = operation.http.get("responseCode", 200)
        if shape is None:
            return Response(status, b"{}", headers)
        # One join at the end: a 500-user page is 100 KB, and each
        # concatenation on the way would copy it again.
        parts = ["{"]
        for name, member in shape.members.items():
            value = result.get(name)
            if value is None:
                continue
            location = member.serialization.get("location")
            if location == "header":
                headers[member.serialization.get("name", name)] = str(value)
            elif location == "statusCode":
                status = int(value)
            else:
                if len(parts) > 1:
                    parts.append(",")
                parts += [json.dumps(member.serialization.get("name", name)), ":"]
                if isinstance(value, EncodedItems):
                    parts += ["[", ",".join(value.texts), "]"]
                else:
                    parts.append(_dumps(_to_wire(member, value)))
        parts.append("}")
        return Response(status, "".join(parts).encode(), headers)

    def error(self, error: ApiError) -> Response:
        """The HTTP response for a service error, status from the model."""
        try:
            status = self.model.shape_for(error.code).metadata["error"]["httpStatusCode"]
        except Exception:
            status = 400
        body = {"Message": error.message, **error.members}
        return Response(
            status,
            json.dumps(body).encode(),
            {"Content-Type": "application/json", "x-amzn-ErrorType": error.code},
        )


_COMPACT = json.JSONEncoder(separators=(",", ":"))  # json.dumps would build one per call


def _dumps(value: Any) -> str:
    return _COMPACT.encode(value)


def item_json(shape: Shape, value: Any) -> str:
    """The wire JSON of one item of an output list whose items are `shape`."""
    return _dumps(_to_wire(shape, value))


def output_member_shape(operation: str, member: str) -> Shape:
    """The shape of output member `member` of `operation`."""
    output = connect_model().operation_model(operation).output_shape
    assert isinstance(output, StructureShape)
    return output.members[member]


def output_item_shape(operation: str, member: str) -> Shape:
    """The item shape of output list `member` of `operation`."""
    listed = output_member_shape(operation, member)
    assert isinstance(listed, ListShape)
    return listed.member


def _to_wire(shape: Shape, value: Any) -> Any:
    """JSON for one output member (timestamps as epoch seconds, as rest-json does)."""
    if isinstance(shape, StructureShape):
        members = shape.members
        return {
            members[k].serialization.get("name", k): _to_wire(members[k], v)
            for k, v in value.items()
            if v is not None and k in members
        }
    if isinstance(shape, ListShape):
        return [_to_wire(shape.member, item) for item in value]
    if isinstance(shape, MapShape):
        return {k: _to_wire(shape.value, v) for k, v in value.items()}
    if shape.type_name == "timestamp":
        return to_epoch(value)
    return value


def _compile(operation: OperationModel) -> _Route:
    path = operation.http["requestUri"].split("?", 1)[0]
    labels: list[str] = []
    literal = 0
    parts = []
    for segment in path.strip("/").split("/"):
        found = re.fullmatch(r"\{([^}+]+)(\+?)\}", segment)
        if found:
            labels.append(found.group(1))
            parts.append("(.+)" if found.group(2) else "([^/]+)")
        else:
            literal += 1
            parts.append(re.escape(segment))
    first = "" if path.strip("/").startswith("{") else path.strip("/").split("/", 1)[0]
    return _Route(operation, re.compile("/" + "/".join(parts)), labels, literal, first)
