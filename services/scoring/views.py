"""How the read API shows one KPI (owners' URLs redacted, links to hidden KPIs left out)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.scoring.domain.catalog import KpiDefinition
from services.scoring.domain.coverage import is_partial
from services.scoring.domain.scoring import assess
from shared.identity.domain import redact


def kpi_view(
    kpi: KpiDefinition,
    current: Any,
    trend: list[tuple[datetime, float | None, str]],
    warnings: list[str],
    coverage: float,
    *,
    shown: set[str],
    trend_points: int,
) -> dict[str, Any]:
    """A KPI as the list and the detail show it: definition, value, status, trend."""
    value = current.value if current else None
    assessment = assess(kpi, value)
    step = max(1, len(trend) // trend_points)
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
        "window": kpi.model_dump(mode="json")["window"],
        "update_every": kpi.model_dump(mode="json")["update_every"],
        "review_period": kpi.review_period,
        "expires_on": kpi.expires_on.isoformat(),
        "owners": redact([o.model_dump(exclude_none=True) for o in kpi.owners]),
        "indicator": kpi.indicator,
        "leading_indicators": [k for k in kpi.leading_indicators if k in shown],
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
        "trend": [{"at": at.isoformat(), "value": v} for at, v, _ in trend[::step]],
    }
