"""More formulas: derived KPIs (expressions checked and evaluated safely; cycles, unknown
KPIs and mismatched units refused by name) and ``latest``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.scoring.domain.aggregates import merge
from services.scoring.domain.catalog import CatalogError, KpiDefinition
from services.scoring.domain.coverage import kpi_coverage
from services.scoring.domain.derived import (
    ExpressionError,
    evaluate_expression,
    evaluation_order,
    parse_expression,
)
from services.scoring.domain.evaluate import value_as_of
from services.scoring.domain.fold import fold
from tests.unit.scoring.factories import T0, event, make_catalog, make_kpi


def revenue(**overrides: Any) -> KpiDefinition:
    fields: dict[str, Any] = {
        "key": "revenue",
        "unit": "USD",
        "formula": {"sum": {"source": "crm", "type": "payment", "field": "value"}},
    }
    return make_kpi(**{**fields, **overrides})


def derived(key: str, expression: str, unit: str = "ratio") -> KpiDefinition:
    return make_kpi(key=key, unit=unit, formula={"derived": expression}, minimum=0, target=1)


def test_inputs_of_an_expression_now_and_over_the_previous_period() -> None:
    expression = parse_expression("(revenue - previous(revenue)) / previous(revenue)")
    assert expression.current == {"revenue"}
    assert expression.previous == {"revenue"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("__import__('os')", "is not allowed"),
        ("revenue.real", "is not allowed"),
        ("revenue ** 2", "is not allowed"),
        ("revenue > 1", "is not allowed"),
        ("previous(revenue, 2)", "is not allowed"),
        ("'text'", "is not allowed"),
        ("revenue +", "is not an expression"),
    ],
)
def test_anything_but_arithmetic_on_kpis_is_refused(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        parse_expression(text)


def test_values_no_data_and_division_by_zero() -> None:
    growth = parse_expression("(revenue - previous(revenue)) / previous(revenue)")
    assert evaluate_expression(growth, {"revenue": 1200.0}, {"revenue": 1000.0}) == 0.2
    assert evaluate_expression(growth, {"revenue": 1200.0}, {"revenue": None}) is None
    assert evaluate_expression(growth, {"revenue": 1200.0}, {"revenue": 0.0}) is None
    margin = parse_expression("-(cost - revenue) * 2 / 4")
    assert evaluate_expression(margin, {"revenue": 10.0, "cost": 4.0}, {}) == 3.0


def test_a_derived_kpi_in_a_catalog() -> None:
    deals = make_kpi(key="deals", unit="deals")
    per_deal = derived("revenue_per_deal", "revenue / deals", unit="USD/deal")
    catalog = make_catalog(revenue(), deals, per_deal)
    formula = catalog["revenue_per_deal"].formula
    assert formula.kind == "derived" and formula.sides() == ()
    assert catalog["revenue_per_deal"].terms == ()
    dumped = catalog["revenue_per_deal"].model_dump(mode="json")["formula"]
    assert dumped["derived"] == {"expression": "revenue / deals"}


def test_unknown_kpis_cycles_and_units_are_refused_by_name() -> None:
    with pytest.raises(CatalogError) as caught:
        make_catalog(
            revenue(),
            make_kpi(key="deals", unit="deals"),
            derived("a", "b + 1", unit="USD"),
            derived("b", "a - revenue", unit="USD"),
            derived("c", "ghost / revenue"),
            derived("d", "revenue - deals", unit="USD"),
            derived("e", "revenue - previous(revenue)", unit="EUR"),
            derived("f", "previous(a)", unit="USD"),
        )
    assert caught.value.problems == [
        "kpi 'c': formula.derived: unknown KPI 'ghost'",
        "kpi 'd': formula.derived: units differ in 'revenue - deals': 'USD' and 'deals'",
        "kpi 'e': formula.derived: the expression is in 'USD', the KPI in 'EUR'",
        "kpi 'f': formula.derived: previous(a) needs a computed or reported KPI",
        "kpi 'a': formula.derived: cycle a -> b -> a",
    ]


def test_a_kpi_cannot_derive_from_itself() -> None:
    with pytest.raises(CatalogError, match=r"cycle loop -> loop"):
        make_catalog(derived("loop", "loop * 2"))


def test_evaluation_order_puts_inputs_first() -> None:
    expressions = {
        "revenue": None,
        "profit": parse_expression("revenue - cost"),
        "cost": None,
        "margin": parse_expression("profit / revenue"),
    }
    assert evaluation_order(expressions, ["margin"]) == ["profit", "margin"]


def test_latest_is_the_newest_value_by_event_time_in_any_order() -> None:
    """``latest`` keeps the value of the newest event; late arrivals do not replace it,
    and buckets merge to the same answer in any order."""
    kpi = make_kpi(
        key="headcount_gauge",
        unit="people",
        formula={"latest": {"source": "crm", "type": "headcount_reported", "field": "value"}},
    )
    catalog = make_catalog(kpi)
    late_first = [
        event("headcount_reported", source="crm", value=42.0, at=T0 - timedelta(minutes=1)),
        event("headcount_reported", source="crm", value=40.0, at=T0 - timedelta(hours=3)),
        event("headcount_reported", source="crm", value=41.0, at=T0 - timedelta(hours=2)),
    ]
    for events in (late_first, list(reversed(late_first))):
        result = fold(events, catalog, ZoneInfo("UTC"))
        assert value_as_of(kpi, result.buckets, T0).value == 42.0
    # Folded in two batches (two buckets' partials), merged: still the newest.
    first = fold(late_first[:1], catalog, ZoneInfo("UTC")).buckets
    second = fold(late_first[1:], catalog, ZoneInfo("UTC")).buckets
    merged = {key: merge(first[key], second[key]) if key in second else first[key]
              for key in first} | {k: v for k, v in second.items() if k not in first}
    assert value_as_of(kpi, merged, T0).value == 42.0
    # Before the newest event, the newest one then.
    assert value_as_of(kpi, merged, T0 - timedelta(minutes=30)).value == 41.0


def test_coverage_of_reported_and_derived_kpis() -> None:
    catalog = make_catalog(
        revenue(window="10d"),
        make_kpi(key="headcount", unit="people", formula="reported"),
        derived("per_head", "revenue / headcount", unit="USD/person"),
    )
    since = {"revenue": T0 - timedelta(days=5)}
    assert kpi_coverage(catalog["headcount"], catalog, since, T0) == 1.0
    assert kpi_coverage(catalog["revenue"], catalog, since, T0) == 0.5
    assert kpi_coverage(catalog["per_head"], catalog, since, T0) == 0.5
