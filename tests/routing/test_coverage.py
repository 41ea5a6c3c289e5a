"""What makes a requirement unmet after a plan."""

from __future__ import annotations

import pytest

from reconciler.routing.coverage import CoverageRow


@pytest.mark.parametrize(
    ("now", "after", "cause"),
    [
        (3, 3, None),
        (3, 1, "plan"),
        (1, 0, "worsened"),
        (1, 1, "already unmet"),
        (0, 1, "already unmet"),
    ],
)
def test_cause_of_an_unmet_row(now: int, after: int, cause: str | None) -> None:
    assert CoverageRow("r", "L = v", 2, now, after, "all users").cause == cause
