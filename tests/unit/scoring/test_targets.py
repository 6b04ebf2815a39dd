"""Targets that change over time: the step in force judges status, score and periods."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.scoring.domain.catalog import CatalogError, KpiDefinition
from services.scoring.domain.periods import period_analysis
from services.scoring.domain.scoring import assess
from services.scoring.domain.targets import in_force
from tests.unit.scoring.factories import make_catalog, make_kpi

UTC_TZ = ZoneInfo("UTC")
Q1 = datetime(2027, 1, 1, tzinfo=UTC)
Q2 = datetime(2027, 4, 1, tzinfo=UTC)


def conversion(**overrides: Any) -> KpiDefinition:
    fields: dict[str, Any] = {
        "key": "conversion",
        "formula": {
            "ratio": {
                "numerator": {"count": {"type": "paid"}},
                "denominator": {"count": {"type": "trial"}},
            }
        },
        "review_period": "quarter",
        "window": "90d",
        "minimum": 0.10,
        "target": 0.15,
        "targets": [
            {"from": "2027-01-01", "minimum": 0.12, "target": 0.18},
            {"from": "2027-04-01", "minimum": 0.14, "target": 0.20},
        ],
    }
    return make_kpi(**{**fields, **overrides})


def test_the_step_in_force_changes_the_status_at_the_period_boundary() -> None:
    kpi = conversion()
    just_before, at_start = Q2 - timedelta(seconds=1), Q2
    assert assess(in_force(kpi, just_before, UTC_TZ), 0.19).status == "on_target"
    assert assess(in_force(kpi, at_start, UTC_TZ), 0.19).status == "below_target"
    assert assess(in_force(kpi, at_start, UTC_TZ), 0.13).status == "breach"
    # Before the first step, the KPI's own thresholds.
    before = in_force(kpi, Q1 - timedelta(days=1), UTC_TZ)
    assert (before.minimum, before.target) == (0.10, 0.15)
    assert in_force(make_kpi(), Q1, UTC_TZ) == make_kpi()


def test_steps_start_at_local_midnight_of_the_catalog_time_zone() -> None:
    saigon = ZoneInfo("Asia/Ho_Chi_Minh")  # UTC+7: April begins at 17:00 UTC on 31 March
    kpi = conversion()
    assert in_force(kpi, datetime(2027, 3, 31, 17, tzinfo=UTC), saigon).target == 0.20
    assert in_force(kpi, datetime(2027, 3, 31, 16, 59, tzinfo=UTC), saigon).target == 0.18


def test_each_period_is_judged_against_its_own_target() -> None:
    kpi = conversion()
    now = datetime(2027, 5, 15, tzinfo=UTC)
    rows = period_analysis(kpi, [(Q1, 0.19), (Q2, 0.19)], now, UTC_TZ)
    assert [(row.expected, row.gap is not None and row.gap > 0) for row in rows] == [
        (0.18, True),
        (0.20, False),
    ]


def test_a_schedule_follows_the_kpi_rules_and_its_order() -> None:
    with pytest.raises(CatalogError) as caught:
        make_catalog(
            conversion(
                targets=[
                    {"from": "2027-04-01", "minimum": 0.2, "target": 0.1},
                    {"from": "2027-01-01", "minimum": 0.1, "target": 0.2},
                ]
            )
        )
    assert caught.value.problems == [
        "kpi 'conversion': targets.0: minimum 0.2 is above target 0.1",
        "kpi 'conversion': targets.1.from: 2027-01-01 is not after the step before it",
    ]


def test_the_schedule_is_written_with_from() -> None:
    dumped = conversion().model_dump(mode="json")["targets"]
    assert dumped[0] == {"from": "2027-01-01", "minimum": 0.12, "target": 0.18}
    assert KpiDefinition.model_validate(conversion().model_dump(mode="json")) == conversion()
