from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.scoring.domain.aggregates import BucketKey, TermAggregate
from services.scoring.domain.catalog import Catalog
from services.scoring.domain.leadlag import (
    common_period,
    early_warnings,
    lead_lag,
    link_lead_lag,
    pearson,
)

from .factories import kpi_dict, make_kpi

START = datetime(2026, 1, 5, tzinfo=UTC)
LEADING = [3.0, 7.0, 2.0, 9.0, 4.0, 8.0, 1.0, 6.0, 5.0, 10.0, 2.0, 7.0]


def weekly(values: list[float | None]) -> list[tuple[datetime, float | None]]:
    return [(START + timedelta(weeks=i), v) for i, v in enumerate(values)]


def test_pearson_known_values() -> None:
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert pearson([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert pearson([1, 1, 1], [1, 2, 3]) is None
    assert pearson([1], [1]) is None


def test_best_lag_found_on_shifted_series() -> None:
    # lagging = 10 * leading two periods earlier + 3
    lagging: list[float | None] = [None, None] + [10 * x + 3 for x in LEADING[:-2]]
    result = lead_lag(weekly(list(LEADING)), weekly(lagging), max_lag=4, min_points=6)
    assert result is not None
    assert result.best_lag == 2
    assert result.r == pytest.approx(1.0)
    assert result.points == 10
    assert [c.lag for c in result.by_lag] == [0, 1, 2, 3, 4]
    assert [c.points for c in result.by_lag] == [10, 10, 10, 9, 8]


def test_negative_correlation_wins_by_absolute_value() -> None:
    lagging: list[float | None] = [None] + [100 - 5 * x for x in LEADING[:-1]]
    result = lead_lag(weekly(list(LEADING)), weekly(lagging), max_lag=3, min_points=5)
    assert result is not None
    assert result.best_lag == 1
    assert result.r == pytest.approx(-1.0)


def test_missing_periods_reduce_points_and_too_few_is_none() -> None:
    leading = weekly([1.0, 2.0, None, 4.0, 5.0, 3.0])
    lagging = weekly([2.0, 4.0, 6.0, None, 10.0, 6.0])
    result = lead_lag(leading, lagging, max_lag=0, min_points=4)
    assert result is not None
    assert result.points == 4
    assert result.r == pytest.approx(1.0)
    assert lead_lag(leading, lagging, max_lag=2, min_points=5) is None


def test_early_warnings_list_leading_kpis_in_breach() -> None:
    catalog = Catalog.from_definitions(
        [
            kpi_dict(key="leads"),
            kpi_dict(key="sqls"),
            kpi_dict(key="deals", leading_indicators=["sqls", "leads"]),
            kpi_dict(key="revenue", leading_indicators=["deals"]),
        ]
    )
    statuses = {"leads": "breach", "sqls": "breach", "deals": "below_target"}
    assert early_warnings(catalog, statuses) == {"deals": ["sqls", "leads"]}  # type: ignore[arg-type]
    assert early_warnings(catalog, {"deals": "breach"}) == {"revenue": ["deals"]}


# --- links between KPIs with different review periods -----------------------------

MONTHLY_SIGNAL = [3, 7, 2, 9, 4, 8, 1, 6, 5, 10, 2, 7, 4, 9, 3, 8, 6, 1, 7, 5, 2, 9, 6, 3]


def month_start(index: int) -> datetime:
    """The first of the ``index``-th month from January 2025."""
    return datetime(2025 + index // 12, index % 12 + 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("known_lag", [0, 1, 2])
def test_weekly_leading_and_monthly_lagging_correlate_per_month(known_lag: int) -> None:
    """Each month's leads show up in paid customers ``known_lag`` months later."""
    leading = make_kpi(key="leads", window="30d", review_period="week")
    lagging = make_kpi(
        key="paid", window="30d", review_period="month", indicator="lagging",
        formula={"count": {"source": "crm", "type": "paid"}},
    )
    buckets: dict[BucketKey, TermAggregate] = {}
    for index, signal in enumerate(MONTHLY_SIGNAL):
        first = month_start(index)
        # Leads arrive in two weeks of the month; their monthly total is 3 * signal.
        buckets[BucketKey("leads", 0, first + timedelta(days=2))] = TermAggregate(count=signal)
        buckets[BucketKey("leads", 0, first + timedelta(days=16))] = TermAggregate(
            count=2 * signal
        )
        if index >= known_lag:
            paid = 10 * MONTHLY_SIGNAL[index - known_lag] + 3
            buckets[BucketKey("paid", 0, first + timedelta(days=4))] = TermAggregate(count=paid)
    now = datetime(2026, 12, 20, tzinfo=UTC)

    analysis = link_lead_lag(
        leading, lagging, buckets, tz=UTC, now=now, periods=24, max_lag=3, min_points=6
    )

    assert analysis.period == "month"
    assert analysis.result is not None
    assert analysis.result.best_lag == known_lag
    assert analysis.result.r == pytest.approx(1.0)
    assert analysis.result.points == 24 - known_lag


def test_common_period_is_the_coarser() -> None:
    assert common_period("week", "month") == "month"
    assert common_period("quarter", "day") == "quarter"
    assert common_period("week", "week") == "week"
