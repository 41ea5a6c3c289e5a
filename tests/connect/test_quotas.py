"""The client-side pacing bucket for a service quota."""

from __future__ import annotations

import pytest

from reconciler.service.quotas import Quota, pacing_quota


def test_pacing_is_at_the_rate_with_one_burst_token_in_reserve() -> None:
    assert pacing_quota(Quota(2.0, 5)) == Quota(2.0, 4)
    assert pacing_quota(Quota(10.0, 15)) == Quota(10.0, 14)


def test_a_single_token_burst_is_paced_under_its_rate() -> None:
    paced = pacing_quota(Quota(0.5, 1))
    assert paced.burst == 1
    assert paced.rate == pytest.approx(0.475)
