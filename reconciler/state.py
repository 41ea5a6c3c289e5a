"""The value types shared by desired state (manifests) and live state (Connect).

Both sides are loaded into the same types so that the diff is symmetrical and
can be tested without any API.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

# (attribute name, attribute value); a user holds at most one level for each.
ProficiencyKey = tuple[str, str]
Proficiencies = dict[ProficiencyKey, float]


@dataclass(frozen=True)
class Attribute:
    """A predefined attribute as the service stores it."""

    name: str
    values: tuple[str, ...]
    purposes: tuple[str, ...] = ()
    enable_value_validation_on_association: bool = False


@dataclass
class UserState:
    """A user's proficiencies and, when read live, their id."""

    username: str
    proficiencies: Proficiencies = field(default_factory=dict)
    user_id: str | None = None


@dataclass
class RoutingState:
    """Attributes by name and users by username: one side of a diff."""

    attributes: dict[str, Attribute] = field(default_factory=dict)
    users: dict[str, UserState] = field(default_factory=dict)


@dataclass(frozen=True)
class UserSelector:
    """Selects live users by routing profile, hierarchy group (and its child
    groups) and a username glob; every given member must match."""

    routing_profile: str | None = None
    hierarchy_group: str | None = None
    username: str | None = None  # a glob, e.g. '*@emea.example.com'

    @property
    def server_side(self) -> bool:
        """Whether the service filters (by profile or group) or only the glob does."""
        return self.routing_profile is not None or self.hierarchy_group is not None

    def describe(self) -> str:
        """`(routing_profile=X, username=*@emea…)`: the selector as written."""
        given = [
            f"{name}={value}"
            for name, value in (
                ("routing_profile", self.routing_profile),
                ("hierarchy_group", self.hierarchy_group),
                ("username", self.username),
            )
            if value is not None
        ]
        return f"({', '.join(given)})"

    def matches_username(self, username: str) -> bool:
        return self.username is None or fnmatch.fnmatchcase(username, self.username)
