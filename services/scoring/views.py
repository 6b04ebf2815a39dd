"""What the read API shows of one KPI (kept apart from ``queries``, which reads)."""

from __future__ import annotations

from datetime import date
from typing import Any

from services.scoring.domain.catalog import KpiDefinition
from services.scoring.domain.coverage import is_partial
from services.scoring.domain.scoring import assess, expiry
from services.scoring.repository import CurrentValue, Trend


def expiry_fields(kpi: KpiDefinition, today: date, warning_days: int) -> dict[str, Any]:
    state = expiry(kpi, today, warning_days)
    return {
        "expired": state.expired,
        "expiring_soon": state.expiring_soon,
        "expires_in_days": state.days_left,
    }


def kpi_view(
    kpi: KpiDefinition,
    current: CurrentValue | None,
    trend: Trend,
    warnings: list[str],
    coverage: float,
) -> dict[str, Any]:
    """One KPI as the list and its detail page show it (``trend`` already thinned)."""
    value = current.value if current else None
    assessment = assess(kpi, value)
    return {
        "key": kpi.key,
        "name": kpi.name,
        "objective": kpi.objective,
        "perspective": kpi.perspective,
        "stage": kpi.stage,
        "department": kpi.department,
        "unit": kpi.unit,
        "currency": kpi.currency,
        "direction": kpi.direction,
        "minimum": kpi.minimum,
        "target": kpi.target,
        "baseline": kpi.baseline,
        "weight": kpi.weight,
        **kpi.model_dump(mode="json", include={"window", "update_every"}),
        "review_period": kpi.review_period,
        "expires_on": kpi.expires_on.isoformat(),
        "owners": [o.model_dump(exclude_none=True) for o in kpi.owners],
        "indicator": kpi.indicator,
        "leading_indicators": list(kpi.leading_indicators),
        "early_warning": warnings,
        "value": value,
        "numerator": current.numerator if current else None,
        "denominator": current.denominator if current else None,
        "status": assessment.status,
        "score": assessment.score,
        "as_of": current.as_of.isoformat() if current else None,
        # The share of the window with data; below 1 the value is partial.
        "coverage": coverage,
        "partial": is_partial(coverage),
        "require_full_window": kpi.require_full_window,
        "trend": [{"at": at.isoformat(), "value": v} for at, v, _ in trend],
    }
