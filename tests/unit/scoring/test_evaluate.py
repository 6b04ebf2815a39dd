from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

from services.scoring.domain.aggregates import BucketKey, TermAggregate
from services.scoring.domain.evaluate import Evaluation, evaluate, value_as_of, window_terms
from services.scoring.domain.fold import fold

from .factories import T0, event, make_catalog, make_kpi


def values_kpi(kind: str, **extra: Any) -> Any:
    return make_kpi(
        key="k", formula={kind: {"type": "ticket_resolved", "field": "properties.hours", **extra}}
    )


def evaluate_events(kpi: Any, hours: list[float]) -> Evaluation:
    events = [
        event("ticket_resolved", source="support", at=T0, hours=h, subject_id=f"u{int(h) % 7}")
        for h in hours
    ]
    buckets = fold(events, make_catalog(kpi), UTC).buckets
    return value_as_of(kpi, buckets, T0)


def test_count_sum_average_min_max() -> None:
    hours = [4.0, 1.5, 10.0, 2.5]
    assert evaluate_events(make_kpi(key="k", formula={"count": {"type": "ticket_resolved"}}),
                           hours) == Evaluation(4.0, count=4)
    assert evaluate_events(values_kpi("sum"), hours).value == 18.0
    assert evaluate_events(values_kpi("average"), hours).value == 4.5
    assert evaluate_events(values_kpi("min"), hours).value == 1.5
    assert evaluate_events(values_kpi("max"), hours).value == 10.0


def test_percentile_uses_nearest_rank() -> None:
    hours = [float(h) for h in range(100, 0, -1)]
    assert evaluate_events(values_kpi("percentile", q=0.9), hours).value == 90.0
    assert evaluate_events(values_kpi("percentile", q=0.5), hours).value == 50.0
    assert evaluate_events(values_kpi("percentile", q=1.0), hours).value == 100.0


def test_distinct_estimates_whole_numbers() -> None:
    kpi = make_kpi(key="k", formula={"distinct": {"type": "ticket_resolved",
                                                  "field": "subject_id"}})
    # subject ids u0..u6 from hours 0..20: 7 distinct
    assert evaluate_events(kpi, [float(h) for h in range(21)]).value == 7.0


def test_distinct_of_many_values_is_within_hll_error() -> None:
    kpi = make_kpi(key="k", formula={"distinct": {"type": "signup", "field": "properties.n"}})
    events = [event(at=T0 + timedelta(seconds=i % 600), n=i % 5000) for i in range(20000)]
    result = value_as_of(kpi, fold(events, make_catalog(kpi), UTC).buckets, T0 + timedelta(hours=1))
    assert result.value is not None
    assert abs(result.value - 5000) / 5000 < 0.05  # lg_k=12: ~1.6% standard error
    assert result.count == 20000


def test_no_data_is_none_never_zero() -> None:
    for kind in ("sum", "average", "min", "max", "percentile"):
        assert evaluate_events(values_kpi(kind), []).value is None
    kpi = make_kpi(key="k")
    assert value_as_of(kpi, {}, T0) == Evaluation(None)
    assert evaluate(kpi.formula, [TermAggregate(count=0)]).value is None


RATIO = {
    "ratio": {
        "numerator": {"count": {"type": "subscription_cancelled"}},
        "denominator": {"distinct": {"type": "payment_received", "field": "subject_id"}},
    }
}


def test_ratio_returns_value_numerator_and_denominator() -> None:
    kpi = make_kpi(key="churn", formula=RATIO)
    events = [event("payment_received", source="crm", subject_id=f"c{i}") for i in range(40)]
    events += [event("subscription_cancelled", source="crm") for _ in range(2)]
    buckets = fold(events, make_catalog(kpi), UTC).buckets
    assert value_as_of(kpi, buckets, T0) == Evaluation(0.05, 2.0, 40.0, 42)


def test_ratio_empty_count_numerator_is_zero_but_empty_denominator_is_none() -> None:
    kpi = make_kpi(key="churn", formula=RATIO)
    payers = fold([event("payment_received", source="crm", subject_id="c1")],
                  make_catalog(kpi), UTC).buckets
    assert value_as_of(kpi, payers, T0) == Evaluation(0.0, 0.0, 1.0, 1)
    cancels = fold([event("subscription_cancelled", source="crm")], make_catalog(kpi), UTC).buckets
    assert value_as_of(kpi, cancels, T0) == Evaluation(None, 1.0, None, 1)


def test_ratio_with_zero_denominator_is_none() -> None:
    kpi = make_kpi(key="cac", formula={"ratio": {
        "numerator": {"count": {"type": "marketing_spend"}},
        "denominator": {"sum": {"type": "payment_received", "field": "value"}},
    }})
    result = evaluate(kpi.formula, [TermAggregate(count=3), TermAggregate(count=1, sum_micros=0)])
    assert result == Evaluation(None, 3.0, 0.0, 4)


def test_ratio_with_average_numerator_and_no_numerator_data_is_none() -> None:
    kpi = make_kpi(key="r", formula={"ratio": {
        "numerator": {"average": {"type": "a", "field": "value"}},
        "denominator": {"count": {"type": "b"}},
    }})
    assert evaluate(kpi.formula, [None, TermAggregate(count=4)]) == Evaluation(None, None, 4.0, 4)


def test_window_is_half_open_on_the_left() -> None:
    kpi = make_kpi(key="k", window="1h")  # 1m buckets
    buckets = {
        BucketKey("k", 0, T0 - timedelta(hours=1)): TermAggregate(count=100),  # excluded
        BucketKey("k", 0, T0 - timedelta(minutes=59)): TermAggregate(count=1),
        BucketKey("k", 0, T0): TermAggregate(count=2),  # as_of itself: included
        BucketKey("k", 0, T0 + timedelta(minutes=1)): TermAggregate(count=50),  # future
        BucketKey("other", 0, T0): TermAggregate(count=7),
    }
    assert window_terms(kpi, buckets, T0) == [TermAggregate(count=3)]
    assert value_as_of(kpi, buckets, T0).value == 3.0
