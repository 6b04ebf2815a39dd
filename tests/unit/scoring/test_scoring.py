from __future__ import annotations

from datetime import date

import pytest

from services.scoring.domain.scoring import (
    Assessment,
    Expiry,
    ScoreEntry,
    assess,
    expiry,
    is_expired,
    score_entry,
    scorecard,
)

from .factories import make_kpi

HIGHER = make_kpi(minimum=50, target=100)
LOWER = make_kpi(direction="lower_is_better", minimum=120, target=30)
BAND = make_kpi(direction="target_band", band={"low": 90, "high": 110}, minimum=20, target=100)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, Assessment("no_data", None)),
        (49.9, Assessment("breach", 0.0)),
        (50.0, Assessment("below_target", 0.0)),
        (75.0, Assessment("below_target", 50.0)),
        (99.0, Assessment("below_target", 98.0)),
        (100.0, Assessment("on_target", 100.0)),
        (250.0, Assessment("on_target", 100.0)),
        (0.0, Assessment("breach", 0.0)),
    ],
)
def test_higher_is_better(value: float | None, expected: Assessment) -> None:
    assert assess(HIGHER, value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, Assessment("no_data", None)),
        (121.0, Assessment("breach", 0.0)),
        (120.0, Assessment("below_target", 0.0)),
        (75.0, Assessment("below_target", 50.0)),
        (30.0, Assessment("on_target", 100.0)),
        (5.0, Assessment("on_target", 100.0)),
    ],
)
def test_lower_is_better(value: float | None, expected: Assessment) -> None:
    assert assess(LOWER, value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (100.0, Assessment("on_target", 100.0)),
        (90.0, Assessment("on_target", 100.0)),
        (110.0, Assessment("on_target", 100.0)),
        (115.0, Assessment("below_target", 75.0)),
        (80.0, Assessment("below_target", 50.0)),
        (70.0, Assessment("below_target", 0.0)),
        (69.0, Assessment("breach", 0.0)),
        (131.0, Assessment("breach", 0.0)),
    ],
)
def test_target_band(value: float, expected: Assessment) -> None:
    assert assess(BAND, value) == expected


def test_minimum_equal_to_target() -> None:
    kpi = make_kpi(minimum=10, target=10)
    assert assess(kpi, 10) == Assessment("on_target", 100.0)
    assert assess(kpi, 9.99) == Assessment("breach", 0.0)
    flat_lower = make_kpi(direction="lower_is_better", minimum=10, target=10)
    assert assess(flat_lower, 10.01) == Assessment("breach", 0.0)


def entry(key: str, perspective: str, weight: float, score: float | None) -> ScoreEntry:
    status = "no_data" if score is None else "below_target"
    return ScoreEntry(key, perspective, weight, status, score)  # type: ignore[arg-type]


def test_scorecard_weighted_means_skip_no_data() -> None:
    card = scorecard(
        [
            entry("revenue", "financial", 3, 100.0),
            entry("cac", "financial", 1, 20.0),
            entry("burn", "financial", 5, None),
            entry("churn", "customer", 2, 50.0),
            entry("sessions", "internal_process", 1, None),
        ]
    )
    financial = card.per_perspective["financial"]
    assert financial.score == 80.0  # (3*100 + 1*20) / 4
    assert financial.weight == 4
    assert financial.kpis == ("revenue", "cac")
    assert financial.no_data == ("burn",)
    assert card.per_perspective["customer"].score == 50.0
    assert card.per_perspective["internal_process"].score is None
    assert card.per_perspective["internal_process"].no_data == ("sessions",)
    assert card.per_perspective["learning_growth"].score is None
    assert card.overall == pytest.approx((300 + 20 + 100) / 6)  # 70.0


def test_scorecard_with_nothing_scored_is_none() -> None:
    card = scorecard([entry("a", "customer", 1, None)])
    assert card.overall is None
    assert scorecard([]).overall is None


def test_score_entry_from_kpi() -> None:
    assert score_entry(HIGHER, 75) == ScoreEntry("signups", "customer", 1.0, "below_target", 50.0)


def test_expired_kpis_are_left_out_of_the_scorecard_until_renewed() -> None:
    today = date(2026, 4, 1)
    expired = make_kpi(key="old", expires_on="2026-03-31", weight=5)
    due_today = make_kpi(key="due", expires_on="2026-04-01")
    assert is_expired(expired, today) and not is_expired(due_today, today)
    entries = [score_entry(expired, 50, today), score_entry(due_today, 100, today)]
    assert [e.expired for e in entries] == [True, False]
    customer = scorecard(entries).per_perspective["customer"]
    assert customer.kpis == ("due",)
    assert customer.expired == ("old",)
    assert customer.score == 100.0  # the expired KPI's 0 would have pulled it to 16.7
    renewed = make_kpi(key="old", expires_on="2026-12-31", weight=5)
    assert scorecard([score_entry(renewed, 50, today)]).per_perspective["customer"].kpis == (
        "old",
    )


def test_expiry_on_the_company_calendar() -> None:
    kpi = make_kpi(expires_on="2026-04-14")
    assert expiry(kpi, date(2026, 3, 30), 14) == Expiry(15, False, False)
    assert expiry(kpi, date(2026, 3, 31), 14) == Expiry(14, False, True)
    assert expiry(kpi, date(2026, 4, 14), 14) == Expiry(0, False, True)
    assert expiry(kpi, date(2026, 4, 15), 14) == Expiry(-1, True, False)
