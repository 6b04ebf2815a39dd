"""How the read API shows one KPI (owners' URLs redacted), and a view as a caller may see
it (links to hidden KPIs left out); kept apart from ``queries``, which reads."""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from datetime import date
from typing import Any

from services.scoring.domain.catalog import KpiDefinition
from services.scoring.domain.coverage import is_partial
from services.scoring.domain.scoring import assess, expiry
from services.scoring.repository import CurrentValue, Trend
from shared.identity.domain import redact


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
    """One KPI as the list and its detail page show it (``trend`` already thinned), to a
    caller who may read every KPI: ``for_caller`` narrows it."""
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
        "owners": redact([o.model_dump(exclude_none=True) for o in kpi.owners]),
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


def for_caller(view: dict[str, Any], shown: AbstractSet[str]) -> dict[str, Any]:
    """``view`` without its links to KPIs outside ``shown`` (the view itself is shared
    by every caller of the same second, so a narrowed one is a copy)."""
    leading = [k for k in view["leading_indicators"] if k in shown]
    warned = [k for k in view["early_warning"] if k in shown]
    if len(leading) == len(view["leading_indicators"]) and len(warned) == len(
        view["early_warning"]
    ):
        return view
    return view | {"leading_indicators": leading, "early_warning": warned}
