from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.scoring.domain.catalog import (
    Catalog,
    CatalogError,
    diff_catalog,
    parse_catalog,
)

from .factories import kpi_dict, make_kpi

EXAMPLE = Path(__file__).resolve().parents[3] / "catalog" / "example.yaml"


def problems_for(*definitions: dict[str, Any]) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        Catalog.from_definitions(definitions)
    return caught.value.problems


def test_parse_yaml_list_with_durations_and_dates() -> None:
    text = yaml.safe_dump([kpi_dict(window="30d", update_every="15m", retention="60d")])
    catalog = parse_catalog(text)
    kpi = catalog["signups"]
    assert kpi.window == timedelta(days=30)
    assert kpi.update_every == timedelta(minutes=15)
    assert kpi.effective_retention == timedelta(days=60)
    assert kpi.expires_on == date(2027, 3, 31)
    assert kpi.owners[0].email == "lan@example.com"
    assert catalog.keys() == ["signups"]


def test_parse_accepts_kpis_mapping_and_empty_text() -> None:
    assert len(parse_catalog(yaml.safe_dump({"kpis": [kpi_dict()]}))) == 1
    assert len(parse_catalog("")) == 0


def test_parse_rejects_bad_yaml_and_bad_top_level() -> None:
    with pytest.raises(CatalogError, match="yaml"):
        parse_catalog("- key: [unclosed")
    with pytest.raises(CatalogError, match="expected a list"):
        parse_catalog("just a string")


def test_default_retention_is_window_plus_two_review_periods() -> None:
    assert make_kpi(window="1d", review_period="week").effective_retention == timedelta(days=15)
    kpi = make_kpi(window="30d", review_period="month")
    assert kpi.effective_retention == timedelta(days=92)


def test_model_dump_writes_durations_back_as_strings() -> None:
    dumped = make_kpi(window="14d", update_every="90s").model_dump(mode="json")
    assert dumped["window"] == "14d"
    assert dumped["update_every"] == "90s"


def test_example_catalog_parses_and_covers_perspectives_and_sources() -> None:
    catalog = parse_catalog(EXAMPLE.read_text())
    assert len(catalog) >= 22
    assert {kpi.perspective for kpi in catalog} == {
        "financial",
        "customer",
        "internal_process",
        "learning_growth",
    }
    sources = {source for kpi in catalog for term in kpi.terms for source in term.sources or ()}
    assert sources == {"web", "crm", "email", "support"}
    kinds = {side.kind for kpi in catalog for side in kpi.formula.sides()}
    assert kinds >= {"count", "sum", "average", "max", "distinct", "percentile"}
    assert catalog["burn_rate"].expires_on < date(2026, 11, 1)
    assert "sales_qualified_leads" in catalog["deals_closed"].leading_indicators
    assert "trial_rate" in catalog["trial_to_paid_conversion"].leading_indicators


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"key": "Churn-Rate"}, "kpi 'Churn-Rate': key: String should match pattern"),
        ({"perspective": "people"}, "kpi 'signups': perspective: Input should be"),
        ({"stage": "grow"}, "kpi 'signups': stage: Input should be"),
        ({"owners": []}, "kpi 'signups': owners: List should have at least 1 item"),
        ({"owners": [{"name": "x", "phone": "1"}]}, "kpi 'signups': owners.0.phone: Extra"),
        ({"window": "30 days"}, "kpi 'signups': window: Value error, invalid duration"),
        ({"window": "366d"}, "kpi 'signups': window: must be between 1m and 365d"),
        ({"window": "30s"}, "kpi 'signups': window: must be between 1m and 365d"),
        ({"update_every": "2d"}, "kpi 'signups': update_every: 2d is longer than the window 1d"),
        ({"weight": 0}, "kpi 'signups': weight: Input should be greater than 0"),
        ({"weight": -2}, "kpi 'signups': weight: Input should be greater than 0"),
        ({"review_period": "year"}, "kpi 'signups': review_period: Input should be"),
        ({"retention": "12h"}, "kpi 'signups': retention: must be at least the window"),
        ({"minimum": 120}, "kpi 'signups': minimum: 120 is above target 100"),
        (
            {"direction": "lower_is_better", "minimum": 5, "target": 10},
            "kpi 'signups': minimum: 5 is below target 10 (lower_is_better)",
        ),
        ({"direction": "target_band"}, "kpi 'signups': band: required for direction"),
        ({"band": {"low": 1, "high": 2}}, "kpi 'signups': band: only allowed with direction"),
        (
            {"direction": "target_band", "band": {"low": 10, "high": 5}},
            "kpi 'signups': band: low 10 is above high 5",
        ),
        (
            {"direction": "target_band", "band": {"low": 10, "high": 50}},
            "kpi 'signups': target: 100 is outside the band",
        ),
        (
            {"direction": "target_band", "band": {"low": 90, "high": 110}, "minimum": -1},
            "kpi 'signups': minimum: for target_band it is the tolerated distance",
        ),
        ({"expires_on": "someday"}, "kpi 'signups': expires_on: Input should be a valid date"),
        ({"indicator": "both"}, "kpi 'signups': indicator: Input should be"),
        ({"colour": "red"}, "kpi 'signups': colour: Extra inputs are not permitted"),
        ({"tracking_cost": {"amount": 1, "currency": "usd", "per": "month"}},
         "kpi 'signups': tracking_cost.currency: String should match pattern"),
        ({"leading_indicators": ["signups"]},
         "kpi 'signups': leading_indicators: a KPI cannot lead itself"),
        ({"leading_indicators": ["ghost"]},
         "kpi 'signups': leading_indicators.0: unknown KPI 'ghost'"),
        ({"name": None}, "kpi 'signups': name: Input should be a valid string"),
    ],
)
def test_each_validation_problem_names_kpi_and_field(
    overrides: dict[str, Any], expected: str
) -> None:
    problems = problems_for(kpi_dict(**overrides))
    assert any(p.startswith(expected) for p in problems), problems


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        (
            {"ratio": {"numerator": {"sum": {"type": "payment_received", "field": "amount"}},
                       "denominator": {"count": {}}}},
            "kpi 'signups': formula.ratio.numerator.sum.field: String should match pattern",
        ),
        (
            {"ratio": {"numerator": {"count": {}},
                       "denominator": {"ratio": {"numerator": {"count": {}},
                                                 "denominator": {"count": {}}}}}},
            "kpi 'signups': formula.ratio.denominator.ratio: Extra inputs are not permitted",
        ),
        ({"count": {"source": "fax"}}, "kpi 'signups': formula.count.source: Input should be"),
        ({"count": {"kind": "signup"}}, "kpi 'signups': formula.count.kind: Extra inputs"),
        ({"count": {"type": "Sign Up"}}, "kpi 'signups': formula.count.type.0: String should"),
        (
            {"count": {"properties": {"plan": {"nested": 1}}}},
            "kpi 'signups': formula.count.properties: Value error, property 'plan' must be",
        ),
        ({"sum": {"source": "crm"}}, "kpi 'signups': formula.sum.field: Field required"),
        ({"sum": {"field": "subject_id"}}, "kpi 'signups': formula.sum.field: String should"),
        ({"percentile": {"field": "value", "q": 1.5}},
         "kpi 'signups': formula.percentile.q: Input should be less than or equal to 1"),
        ({"median": {"field": "value"}}, "kpi 'signups': formula.median: Extra inputs"),
        ({}, "kpi 'signups': formula: Value error, exactly one of count, sum"),
        ({"count": {}, "sum": {"field": "value"}}, "kpi 'signups': formula: Value error, exactly"),
    ],
)
def test_formula_problems_carry_the_full_path(formula: dict[str, Any], expected: str) -> None:
    problems = problems_for(kpi_dict(formula=formula))
    assert any(p.startswith(expected) for p in problems), problems


