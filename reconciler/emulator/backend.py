"""The emulated Connect instance: its state and the operations on it.

State is kept in the API's own shapes (a user is DescribeUser's `User`, an
attribute is DescribePredefinedAttribute's `PredefinedAttribute`), which is
also the snapshot format, so there is nothing to translate. Behaviour follows
the API reference and the admin guide; where they are silent the choice is
written next to the code.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import hmac
import re
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from botocore.model import OperationModel

from reconciler.emulator.behaviour import Behaviour
from reconciler.emulator.consistency import LaggedViews
from reconciler.emulator.protocol import (
    ApiError,
    EncodedItems,
    invalid_parameter,
    item_json,
    output_item_shape,
)
from reconciler.emulator.user_index import (
    UserSearchIndex,
    criteria_problem,
    or_conditions_problem,
    string_matches,
)
from reconciler.service import limits
from reconciler.service.model import connect_model, is_read

Record = dict[str, Any]

DEFAULT_PAGE_SIZE = 100
# SearchPredefinedAttributes' StringCondition FieldName (see _check_attribute_fields).
ATTRIBUTE_SEARCH_FIELD = "name"
MAX_TAGS_PER_RESOURCE = 50

# SearchContacts' TimeRange.Type and Sort.FieldName -> the contact member.
_CONTACT_FIELDS = {
    "INITIATION_TIMESTAMP": ("InitiationTimestamp",),
    "SCHEDULED_TIMESTAMP": ("ScheduledTimestamp",),
    "CONNECTED_TO_AGENT_TIMESTAMP": ("AgentInfo", "ConnectedToAgentTimestamp"),
    "DISCONNECT_TIMESTAMP": ("DisconnectTimestamp",),
    "ENQUEUE_TIMESTAMP": ("QueueInfo", "EnqueueTimestamp"),
    "INITIATION_METHOD": ("InitiationMethod",),
    "CHANNEL": ("Channel",),
}


# What each operation implements, member by member: a dict lists the members
# (nested dicts for structures; a list's items are checked against the same
# spec), ANY takes the member whole. A request naming anything else is refused
# with InvalidParameterException naming it: the emulator never ignores a
# filter it does not understand (docs/design.md §4). Operations absent here are refused.
ANY: Any = True
_ATTRIBUTE_CRITERIA: dict[str, Any] = {
    "StringCondition": {"FieldName": ANY, "Value": ANY, "ComparisonType": ANY}
}
_ATTRIBUTE_CRITERIA["AndConditions"] = _ATTRIBUTE_CRITERIA
_ATTRIBUTE_CRITERIA["OrConditions"] = _ATTRIBUTE_CRITERIA
# SearchContacts' SearchCriteria members and the contact member each matches.
_CONTACT_CRITERIA = {
    "Channels": ("Channel",),
    "InitiationMethods": ("InitiationMethod",),
    "AgentIds": ("AgentInfo", "Id"),
    "QueueIds": ("QueueInfo", "Id"),
}
_PAGED = {"InstanceId": ANY, "NextToken": ANY, "MaxResults": ANY}
IMPLEMENTED_MEMBERS: dict[str, Any] = {
    "DescribeInstance": ANY,
    "ListInstances": ANY,
    "CreateUser": ANY,  # stored as given and returned by DescribeUser
    "DescribeUser": ANY,
    "DeleteUser": ANY,
    "ListUsers": ANY,
    # SearchCriteria's conditions are checked field by field by the matcher;
    # SearchFilter (tag and attribute filters) is not implemented.
    "SearchUsers": {**_PAGED, "SearchCriteria": ANY},
    "ListRoutingProfiles": ANY,
    "ListUserHierarchyGroups": ANY,
    "CreatePredefinedAttribute": ANY,
    "UpdatePredefinedAttribute": ANY,
    "DescribePredefinedAttribute": ANY,
    "ListPredefinedAttributes": ANY,
    "DeletePredefinedAttribute": ANY,
    "SearchPredefinedAttributes": {**_PAGED, "SearchCriteria": _ATTRIBUTE_CRITERIA},
    "AssociateUserProficiencies": ANY,
    "UpdateUserProficiencies": ANY,
    "DisassociateUserProficiencies": ANY,
    "ListUserProficiencies": ANY,
    "DescribeContact": ANY,
    "SearchContacts": {
        **_PAGED,
        "TimeRange": ANY,
        "SearchCriteria": dict.fromkeys(_CONTACT_CRITERIA, ANY),
        "Sort": ANY,
    },
    # Tag operations: every member is implemented.
    "TagResource": ANY,
    "UntagResource": ANY,
    "ListTagsForResource": ANY,
}


def unimplemented_members(value: Any, spec: Any, path: str) -> list[str]:
    """The paths of members in `value` that `spec` does not implement."""
    if spec is ANY:
        return []
    if isinstance(value, list):
        return [
            found
            for index, item in enumerate(value)
            for found in unimplemented_members(item, spec, f"{path}[{index}]")
        ]
    # A dict spec is a structure's, and input was validated against its shape.
    found = []
    for key, item in value.items():
        where = f"{path}.{key}" if path else key
        if key not in spec:
            found.append(where)
        else:
            found += unimplemented_members(item, spec[key], where)
    return found


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _not_found(kind: str, name: str) -> ApiError:
    return ApiError("ResourceNotFoundException", f"{kind} {name} not found.")


class ConnectBackend:
    """One Connect instance in memory, safe to call from many threads."""

    def __init__(
        self,
        instance: Record,
        *,
        max_proficiencies_per_user: int = limits.DEFAULT_MAX_PROFICIENCIES_PER_USER,
        max_attributes: int = limits.DEFAULT_MAX_ATTRIBUTES_PER_INSTANCE,
        clock: Callable[[], float] = time.time,
        search_index_delay: float = 0.0,
        behaviour: Behaviour | None = None,
    ) -> None:
        self.instance = instance
        self.behaviour = behaviour or Behaviour()
        # Service seconds run this many times faster (an emulator's quota scale),
        # so a lag of "5 s" lasts 5 / time_scale real seconds, as the quotas do.
        self.time_scale = 1.0
        self.views = LaggedViews(
            self.behaviour.consistency_lag, self._service_time, self.behaviour.seed
        )
        self._before: dict[tuple[str, str], Record | None] | None = None  # during a write
        self.region = instance.get("Arn", "arn:aws:connect:us-east-1:").split(":")[3] or "us-east-1"
        self.max_proficiencies_per_user = max_proficiencies_per_user
        self.max_attributes = max_attributes
        self.clock = clock
        self.lock = threading.RLock()
        self.attributes: dict[str, Record] = {}  # casefolded name -> PredefinedAttribute
        self.users: dict[str, Record] = {}  # user id -> {"User": ..., "Proficiencies": [...]}
        # ListUsers' items as JSON in listing order (the order users came),
        # each redone by a write to its user (_user_written): a page is then a
        # slice and a join (protocol.EncodedItems).
        self._listing: list[str] = []
        self._listed_at: dict[str, int] = {}  # user id -> its place in _listing
        self._listed_shape = output_item_shape("ListUsers", "UserSummaryList")
        self._reached: set[str] = set()  # users the running call looked up
        self.user_ids: dict[str, str] = {}  # username -> user id
        self.routing_profiles: dict[str, Record] = {}
        self.hierarchy_groups: dict[str, Record] = {}
        self.contacts: dict[str, Record] = {}
        # SearchUsers answers from this index, which may trail writes by
        # `search_index_delay` seconds (see user_index).
        self.search_index = UserSearchIndex(
            clock,
            self._in_group,
            functools.partial(item_json, output_item_shape("SearchUsers", "Users")),
            search_index_delay,
            self.behaviour,
        )
        self.system_values: dict[str, frozenset[str]] = {}  # casefolded name -> values
        # Snapshot sections the API never changes, written back as read.
        self.kept_snapshot_sections: Record = {}
        self._token_key = uuid.uuid4().bytes
        model = connect_model()
        self._handlers: dict[str, Callable[[Record], Record]] = {
            name: getattr(self, _snake(name))
            for name in model.operation_names
            if hasattr(self, _snake(name))
        }

    # -- plumbing ---------------------------------------------------------

    def call(self, operation: OperationModel, params: Record) -> Record:
        """Run one validated call; raise ApiError as the service would."""
        handler = self._handlers.get(operation.name)
        if handler is None:
            raise ApiError(
                "InvalidRequestException", f"{operation.name} is not implemented by this emulator."
            )
        with self.lock:
            self._operation = operation
            self._reached = set()
            writing = not is_read(operation.name)
            self._before = {} if writing and self.views.active else None
            unknown = unimplemented_members(params, IMPLEMENTED_MEMBERS.get(operation.name, {}), "")
            if unknown:
                raise self._bad(
                    f"This emulator does not implement {', '.join(unknown)} "
                    f"of {operation.name}; it refuses rather than ignore it."
                )
            try:
                return handler(params)
            finally:
                if writing:
                    self._travel()
                    # A write reaches a user only by looking it up (_user,
                    # _tagged_user; add_user for a new one): what it may
                    # have changed is redone, even if it failed halfway.
                    for user_id in self._reached:
                        self._user_written(user_id)

    def _service_time(self) -> float:
        return self.clock() * self.time_scale

    def _looked_up(self, key: tuple[str, str], stored: Record | None) -> None:
        """Keep what a write found, so the lag can show it until the write arrives."""
        if self._before is not None and key not in self._before:
            self._before[key] = copy.deepcopy(stored)

    def _travel(self) -> None:
        """Send what this write changed on its way to every read path."""
        if self._before is None:
            return
        for key, before in self._before.items():
            kind, name = key
            after = self.users.get(name) if kind == "user" else self.attributes.get(name)
            if after != before:
                self.views.written(key, before, after)
        self._before = None

    def _users_seen(self, path: str) -> list[Record]:
        """Every user as `path` sees them now (the stored users when nothing lags)."""
        pending = self.views.pending("user")
        if not pending:
            return list(self.users.values())
        seen = []
        for user_id in [*self.users, *(p for p in pending if p not in self.users)]:
            record = self.views.seen(path, ("user", user_id), self.users.get(user_id))
            if record is not None:
                seen.append(record)
        return seen

    def _attributes_seen(self, path: str) -> list[Record]:
        pending = self.views.pending("attribute")
        if not pending:
            return list(self.attributes.values())
        seen = []
        for folded in [*self.attributes, *(p for p in pending if p not in self.attributes)]:
            record = self.views.seen(path, ("attribute", folded), self.attributes.get(folded))
            if record is not None:
                seen.append(record)
        return seen

    def _check_instance(self, params: Record) -> None:
        given = params.get("InstanceId")
        if given not in (self.instance["Id"], self.instance.get("Arn")):
            raise _not_found("Instance", str(given))

    def _stamp(self, record: Record) -> None:
        record["LastModifiedTime"] = self.clock()
        record["LastModifiedRegion"] = self.region

    def _page(
        self, items: Sequence[Any], params: Record, max_default: int = DEFAULT_PAGE_SIZE
    ) -> tuple[list[Any], str | None]:
        """One page and the opaque token for the next. Tokens are signed
        (offset + operation), so a token from another call is refused."""
        size = params.get("MaxResults") or max_default
        offset = 0
        token = params.get("NextToken")
        if token:
            offset = self._read_token(token)
        page = list(items[offset : offset + size])
        following = offset + size
        return page, (self._make_token(following) if following < len(items) else None)

    def _make_token(self, offset: int) -> str:
        payload = f"{self._operation.name}:{offset}".encode()
        signature = hmac.new(self._token_key, payload, hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(payload + b":" + signature).decode()

    def _read_token(self, token: str) -> int:
        try:
            raw = base64.urlsafe_b64decode(token.encode())
            name, offset, signature = raw.split(b":", 2)
            payload = name + b":" + offset
            expected = hmac.new(self._token_key, payload, hashlib.sha256).digest()[:12]
            if name.decode() == self._operation.name and hmac.compare_digest(signature, expected):
                return int(offset)
        except (ValueError, TypeError):
            pass
        raise invalid_parameter(self._operation, "The NextToken is not valid.")

    def _bad(self, message: str) -> ApiError:
        return invalid_parameter(self._operation, message)

    # -- state loading ----------------------------------------------------

    def add_attribute(self, attribute: Record) -> None:
        """Store a PredefinedAttribute record (snapshot loading). A system
        attribute's values as loaded are the service's own (see
        _check_system_update)."""
        folded = attribute["Name"].casefold()
        self.attributes[folded] = attribute
        if limits.is_reserved(folded):
            self.system_values[folded] = frozenset(attribute["Values"]["StringList"])

    def add_user(self, user: Record, proficiencies: list[Record]) -> None:
        """Store a user and its proficiencies (snapshot loading)."""
        user.setdefault("Id", str(uuid.uuid5(uuid.NAMESPACE_URL, user["Username"])))
        user.setdefault("Arn", f"{self.instance['Arn']}/agent/{user['Id']}")
        self._looked_up(("user", user["Id"]), None)
        self.users[user["Id"]] = {"User": user, "Proficiencies": proficiencies}
        self.user_ids[user["Username"]] = user["Id"]
        self._user_written(user["Id"], now=True)

    def _user_written(self, user_id: str, *, now: bool = False) -> None:
        """Bring a user's ListUsers JSON and search index entry up to its
        record, or drop them once it is deleted (the index after its delay
        unless `now`)."""
        record = self.users.get(user_id)
        place = self._listed_at.get(user_id)
        if record is not None:
            text = item_json(self._listed_shape, record["User"])
            if place is None:
                self._listed_at[user_id] = len(self._listing)
                self._listing.append(text)
            else:
                self._listing[place] = text
        elif place is not None:  # deleted: the users after it move up one place
            del self._listing[place]
            self._listed_at = {listed: index for index, listed in enumerate(self.users)}
        arrives = self.views.reaches("SearchUsers", ("user", user_id))
        lag = 0.0 if arrives is None else (arrives - self._service_time()) / self.time_scale
        self.search_index.put(user_id, record, now=now, delay=lag)

    # -- instance ---------------------------------------------------------

    def describe_instance(self, params: Record) -> Record:
        self._check_instance(params)
        return {"Instance": self.instance}

    def list_instances(self, params: Record) -> Record:
        page, token = self._page([self.instance], params, 10)
        return {"InstanceSummaryList": page, "NextToken": token}

    # -- users ------------------------------------------------------------

    def _user(self, params: Record, path: str = "validation") -> Record:
        """A user as `path` sees it, for a read; for a write (path
        "validation") the stored record, once the write's checks see it."""
        self._check_instance(params)
        key = ("user", params["UserId"])
        stored = self.users.get(params["UserId"])
        seen = self.views.seen(path, key, stored)
        if seen is None or (path == "validation" and stored is None):
            raise _not_found("User", params["UserId"])
        self._looked_up(key, stored)
        self._reached.add(params["UserId"])
        return stored if path == "validation" and stored is not None else seen

    def create_user(self, params: Record) -> Record:
        self._check_instance(params)
        username = params["Username"]
        if username in self.user_ids:
            raise ApiError("DuplicateResourceException", f"User {username} already exists.")
        if self.routing_profiles and params["RoutingProfileId"] not in self.routing_profiles:
            raise _not_found("Routing profile", params["RoutingProfileId"])
        group = params.get("HierarchyGroupId")
        if group and group not in self.hierarchy_groups:
            raise _not_found("Hierarchy group", group)
        user = {
            k: copy.deepcopy(v) for k, v in params.items() if k not in ("InstanceId", "Password")
        }
        user["Id"] = str(uuid.uuid4())
        self._stamp(user)
        self.add_user(user, [])
        return {"UserId": user["Id"], "UserArn": user["Arn"]}

    def describe_user(self, params: Record) -> Record:
        return {"User": self._user(params, "DescribeUser")["User"]}

    def delete_user(self, params: Record) -> Record:
        user = self._user(params)["User"]
        del self.users[user["Id"]]
        del self.user_ids[user["Username"]]
        return {}

    def list_users(self, params: Record) -> Record:
        self._check_instance(params)
        listing = self._listing
        if self.views.pending("user"):
            seen = self._users_seen("ListUsers")
            listing = [item_json(self._listed_shape, user["User"]) for user in seen]
        page, token = self._page(listing, params)
        return {
            "UserSummaryList": EncodedItems(page),
            "NextToken": token,
        }

    def search_users(self, params: Record) -> Record:
        self._check_instance(params)
        if params.get("SearchFilter") is not None:
            # Not implemented: refused, so a filter is never silently ignored.
            raise self._bad("SearchFilter is not supported by this emulator.")
        criteria = params.get("SearchCriteria") or {}
        problem = criteria_problem(criteria, self.behaviour)
        if problem:
            raise self._bad(problem)
        matched = self.search_index.search(criteria)
        page, token = self._page(matched, params)
        return {
            "Users": EncodedItems(self.search_index.texts(page)),
            "NextToken": token,
            "ApproximateTotalCount": len(matched),
        }

    def _in_group(self, user: Record, condition: Record) -> bool:
        group_id = user.get("HierarchyGroupId")
        wanted = condition.get("Value")
        if condition.get("HierarchyGroupMatchType") != "WITH_CHILD_GROUPS" or group_id is None:
            return group_id == wanted
        path = self.hierarchy_groups.get(group_id, {}).get("HierarchyPath", {})
        return group_id == wanted or any(
            isinstance(level, dict) and level.get("Id") == wanted for level in path.values()
        )

    def list_routing_profiles(self, params: Record) -> Record:
        self._check_instance(params)
        page, token = self._page(list(self.routing_profiles.values()), params)
        return {"RoutingProfileSummaryList": page, "NextToken": token}

    def list_user_hierarchy_groups(self, params: Record) -> Record:
        self._check_instance(params)
        page, token = self._page(list(self.hierarchy_groups.values()), params)
        return {"UserHierarchyGroupSummaryList": page, "NextToken": token}

    # -- predefined attributes --------------------------------------------

    def _attribute(self, params: Record, path: str = "validation") -> Record:
        """An attribute as `path` sees it (a write: the stored one, once its
        checks see it)."""
        self._check_instance(params)
        key = ("attribute", params["Name"].casefold())
        stored = self.attributes.get(key[1])
        seen = self.views.seen(path, key, stored)
        if seen is None or (path == "validation" and stored is None):
            raise _not_found("Predefined attribute", params["Name"])
        self._looked_up(key, stored)
        return stored if path == "validation" and stored is not None else seen

    def _check_values(self, values: list[str], system: frozenset[str] = frozenset()) -> None:
        """Values an attribute may take; `system` ones are the service's own."""
        seen: set[str] = set()
        for value in values:
            problem = None if value in system else limits.name_problem(value)
            if problem:
                raise self._bad(f"Value {value!r}: {problem}")
            if value in seen:
                raise self._bad(f"Value {value!r} is listed more than once.")
            seen.add(value)

    def create_predefined_attribute(self, params: Record) -> Record:
        self._check_instance(params)
        name = params["Name"]
        problem = limits.name_problem(name)
        if problem:
            raise self._bad(f"Name {name!r}: {problem}")
        # "you can't create a new predefined attribute named language" when
        # Language exists (predefined-attributes.html): names are case-insensitive.
        if name.casefold() in self.attributes:
            raise ApiError(
                "DuplicateResourceException", f"Predefined attribute {name} already exists."
            )
        if len(self.attributes) >= self.max_attributes:
            raise ApiError(
                "LimitExceededException",
                f"An instance can have at most {self.max_attributes} predefined attributes.",
            )
        values = (params.get("Values") or {}).get("StringList", [])
        self._check_values(values)
        self._looked_up(("attribute", name.casefold()), None)
        attribute: Record = {"Name": name, "Values": {"StringList": list(values)}}
        if params.get("Purposes"):
            attribute["Purposes"] = list(params["Purposes"])
        attribute["AttributeConfiguration"] = {
            "EnableValueValidationOnAssociation": bool(
                (params.get("AttributeConfiguration") or {}).get(
                    "EnableValueValidationOnAssociation", False
                )
            ),
            "IsReadOnly": False,
        }
        self._stamp(attribute)
        self.add_attribute(attribute)
        return {}

    def _check_system_update(self, attribute: Record, params: Record) -> None:
        """Refuse an update of a system attribute unless it only sets custom values.
        "You can't change or delete connect: names and values", but "you can
        add 500 custom values to connect:Language"; connect:Subtype cannot
        change (predefined-attributes.html, System predefined attributes).
        Undocumented, chosen strictly: the values the attribute had when the
        emulator loaded are the system ones; settings must stay as they are."""
        name = attribute["Name"]
        if not limits.takes_custom_values(name):
            raise self._bad(f"{name} is a system attribute and cannot be changed.")
        unchanged = {
            "Purposes": attribute.get("Purposes", []),
            "AttributeConfiguration": {
                "EnableValueValidationOnAssociation": attribute.get(
                    "AttributeConfiguration", {}
                ).get("EnableValueValidationOnAssociation", False)
            },
        }
        for member, current in unchanged.items():
            if member in params and params[member] != current:
                raise self._bad(f"The {member} of system attribute {name} cannot be changed.")
        if "Values" not in params:
            return
        system = self.system_values.get(name.casefold(), frozenset())
        dropped = sorted(system - set(params["Values"].get("StringList", [])))
        if dropped:
            raise self._bad(f"System values of {name} cannot be removed: {', '.join(dropped)}.")

    def update_predefined_attribute(self, params: Record) -> Record:
        attribute = self._attribute(params)
        system = self.system_values.get(attribute["Name"].casefold(), frozenset())
        if limits.is_reserved(attribute["Name"]):
            self._check_system_update(attribute, params)
        if "Values" in params:
            values = params["Values"].get("StringList", [])
            self._check_values(values, system)
            removed = set(attribute["Values"]["StringList"]) - set(values)
            holders = self._holders(attribute["Name"], removed)
            if holders and self.behaviour.remove_held_value == "refused":
                # Not documented (behaviour remove-held-value): by default we
                # refuse rather than leave users holding a value that no
                # longer exists, the conservative reading.
                raise ApiError(
                    "InvalidRequestException",
                    f"Values of {attribute['Name']} are still held by {len(holders)} user(s).",
                )
            attribute["Values"] = {"StringList": list(values)}
        if "Purposes" in params:
            attribute["Purposes"] = list(params["Purposes"])
        if "AttributeConfiguration" in params:
            attribute.setdefault("AttributeConfiguration", {})[
                "EnableValueValidationOnAssociation"
            ] = bool(
                params["AttributeConfiguration"].get("EnableValueValidationOnAssociation", False)
            )
        self._stamp(attribute)
        return {}

    def _holders(self, name: str, values: Iterable[str] | None = None) -> list[str]:
        wanted = None if values is None else set(values)
        folded = name.casefold()
        return [
            user["User"]["Username"]
            for user in self._users_seen("validation")
            if any(
                p["AttributeName"].casefold() == folded
                and (wanted is None or p["AttributeValue"] in wanted)
                for p in user["Proficiencies"]
            )
        ]

    def describe_predefined_attribute(self, params: Record) -> Record:
        return {"PredefinedAttribute": self._attribute(params, "DescribePredefinedAttribute")}

    def list_predefined_attributes(self, params: Record) -> Record:
        self._check_instance(params)
        page, token = self._page(self._attributes_seen("ListPredefinedAttributes"), params)
        return {"PredefinedAttributeSummaryList": page, "NextToken": token}

    def search_predefined_attributes(self, params: Record) -> Record:
        self._check_instance(params)
        criteria = params.get("SearchCriteria") or {}
        self._check_attribute_fields(criteria)
        matched = [
            a
            for a in self._attributes_seen("SearchPredefinedAttributes")
            if _attribute_matches(a, criteria, self.behaviour)
        ]
        page, token = self._page(matched, params)
        return {
            "PredefinedAttributes": page,
            "NextToken": token,
            "ApproximateTotalCount": len(matched),
        }

    def _check_attribute_fields(self, criteria: Record) -> None:
        # "The currently supported values for FieldName are name and description"
        # (https://docs.rs/aws-sdk-connect/1.21.0/aws_sdk_connect/types/struct.PredefinedAttributeSearchCriteria.html).
        # Attributes carry no description in the model, so only `name` is implemented.
        problem = or_conditions_problem(criteria, self.behaviour, "SearchCriteria")
        if problem:
            raise self._bad(problem)
        for condition in criteria.get("AndConditions") or []:
            self._check_attribute_fields(condition)
        for condition in criteria.get("OrConditions") or []:
            self._check_attribute_fields(condition)
        field = (criteria.get("StringCondition") or {}).get("FieldName")
        if "StringCondition" in criteria and field != ATTRIBUTE_SEARCH_FIELD:
            raise self._bad(
                f"StringCondition FieldName {field!r} is not implemented by this emulator "
                f"for SearchPredefinedAttributes (it implements {ATTRIBUTE_SEARCH_FIELD!r})."
            )

    def delete_predefined_attribute(self, params: Record) -> Record:
        attribute = self._attribute(params)
        if limits.is_reserved(attribute["Name"]):
            raise self._bad(f"{attribute['Name']} is a system attribute and cannot be deleted.")
        # "You can only delete an attribute if it's not associated with any agent."
        holders = self._holders(attribute["Name"])
        if holders:
            raise ApiError(
                "ResourceInUseException",
                f"Predefined attribute {attribute['Name']} is held by {len(holders)} user(s).",
                ResourceId=attribute["Name"],
            )
        del self.attributes[attribute["Name"].casefold()]
        return {}

    # -- proficiencies ----------------------------------------------------

    def _resolve(self, proficiency: Record) -> tuple[str, str]:
        """The stored (name, value) an input proficiency refers to. What only
        the lag hides is a ResourceNotFoundException, the error the API
        Reference's eventual-consistency page names; what does not exist at
        all is an invalid parameter."""
        key = ("attribute", proficiency["AttributeName"].casefold())
        stored = self.attributes.get(key[1])
        attribute = self.views.seen("validation", key, stored)
        value = proficiency["AttributeValue"]
        if attribute is None or value not in attribute["Values"]["StringList"]:
            if stored is not None and value in stored["Values"]["StringList"]:
                raise ApiError(
                    "ResourceNotFoundException",
                    f"Value {value} of predefined attribute {stored['Name']} not found.",
                )
            if attribute is None:
                raise self._bad(
                    f"Predefined attribute {proficiency['AttributeName']} does not exist."
                )
            raise self._bad(f"Value {value} does not exist for {attribute['Name']}.")
        return attribute["Name"], value

    def _check_level(self, proficiency: Record) -> float:
        level = float(proficiency["Level"])
        # API_UserProficiency: "The valid values are 1, 2, 3, 4 and 5."
        if not level.is_integer():
            raise self._bad(f"Level {level} is not valid; the valid values are 1, 2, 3, 4 and 5.")
        return level

    def _changes(
        self, params: Record
    ) -> tuple[Record, dict[tuple[str, str], Record], list[tuple[str, str]]]:
        """The user, its proficiencies by key, and the keys the call names
        (each once), validated before anything changes: calls are atomic."""
        user = self._user(params)
        seen = self.views.seen("validation", ("user", params["UserId"]), user) or user
        checked = {(p["AttributeName"], p["AttributeValue"]) for p in seen["Proficiencies"]}
        # held: what the write's checks see, each mapped to the stored entry
        # it changes (the write itself lands on the stored record)
        stored = {(p["AttributeName"], p["AttributeValue"]): p for p in user["Proficiencies"]}
        held = {key: stored.get(key, {}) for key in checked}
        keys = [self._resolve(p) for p in params["UserProficiencies"]]
        if len(set(keys)) != len(keys):
            raise self._bad("The same proficiency is listed more than once.")
        return user, held, keys

    def associate_user_proficiencies(self, params: Record) -> Record:
        user, held, keys = self._changes(params)
        levels = [self._check_level(p) for p in params["UserProficiencies"]]
        already = [f"{a}/{v}" for a, v in keys if (a, v) in held]
        if already and self.behaviour.associate_held == "refused":
            # Not documented (behaviour associate-held): by default an
            # association that exists is an error, so that clients must not
            # rely on re-associating to change a level.
            raise self._bad(f"Proficiencies already associated: {', '.join(already)}.")
        added = [key for key in keys if key not in held]
        if len(held) + len(added) > self.max_proficiencies_per_user:
            raise self._bad(
                f"A user can have at most {self.max_proficiencies_per_user} proficiencies; "
                f"this user has {len(held)} and the request adds {len(added)}."
            )
        entries = {(p["AttributeName"], p["AttributeValue"]): p for p in user["Proficiencies"]}
        for (name, value), level in zip(keys, levels, strict=True):
            if (name, value) in entries:  # held (or not yet seen held): its level changes
                entries[(name, value)]["Level"] = level
            else:
                user["Proficiencies"].append(
                    {"AttributeName": name, "AttributeValue": value, "Level": level}
                )
        self._stamp(user["User"])
        return {}

    def update_user_proficiencies(self, params: Record) -> Record:
        user, held, keys = self._changes(params)
        levels = [self._check_level(p) for p in params["UserProficiencies"]]
        missing = [f"{a}/{v}" for a, v in keys if (a, v) not in held]
        if missing:
            raise self._bad(f"Proficiencies not associated with the user: {', '.join(missing)}.")
        for key, level in zip(keys, levels, strict=True):
            if held[key]:  # not an entry the lag still shows but a write removed
                held[key]["Level"] = level
        self._stamp(user["User"])
        return {}

    def disassociate_user_proficiencies(self, params: Record) -> Record:
        user, held, keys = self._changes(params)
        missing = [f"{a}/{v}" for a, v in keys if (a, v) not in held]
        if missing:
            # Not documented; strict like Update, so a double disassociation shows.
            raise self._bad(f"Proficiencies not associated with the user: {', '.join(missing)}.")
        gone = set(keys)
        user["Proficiencies"] = [
            p
            for p in user["Proficiencies"]
            if (p["AttributeName"], p["AttributeValue"]) not in gone
        ]
        self._stamp(user["User"])
        return {}

    def list_user_proficiencies(self, params: Record) -> Record:
        user = self._user(params, "ListUserProficiencies")
        page, token = self._page(user["Proficiencies"], params)
        return {
            "UserProficiencyList": page,
            "NextToken": token,
            "LastModifiedTime": user["User"].get("LastModifiedTime"),
            "LastModifiedRegion": user["User"].get("LastModifiedRegion"),
        }

    # -- tags (users only) ------------------------------------------------
    # TagResource, UntagResource, ListTagsForResource take the resource's ARN
    # (https://docs.aws.amazon.com/connect/latest/APIReference/API_TagResource.html);
    # a user's tags are DescribeUser's and SearchUsers' `Tags`. Only users of
    # this instance are taggable here; any other ARN is ResourceNotFound.

    def _tagged_user(self, params: Record, path: str = "validation") -> Record:
        """The user whose ARN `params` names, as `path` sees it (a write: stored)."""
        arn = params["resourceArn"]
        for user_id, user in self.users.items():
            record: Record = user["User"]
            if record.get("Arn") == arn:
                seen = self.views.seen(path, ("user", user_id), user)
                if seen is None:
                    break
                self._looked_up(("user", user_id), user)
                self._reached.add(user_id)
                return record if path == "validation" else dict(seen["User"])
        raise _not_found("Resource", arn)

    def _check_tag(self, key: str, value: str | None = None) -> None:
        # The service model's TagKey pattern ^(?!aws:)[\p{L}\p{Z}\p{N}_.:/=+\-@]*$
        # (lengths 1-128, TagValue up to 256, are checked from the model).
        # Keys and values "cannot be prefixed with aws:" (AWS::Connect::User Tag,
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-connect-user-tag.html);
        # AWS's tag restrictions reserve it in any letter case, so do we.
        for text in (key, value or ""):
            if text.casefold().startswith("aws:"):
                raise self._bad(f"Tag {key!r}: the aws: prefix is reserved.")
        if not all(unicodedata.category(c)[0] in "LZN" or c in "_.:/=+-@" for c in key):
            raise self._bad(f"Tag key {key!r} has characters tags do not allow.")

    def tag_resource(self, params: Record) -> Record:
        user = self._tagged_user(params)
        for key, value in params["tags"].items():
            self._check_tag(key, value)
        tags = {**user.get("Tags", {}), **params["tags"]}
        # TagMap allows 1-50 entries (service model); AWS's tag restrictions
        # allow 50 per resource: more in all is refused (strict; undocumented code).
        if not params["tags"] or len(tags) > MAX_TAGS_PER_RESOURCE:
            raise self._bad(f"A resource has 1 to {MAX_TAGS_PER_RESOURCE} tags.")
        user["Tags"] = tags
        return {}

    def untag_resource(self, params: Record) -> Record:
        user = self._tagged_user(params)
        for key in params["tagKeys"]:
            self._check_tag(key)
        tags = {k: v for k, v in user.get("Tags", {}).items() if k not in params["tagKeys"]}
        if tags:
            user["Tags"] = tags
        else:
            user.pop("Tags", None)
        return {}

    def list_tags_for_resource(self, params: Record) -> Record:
        return {"tags": dict(self._tagged_user(params, "ListTagsForResource").get("Tags", {}))}

    # -- contacts ---------------------------------------------------------

    def describe_contact(self, params: Record) -> Record:
        self._check_instance(params)
        contact = self.contacts.get(params["ContactId"])
        if contact is None:
            raise _not_found("Contact", params["ContactId"])
        return {"Contact": contact}

    def search_contacts(self, params: Record) -> Record:
        self._check_instance(params)
        window = params["TimeRange"]
        if window["StartTime"] > window["EndTime"]:
            raise self._bad("TimeRange StartTime must not be after EndTime.")
        path = _CONTACT_FIELDS[window["Type"]]
        criteria = params.get("SearchCriteria") or {}
        matched = [
            contact
            for contact in self.contacts.values()
            if window["StartTime"] <= (_dig(contact, path) or -1) <= window["EndTime"]
            and _contact_matches(contact, criteria)
        ]
        sort = params.get("Sort") or {}
        field = sort.get("FieldName", "INITIATION_TIMESTAMP")
        if field not in _CONTACT_FIELDS:
            # EXPIRY_TIMESTAMP: the Contact shape has no member to sort by.
            raise self._bad(f"Sort FieldName {field} is not implemented by this emulator.")
        key = _CONTACT_FIELDS[field]
        # Without a Sort the order is undocumented (behaviour contact-order);
        # contacts missing the field come last when newest first.
        newest_first = (
            sort["Order"] != "ASCENDING" if sort else self.behaviour.contact_order == "newest-first"
        )
        matched.sort(key=lambda c: _present_first(_dig(c, key)), reverse=newest_first)
        page, token = self._page(matched, params)
        # Each summary is the stored contact cut to ContactSearchSummary's
        # members by the serializer, RoutingCriteria included ("latest routing
        # criteria on the contact"):
        # https://docs.aws.amazon.com/connect/latest/APIReference/API_ContactSearchSummary.html
        return {"Contacts": page, "NextToken": token, "TotalCount": len(matched)}


def _dig(record: Record, path: tuple[str, ...]) -> Any:
    found: Any = record
    for key in path:
        if not isinstance(found, dict):
            return None
        found = found.get(key)
    return found


def _present_first(value: Any) -> tuple[bool, Any]:
    # Sorted descending, (False, ...) lands last: contacts missing the field.
    return (value is not None, 0 if value is None else value)


def _contact_matches(contact: Record, criteria: Record) -> bool:
    return all(
        not criteria.get(key) or _dig(contact, path) in criteria[key]
        for key, path in _CONTACT_CRITERIA.items()
    )


def _attribute_matches(attribute: Record, criteria: Record, behaviour: Behaviour) -> bool:
    if criteria.get("OrConditions") and not any(
        _attribute_matches(attribute, c, behaviour) for c in criteria["OrConditions"]
    ):
        return False
    if not all(
        _attribute_matches(attribute, c, behaviour) for c in criteria.get("AndConditions") or []
    ):
        return False
    condition = criteria.get("StringCondition")
    return condition is None or string_matches(condition, attribute["Name"], behaviour)
