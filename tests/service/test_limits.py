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