def test_scope_contradicting_formula_source_is_an_error() -> None:
    problems = problems_for(
        kpi_dict(
            formula={"count": {"source": "crm", "type": "deal_won", "properties": {"tier": "a"}}},
            scope={"source": "web", "properties": {"tier": "b"}},
        )
    )
    assert problems == [
        "kpi 'signups': formula.count: source 'crm' contradicts scope.source 'web'",
        "kpi 'signups': formula.count: properties.tier contradicts scope.properties.tier",
    ]


def test_duplicate_keys_and_every_problem_is_collected() -> None:
    problems = problems_for(
        kpi_dict(), kpi_dict(), kpi_dict(key="other", weight=0), {"name": "no key"}
    )
    assert "kpi 'signups': key: duplicate key" in problems
    assert "kpi 'other': weight: Input should be greater than 0" in problems
    assert "kpi #4: key: Field required" in problems


def test_error_message_lists_problems() -> None:
    with pytest.raises(CatalogError) as caught:
        Catalog.from_definitions([kpi_dict(weight=0)])
    assert "invalid catalog:\n  - kpi 'signups': weight:" in str(caught.value)


def test_leading_indicator_to_a_known_kpi_is_accepted() -> None:
    catalog = Catalog.from_definitions(
        [kpi_dict(key="leads"), kpi_dict(key="deals", leading_indicators=["leads"])]
    )
    assert catalog["deals"].leading_indicators == ["leads"]


def test_minimum_equal_target_is_allowed_in_both_directions() -> None:
    assert make_kpi(minimum=100, target=100).minimum == 100
    kpi = make_kpi(direction="lower_is_better", minimum=10, target=10)
    assert kpi.direction == "lower_is_better"


def test_diff_catalog_created_changed_retired_with_field_paths() -> None:
    old = Catalog.from_definitions(
        [kpi_dict(key="keep"), kpi_dict(key="tweak"), kpi_dict(key="drop")]
    )
    new = Catalog.from_definitions(
        [
            kpi_dict(key="keep"),
            kpi_dict(
                key="tweak",
                target=120,
                window="7d",
                formula={"count": {"source": "web", "type": ["signup", "trial_started"]}},
            ),
            kpi_dict(key="fresh"),
        ]
    )
    diff = diff_catalog(old, new)
    assert [k.key for k in diff.created] == ["fresh"]
    assert [k.key for k in diff.retired] == ["drop"]
    assert [c.key for c in diff.changed] == ["tweak"]
    changes = {c.field: (c.old, c.new) for c in diff.changed[0].fields}
    assert changes == {
        "formula.count.type": (["signup"], ["signup", "trial_started"]),
        "window": ("1d", "7d"),
        "target": (100.0, 120.0),
    }
    assert not diff.empty
    assert diff_catalog(new, new).empty
