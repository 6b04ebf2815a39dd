"""Window coverage: the share of a KPI's window that has data."""

from __future__ import annotations

from datetime import timedelta

from services.scoring.domain.coverage import is_partial, window_coverage
from tests.unit.scoring.factories import T0

WEEK = timedelta(days=7)


def test_no_data_covers_nothing() -> None:
    assert window_coverage(WEEK, None, T0) == 0.0


def test_data_that_began_inside_the_window_covers_a_share_of_it() -> None:
    assert window_coverage(WEEK, T0 - timedelta(days=1), T0) == 1 / 7
    assert is_partial(window_coverage(WEEK, T0 - timedelta(days=1), T0))


def test_data_older_than_the_window_covers_it_all() -> None:
    assert window_coverage(WEEK, T0 - timedelta(days=7), T0) == 1.0
    assert window_coverage(WEEK, T0 - timedelta(days=90), T0) == 1.0
    assert not is_partial(1.0)


def test_data_since_after_the_moment_asked_covers_nothing() -> None:
    assert window_coverage(WEEK, T0 + timedelta(hours=1), T0) == 0.0
