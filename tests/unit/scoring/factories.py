"""Plain factory functions for scoring domain tests."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import count
from typing import Any

from services.scoring.domain.catalog import Catalog, KpiDefinition
from shared.contracts.events import EventEnvelope

_ids = count(1)

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)  # a Monday


def kpi_dict(**overrides: Any) -> dict[str, Any]:
    """A valid raw KPI definition (a count of web signups); override any field."""
    definition: dict[str, Any] = {
        "key": "signups",
        "name": "Sign-ups",
        "objective": "Grow the user base",
        "perspective": "customer",
        "stage": "attract",
        "department": "marketing",
        "owners": [{"name": "Lan", "email": "lan@example.com"}],
        "formula": {"count": {"source": "web", "type": "signup"}},
        "window": "1d",
        "update_every": "1m",
        "review_period": "week",
        "unit": "signups",
        "direction": "higher_is_better",
        "baseline": 80,
        "minimum": 50,
        "target": 100,
        "weight": 1,
        "expires_on": "2027-03-31",
        "indicator": "leading",
        "tracking_cost": {"amount": 0, "currency": "USD", "per": "month"},
        "data_collection": "signup events from the product backend",
    }
    definition.update(overrides)
    return definition


def make_kpi(**overrides: Any) -> KpiDefinition:
    return KpiDefinition.model_validate(kpi_dict(**overrides))


def make_catalog(*kpis: KpiDefinition) -> Catalog:
    return Catalog.from_definitions(kpis)


def event(
    type_: str = "signup",
    *,
    source: str = "web",
    at: datetime = T0,
    value: float | None = None,
    subject_id: str | None = None,
    **properties: Any,
) -> EventEnvelope:
    return EventEnvelope.model_validate(
        {
            "event_id": f"e{next(_ids)}",
            "source": source,
            "type": type_,
            "occurred_at": at,
            "received_at": at,
            "subject_id": subject_id,
            "value": value,
            "properties": properties,
        }
    )
