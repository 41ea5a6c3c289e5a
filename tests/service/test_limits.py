"""The service's limits the tool holds names and values to, against the
service model botocore ships (the API Reference's shapes)."""

from __future__ import annotations

from reconciler.service import limits
from reconciler.service.model import connect_model


def test_length_limits_are_the_service_models() -> None:
    model = connect_model()
    for shape, limit in (
        ("AgentUsername", limits.MAX_USERNAME_LENGTH),
        ("PredefinedAttributeName", limits.MAX_NAME_LENGTH),
        ("PredefinedAttributeStringValue", limits.MAX_NAME_LENGTH),
    ):
        assert model.shape_for(shape).metadata == {"min": 1, "max": limit}, shape


def test_page_sizes_are_the_largest_the_service_model_allows() -> None:
    model = connect_model()
    for operation, page in (
        ("SearchUsers", limits.SEARCH_USERS_PAGE),
        ("SearchPredefinedAttributes", limits.SEARCH_ATTRIBUTES_PAGE),
    ):
        members = model.operation_model(operation).input_shape.members
        assert members["MaxResults"].metadata["max"] == page, operation
