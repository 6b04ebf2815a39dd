from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.scoring.domain.catalog import parse_catalog
from services.scoring.domain.evaluate import value_as_of
from services.scoring.domain.fold import fold
from services.scoring.domain.formulas import Formula, Scope, Term, compile_terms, numeric

from .factories import T0, event

EXAMPLE = Path(__file__).resolve().parents[3] / "catalog" / "example.yaml"


def test_scope_is_anded_into_every_term() -> None:
    formula = Formula.model_validate(
        {
            "ratio": {
                "numerator": {"count": {"type": "trial_started", "properties": {"plan": "pro"}}},
                "denominator": {"sum": {"type": ["signup"], "field": "properties.n"}},
            }
        }
    )
    terms = compile_terms(formula, Scope(source="web", properties={"region": "VN"}))
    assert terms == (
        Term("count", frozenset({"web"}), frozenset({"trial_started"}),
             (("plan", "pro"), ("region", "VN")), None, None),
        Term("sum", frozenset({"web"}), frozenset({"signup"}),
             (("region", "VN"),), "properties.n", None),
    )
    assert terms[0].accepts("web", "trial_started")
    assert not terms[0].accepts("crm", "trial_started")
    assert not terms[1].accepts("web", "trial_started")


def test_kinds_sides_and_sketches() -> None:
    ratio = Formula.model_validate(
        {"ratio": {"numerator": {"distinct": {"field": "subject_id"}},
                   "denominator": {"percentile": {"field": "value", "q": 0.9}}}}
    )
    assert ratio.kind == "ratio"
    assert [side.kind for side in ratio.sides()] == ["distinct", "percentile"]
    terms = compile_terms(ratio, Scope())
    assert [t.sketch_kind for t in terms] == ["hll", "kll"]
    assert terms[1].q == 0.9
    assert terms[0].sources is None  # no source: any source
    count = Formula.model_validate({"count": {}})
    assert count.kind == "count"
    assert compile_terms(count, Scope())[0].sketch_kind is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(3, 3.0), (2.5, 2.5), (True, None), ("4", None), (None, None), (float("inf"), None)],
)
def test_numeric_accepts_only_real_numbers(raw: object, expected: float | None) -> None:
    assert numeric(raw) == expected


def test_example_catalog_values_from_a_handful_of_events() -> None:
    catalog = parse_catalog(EXAMPLE.read_text())
    events = [
        event("csat_response", source="support", satisfied=True),
        event("csat_response", source="support", satisfied=True),
        event("csat_response", source="support", satisfied=True),
        event("csat_response", source="support", satisfied=False),
        event("marketing_spend", source="crm", value=1200.0),
        event("marketing_spend", source="crm", value=300.0),
        event("subscription_started", source="crm", subject_id="c1"),
        event("subscription_started", source="crm", subject_id="c2"),
        event("subscription_started", source="crm", subject_id="c3"),
        event("trial_started", source="web"),
        event("session_started", channel="direct", subject_id="u1", returning=True),
        event("session_started", channel="organic", subject_id="u1", returning=True),
        event("session_started", channel="organic", subject_id="u2", bounced=True),
        event("ticket_first_response", source="support", minutes=30),
        event("ticket_first_response", source="support", value=99.0),  # no minutes: skipped
        event("ticket_first_response", source="support", minutes=90),
    ]
    result = fold(events, catalog, ZoneInfo("Asia/Ho_Chi_Minh"))
    values = {kpi.key: value_as_of(kpi, result.buckets, T0).value for kpi in catalog}
    assert values["satisfied_customers"] == 0.75
    assert values["customer_acquisition_cost"] == 500.0
    assert values["trial_to_paid_conversion"] == 3.0
    assert values["burn_rate"] == 1500.0
    assert values["direct_sessions"] == 1.0
    assert values["organic_sessions"] == 2.0
    assert values["returning_users"] == 1.0
    assert values["website_bounce_rate"] == pytest.approx(1 / 3)
    assert values["first_response_time"] == 60.0
    assert values["revenue"] is None
    assert values["churn_rate"] is None  # no payers: no denominator
    assert result.skipped == {("first_response_time", 0): 1}
