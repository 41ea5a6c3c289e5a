"""The manifest's schema as strict pydantic models (unknown keys are errors)."""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from reconciler.service import limits
from reconciler.service.quotas import DEFAULT_QUOTAS

Level = Annotated[int, Field(strict=True, ge=limits.MIN_LEVEL, le=limits.MAX_LEVEL)]
Text = Annotated[str, Field(min_length=1, max_length=limits.MAX_NAME_LENGTH)]
# Attribute names and values are checked by limits.name_problem (positioned).
Username = Annotated[str, Field(min_length=1, max_length=limits.MAX_USERNAME_LENGTH)]
# attribute -> value -> level, as written under `proficiencies:` and in sets.
ProficiencyMap = dict[str, dict[str, Level]]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class InstanceSpec(_Strict):
    """Which Connect instance the directory manages: an id and region, or an ARN."""

    id: Text | None = None
    arn: (
        Annotated[str, Field(pattern=r"^arn:aws[\w-]*:connect:[\w-]+:\d{12}:instance/.+$")] | None
    ) = None
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")] | None = None

    @model_validator(mode="after")
    def _id_or_arn(self) -> InstanceSpec:
        if (self.id is None) == (self.arn is None):
            raise ValueError("give exactly one of `id` or `arn`")
        return self

    @property
    def instance_id(self) -> str:
        """The bare instance id, also when the manifest gives an ARN."""
        if self.id is not None:
            return self.id
        assert self.arn is not None  # one of the two, checked above
        return self.arn.rsplit("/", 1)[1]

    @property
    def region_name(self) -> str | None:
        """The region from `region`, or the one inside the ARN."""
        return self.region or (self.arn.split(":")[3] if self.arn else None)


class QuotaSpec(_Strict):
    """An override of one API's token bucket (requests per second, burst)."""

    # Bounds a plan can run with: Connect's quotas are 0.5 to a few hundred
    # requests per second, and a tiny rate would wait for ever (or overflow).
    rate: Annotated[float, Field(ge=limits.MIN_QUOTA_RATE, le=limits.MAX_QUOTA_RATE)]
    burst: Annotated[int, Field(ge=1, le=limits.MAX_QUOTA_BURST)]


class SettingsSpec(_Strict):
    """Reconciliation policy; every member is optional."""

    users: Literal["declared", "all"] = "declared"
    prune_attributes: bool = False
    max_change_percent: Annotated[float, Field(ge=0, le=100)] = 30
    min_existing_objects: Annotated[int, Field(ge=0)] = 10
    max_proficiencies_per_user: Annotated[int, Field(ge=1, le=100)] = (
        limits.DEFAULT_MAX_PROFICIENCIES_PER_USER
    )
    # Attributes managed outside these manifests that proficiencies may use;
    # the plan checks that they exist live. Anything else must be declared.
    external_attributes: list[str] = Field(default_factory=list)
    quotas: dict[str, QuotaSpec] = Field(default_factory=dict)
    # Columns of CSV user manifests that are neither ours nor an error
    # (an HR export's employee id, a team lead's notes).
    csv_ignore_columns: list[Text] = Field(default_factory=list)
    # Tag every managed user connect-reconciler:owner=NAME, and refuse users
    # another NAME owns. 256 is TagResource's TagValue maximum (service model).
    owner: Annotated[str, Field(min_length=1, max_length=256)] | None = None

    @field_validator("quotas")
    @classmethod
    def _known_operations(cls, value: dict[str, QuotaSpec]) -> dict[str, QuotaSpec]:
        for operation in value:
            if operation not in DEFAULT_QUOTAS:
                close = difflib.get_close_matches(operation, DEFAULT_QUOTAS, n=1)
                suggestion = f"; did you mean {close[0]}?" if close else ""
                raise ValueError(f"unknown API operation {operation!r}{suggestion}")
        return value


class AttributeSpec(_Strict):
    """A predefined attribute and its allowed values."""

    values: Annotated[list[str], Field(max_length=limits.MAX_VALUES_PER_ATTRIBUTE)]
    purposes: Annotated[list[Text], Field(max_length=limits.MAX_PURPOSES)] = Field(
        default_factory=list
    )
    enable_value_validation_on_association: bool = False


class GroupMatch(_Strict):
    """Selects live users; every given member must match (AND)."""

    routing_profile: Text | None = None
    hierarchy_group: Text | None = None
    username: Text | None = Field(default=None, description="a glob, e.g. '*@emea.example.com'")

    @model_validator(mode="after")
    def _not_empty(self) -> GroupMatch:
        if self.routing_profile is None and self.hierarchy_group is None and self.username is None:
            raise ValueError("give at least one of routing_profile, hierarchy_group, username")
        return self


class GroupSpec(_Strict):
    """Gives proficiency sets to every live user a selector matches."""

    match: GroupMatch
    sets: Annotated[list[str], Field(min_length=1)]


class UserSpec(_Strict):
    """One user's proficiencies: sets in order, then explicit entries."""

    sets: list[str] = Field(default_factory=list)
    proficiencies: ProficiencyMap = Field(default_factory=dict)


class RequirementSpec(_Strict):
    """A routing step that must keep at least `min_agents` eligible agents."""

    name: Text
    # Text form ("Language = Spanish >= 4 AND ...") or a routing step's
    # structured `Expression`; both are parsed by the coverage module.
    expression: Any
    min_agents: Annotated[int, Field(ge=0)] = 1

    @field_validator("expression")
    @classmethod
    def _text_or_structure(cls, value: Any) -> Any:
        if not isinstance(value, str | dict) or not value:
            raise ValueError("expression must be text or a structured routing Expression")
        return value


class ManifestDocument(_Strict):
    """All manifest files merged: the whole desired configuration."""

    instance: InstanceSpec
    settings: SettingsSpec = Field(default_factory=SettingsSpec)
    predefined_attributes: dict[str, AttributeSpec] = Field(default_factory=dict)
    proficiency_sets: dict[str, ProficiencyMap] = Field(default_factory=dict)
    groups: list[GroupSpec] = Field(default_factory=list)
    users: dict[Username, UserSpec] = Field(default_factory=dict)
    routing_requirements: list[RequirementSpec] = Field(default_factory=list)

    @field_validator("users", mode="before")
    @classmethod
    def _empty_user_bodies(cls, value: Any) -> Any:
        # `jane:` with no body manages jane to hold no proficiencies.
        if isinstance(value, dict):
            return {name: {} if body is None else body for name, body in value.items()}
        return value


def known_keys() -> set[str]:
    """Every key name the schema defines, for "did you mean" hints."""
    names: set[str] = set()
    for model in (ManifestDocument, InstanceSpec, QuotaSpec, SettingsSpec, AttributeSpec,
                  GroupMatch, GroupSpec, UserSpec, RequirementSpec):  # fmt: skip
        names.update(model.model_fields)
    return names


SCHEMA_ID = "urn:connect-reconciler:manifest:1"


def json_schema() -> dict[str, Any]:
    """The JSON Schema of one manifest file (every section optional per file)."""
    schema = ManifestDocument.model_json_schema()
    schema["required"] = []  # sections may live in any file; the merge checks completeness
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    # A stable name (no host to serve it from); editors load the file
    # docs/manifest.schema.json through the yaml-language-server modeline.
    schema["$id"] = SCHEMA_ID
    schema["title"] = "connect-reconciler manifest"
    return schema
