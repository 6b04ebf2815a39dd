from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.scoring.domain.catalog import ReviewPeriod
from services.scoring.domain.fold import fold
from services.scoring.domain.periods import (
    PeriodRow,
    next_period_start,
    period_analysis,
    period_bounds,
    period_series,
    period_start,
)

from .factories import event, make_catalog, make_kpi

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [
        ("day", datetime(2026, 1, 1, tzinfo=HCM), datetime(2026, 1, 2, tzinfo=HCM)),
        ("week", datetime(2025, 12, 29, tzinfo=HCM), datetime(2026, 1, 5, tzinfo=HCM)),
        ("month", datetime(2026, 1, 1, tzinfo=HCM), datetime(2026, 2, 1, tzinfo=HCM)),
        ("quarter", datetime(2026, 1, 1, tzinfo=HCM), datetime(2026, 4, 1, tzinfo=HCM)),
    ],
)
def test_periods_in_ho_chi_minh(period: ReviewPeriod, start: datetime, end: datetime) -> None:
    # 2025-12-31 17:30 UTC is already 00:30 on 2026-01-01 (a Thursday) in Vietnam
    ts = datetime(2025, 12, 31, 17, 30, tzinfo=UTC)
    assert period_bounds(ts, period, HCM) == (start, end)


def test_same_instant_in_utc_is_still_the_previous_year() -> None:
    ts = datetime(2025, 12, 31, 17, 30, tzinfo=UTC)
    assert period_start(ts, "day", UTC) == datetime(2025, 12, 31, tzinfo=UTC)
    assert period_start(ts, "quarter", UTC) == datetime(2025, 10, 1, tzinfo=UTC)


def test_period_start_is_returned_in_utc() -> None:
    start = period_start(datetime(2025, 12, 31, 17, 30, tzinfo=UTC), "day", HCM)
    assert start.tzinfo is UTC
    assert start == datetime(2025, 12, 31, 17, tzinfo=UTC)


def test_day_and_week_across_berlin_dst() -> None:
    spring = datetime(2026, 3, 29, 12, tzinfo=UTC)
    start, end = period_bounds(spring, "day", BERLIN)
    assert start.astimezone(UTC) == datetime(2026, 3, 28, 23, tzinfo=UTC)
    assert end.astimezone(UTC) == datetime(2026, 3, 29, 22, tzinfo=UTC)
    assert end - start == timedelta(hours=23)
    autumn_start, autumn_end = period_bounds(datetime(2026, 10, 25, 12, tzinfo=UTC), "day", BERLIN)
    assert autumn_end - autumn_start == timedelta(hours=25)
    week_start, week_end = period_bounds(spring, "week", BERLIN)
    assert week_start.astimezone(UTC) == datetime(2026, 3, 22, 23, tzinfo=UTC)  # Monday 23rd
    assert week_end - week_start == timedelta(days=7, hours=-1)
    month_start, month_end = period_bounds(spring, "month", BERLIN)
    assert month_start.astimezone(UTC) == datetime(2026, 2, 28, 23, tzinfo=UTC)
    assert month_end.astimezone(UTC) == datetime(2026, 3, 31, 22, tzinfo=UTC)


def test_next_period_rolls_over_the_year() -> None:
    assert next_period_start(datetime(2026, 12, 1, tzinfo=HCM), "month", HCM) == datetime(
        2027, 1, 1, tzinfo=HCM
    )
    assert next_period_start(datetime(2026, 10, 1, tzinfo=HCM), "quarter", HCM) == datetime(
        2027, 1, 1, tzinfo=HCM
    )


def test_additive_expected_is_prorated_and_scaled_to_the_window() -> None:
    # 100 signups per 1d window, reviewed weekly: a week expects 700
    kpi = make_kpi(window="1d", review_period="week", target=100)
    week1 = datetime(2026, 11, 2, tzinfo=HCM)
    week2 = datetime(2026, 11, 9, tzinfo=HCM)
    now = week2 + timedelta(days=1, hours=18)  # 1.75 days into week 2 (25%)
    rows = period_analysis(kpi, [(week2, 150.0), (week1, 650.0)], now, HCM)
    assert rows == [
        PeriodRow(week1, week2, 1.0, 650.0, 700.0, -50.0, None, None, None),
        PeriodRow(week2, week2 + timedelta(days=7), 0.25, 150.0, 175.0, -25.0,
                  650.0, -500.0, pytest.approx(-500 / 650)),  # type: ignore[arg-type]
    ]


def test_non_additive_expected_is_the_target_and_gap_sign_follows_direction() -> None:
    kpi = make_kpi(
        direction="lower_is_better", minimum=0.05, target=0.02, review_period="month",
        window="30d",
        formula={"ratio": {"numerator": {"count": {"type": "subscription_cancelled"}},
                           "denominator": {"count": {"type": "payment_received"}}}},
    )
    oct_, nov = datetime(2026, 10, 1, tzinfo=BERLIN), datetime(2026, 11, 1, tzinfo=BERLIN)
    now = datetime(2026, 11, 16, tzinfo=BERLIN)
    rows = period_analysis(kpi, [(oct_, 0.04), (nov, None)], now, BERLIN)
    assert [r.expected for r in rows] == [0.02, 0.02]
    assert rows[0].gap == pytest.approx(-0.02)  # worse than expected: negative
    assert rows[1].gap is None
    assert rows[1].change is None
    assert rows[1].elapsed == pytest.approx(15 / 30)


def test_future_periods_expect_nothing_for_additive_kpis() -> None:
    kpi = make_kpi(window="7d", review_period="week", target=70)
    week = datetime(2026, 11, 16, tzinfo=UTC)
    rows = period_analysis(kpi, [(week, None)], week - timedelta(days=1), UTC)
    assert rows[0].expected == 0.0
    assert rows[0].elapsed == 0.0


def test_period_series_from_day_buckets_in_local_time() -> None:
    kpi = make_kpi(window="30d", review_period="week")  # 1d buckets at local midnight
    # Sunday 2026-11-08 23:30 +07 is week 1; Monday 00:30 +07 is week 2
    events = [
        event(at=datetime(2026, 11, 8, 16, 30, tzinfo=UTC)),
        event(at=datetime(2026, 11, 8, 17, 30, tzinfo=UTC)),
        event(at=datetime(2026, 11, 9, 1, 0, tzinfo=UTC)),
    ]
    buckets = fold(events, make_catalog(kpi), HCM).buckets
    series = period_series(
        kpi, buckets, HCM, datetime(2026, 11, 2, tzinfo=HCM), datetime(2026, 11, 20, tzinfo=HCM)
    )
    assert series == [
        (datetime(2026, 11, 2, tzinfo=HCM), 1.0),
        (datetime(2026, 11, 9, tzinfo=HCM), 2.0),
        (datetime(2026, 11, 16, tzinfo=HCM), None),
    ]
