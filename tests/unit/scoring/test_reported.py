"""Reported KPIs: entries checked per review period, current value, value due, CSV."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.scoring.domain.catalog import Catalog, KpiDefinition
from services.scoring.domain.evaluate import evaluate
from services.scoring.domain.reported import (
    EntryError,
    check_entry,
    current_value,
    parse_csv,
    reported_series,
    value_due,
)
from tests.unit.scoring.factories import make_catalog, make_kpi

UTC_TZ = ZoneInfo("UTC")
NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
NOV = datetime(2026, 11, 1, tzinfo=UTC)
DEC = datetime(2026, 12, 1, tzinfo=UTC)


def turnover(**overrides: Any) -> KpiDefinition:
    return make_kpi(
        key="staff_turnover",
        formula="reported",
        review_period="month",
        window="31d",
        update_every="1h",
        direction="lower_is_better",
        minimum=0.05,
        target=0.02,
        **overrides,
    )


def catalog() -> Catalog:
    return make_catalog(turnover(), make_kpi())


def test_a_bare_reported_formula_has_no_terms_and_no_value_from_events() -> None:
    kpi = turnover()
    assert kpi.formula.kind == "reported"
    assert kpi.terms == ()
    assert evaluate(kpi.formula, []).value is None


def test_reported_cannot_be_a_ratio_side() -> None:
    with pytest.raises(ValueError, match="reported"):
        make_kpi(formula={"ratio": {"numerator": {"reported": {}}, "denominator": {"count": {}}}})


def test_an_entry_is_for_the_first_day_of_its_period() -> None:
    entry = check_entry(catalog(), "staff_turnover", date(2026, 11, 1), 0.03, " note ",
                        now=NOW, tz=UTC_TZ)
    assert (entry.period_start, entry.value, entry.note) == (NOV, 0.03, "note")


def test_another_day_names_the_real_first_day() -> None:
    with pytest.raises(EntryError) as caught:
        check_entry(catalog(), "staff_turnover", date(2026, 11, 5), 0.03, None,
                    now=NOW, tz=UTC_TZ)
    assert caught.value.problems == [
        "kpi 'staff_turnover': period_start: 2026-11-05 is not the first day of a month "
        "(that month starts on 2026-11-01)"
    ]


def test_future_periods_unknown_and_computed_kpis_are_refused_by_name() -> None:
    with pytest.raises(EntryError, match="has not begun"):
        check_entry(catalog(), "staff_turnover", date(2027, 1, 1), 1, None, now=NOW, tz=UTC_TZ)
    with pytest.raises(EntryError, match="unknown KPI 'nope'"):
        check_entry(catalog(), "nope", date(2026, 11, 1), 1, None, now=NOW, tz=UTC_TZ)
    with pytest.raises(EntryError, match="'signups': formula is count, not reported"):
        check_entry(catalog(), "signups", date(2026, 11, 2), 1, None, now=NOW, tz=UTC_TZ)
    with pytest.raises(EntryError, match="period_start: 0001-01-01 is before 2000-01-01"):
        check_entry(catalog(), "staff_turnover", date(1, 1, 1), 1, None, now=NOW,
                    tz=ZoneInfo("Asia/Ho_Chi_Minh"))
    with pytest.raises(EntryError, match="value: must be a finite number"):
        check_entry(catalog(), "staff_turnover", date(2026, 11, 1), float("nan"), None,
                    now=NOW, tz=UTC_TZ)


def test_periods_follow_the_catalog_time_zone() -> None:
    tz = ZoneInfo("Asia/Ho_Chi_Minh")
    entry = check_entry(catalog(), "staff_turnover", date(2026, 11, 1), 0.03, None,
                        now=NOW, tz=tz)
    assert entry.period_start == datetime(2026, 10, 31, 17, tzinfo=UTC)


def test_current_value_is_this_period_else_the_last_one_never_older() -> None:
    kpi = turnover()
    assert current_value(kpi, {NOV: 0.03}, NOW, UTC_TZ) == (0.03, NOV)
    assert current_value(kpi, {NOV: 0.03, DEC: 0.01}, NOW, UTC_TZ) == (0.01, DEC)
    january = datetime(2027, 1, 15, tzinfo=UTC)
    assert current_value(kpi, {NOV: 0.03}, january, UTC_TZ) == (None, None)


def test_value_due_for_the_ended_period_once_it_existed() -> None:
    kpi = turnover()
    created = datetime(2026, 10, 20, tzinfo=UTC)
    assert value_due(kpi, {}, NOW, UTC_TZ, created) == NOV
    assert value_due(kpi, {NOV: 0.03}, NOW, UTC_TZ, created) is None
    # Defined after November ended: November was never its to report.
    assert value_due(kpi, {}, NOW, UTC_TZ, DEC) is None
    assert value_due(kpi, {}, NOW, UTC_TZ, None) is None


def test_series_has_one_point_per_period() -> None:
    kpi = turnover()
    oct_ = datetime(2026, 10, 1, tzinfo=UTC)
    series = reported_series(kpi, {NOV: 0.03}, UTC_TZ, oct_, NOW)
    assert series == [(oct_, None), (NOV, 0.03), (DEC, None)]


def test_csv_imports_all_rows() -> None:
    text = "kpi_key,period_start,value,note\nstaff_turnover,2026-10-01,0.04,\n" \
           "staff_turnover,2026-11-01,0.03,\"payroll, HR\"\n"
    entries = parse_csv(text, catalog(), now=NOW, tz=UTC_TZ)
    assert [(e.period_start.month, e.value, e.note) for e in entries] == [
        (10, 0.04, None), (11, 0.03, "payroll, HR")
    ]


def test_csv_refuses_the_whole_file_listing_every_problem_by_line() -> None:
    text = (
        "kpi_key,period_start,value\n"
        "staff_turnover,2026-11-01,0.03\n"
        "staff_turnover,2026-11-01,0.04\n"
        "staff_turnover,01/11/2026,0.03\n"
        "staff_turnover,2026-10-01,three\n"
        "churn,2026-10-01,1\n"
    )
    with pytest.raises(EntryError) as caught:
        parse_csv(text, catalog(), now=NOW, tz=UTC_TZ)
    assert caught.value.problems == [
        "line 3: kpi 'staff_turnover': period 2026-11-01 already on line 2",
        "line 4: period_start: '01/11/2026' is not a date (YYYY-MM-DD)",
        "line 5: value: 'three' is not a number",
        "line 6: kpi_key: unknown KPI 'churn'",
    ]


def test_csv_needs_its_header() -> None:
    with pytest.raises(EntryError, match="line 1: the header must be kpi_key,period_start,value"):
        parse_csv("staff_turnover,2026-11-01,0.03\n", catalog(), now=NOW, tz=UTC_TZ)
