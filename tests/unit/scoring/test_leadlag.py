from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.scoring.domain.catalog import Catalog
from services.scoring.domain.leadlag import early_warnings, lead_lag, pearson

from .factories import kpi_dict

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
