"""The period series a KPI's detail page correlates and analyses, planned before reading.

A detail page needs series of several KPIs (its own, those it is linked with, the inputs
of derived ones), each of buckets or of entered values. Planning what each needs first
lets the page read them with one statement per kind of data, not one per KPI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

from services.scoring.domain.aggregates import BucketKey, TermAggregate
from services.scoring.domain.catalog import Catalog, KpiDefinition
from services.scoring.domain.derived import Expression, evaluate_expression
from services.scoring.domain.leadlag import LinkAnalysis, common_period, lead_lag, link_lead_lag
from services.scoring.domain.periods import period_series, series_span
from services.scoring.domain.reported import reported_series

Series = list[tuple[datetime, float | None]]


@dataclass(slots=True)
class Needed:
    """Per folded KPI the (since, until] of its buckets to read, per reported KPI the
    first period of its entered values."""

    buckets: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)
    reported: dict[str, datetime] = field(default_factory=dict)

    def add(
        self, kpi: KpiDefinition, catalog: Catalog, tz: tzinfo, now: datetime, periods: int
    ) -> None:
        """Add what ``series`` of the same arguments reads."""
        first, end = series_span(now, kpi.review_period, tz, periods)
        expression = kpi.formula.expression
        if expression is not None:
            for key in sorted(expression.inputs):
                if key in catalog:
                    on_period = catalog[key].model_copy(update={"review_period": kpi.review_period})
                    self.add(on_period, catalog, tz, now, periods + 1)
        elif kpi.formula.is_reported:
            self.reported[kpi.key] = min(first, self.reported.get(kpi.key, first))
        else:
            since = first - timedelta(seconds=1)
            known_since, known_end = self.buckets.get(kpi.key, (since, end))
            self.buckets[kpi.key] = (min(since, known_since), max(end, known_end))


@dataclass(frozen=True, slots=True)
class Read:
    """What was read for a ``Needed`` (more than a series asks for does no harm)."""

    buckets: dict[str, dict[BucketKey, TermAggregate]]
    entered: dict[str, dict[datetime, float]]


def series(
    kpi: KpiDefinition, catalog: Catalog, *, tz: tzinfo, now: datetime, periods: int, read: Read
) -> Series:
    """The KPI's value per review period over the last ``periods`` of them."""
    first, _end = series_span(now, kpi.review_period, tz, periods)
    expression = kpi.formula.expression
    if expression is not None:
        return _derived_series(
            kpi, expression, catalog, tz=tz, now=now, periods=periods, read=read
        )
    if kpi.formula.is_reported:
        return reported_series(kpi, read.entered.get(kpi.key, {}), tz, first, now)
    return period_series(kpi, read.buckets.get(kpi.key, {}), tz, first, now)


def _derived_series(
    kpi: KpiDefinition,
    expression: Expression,
    catalog: Catalog,
    *,
    tz: tzinfo,
    now: datetime,
    periods: int,
    read: Read,
) -> Series:
    """The expression per period over its inputs' values of that period (each input
    taken on the derived KPI's review period) and of the period before."""
    inputs = {
        key: series(
            catalog[key].model_copy(update={"review_period": kpi.review_period}),
            catalog,
            tz=tz,
            now=now,
            periods=periods + 1,
            read=read,
        )
        for key in sorted(expression.inputs)
        if key in catalog
    }
    found: Series = []
    for index in range(1, periods + 1):
        start = next(iter(inputs.values()))[index][0] if inputs else now
        current = {key: points[index][1] for key, points in inputs.items()}
        previous = {key: points[index - 1][1] for key, points in inputs.items()}
        found.append((start, evaluate_expression(expression, current, previous)))
    return found


def link_analysis(
    leading: KpiDefinition,
    lagging: KpiDefinition,
    catalog: Catalog,
    *,
    tz: tzinfo,
    now: datetime,
    read: Read,
    periods: int,
    max_lag: int,
    min_points: int,
) -> LinkAnalysis:
    """A declared link correlated on the two KPIs' common period (``read`` must hold
    what ``Needed.add`` of each, on that period, asked for)."""
    period = common_period(leading.review_period, lagging.review_period)
    if not (_not_folded(leading) or _not_folded(lagging)):
        return link_lead_lag(
            leading,
            lagging,
            {**read.buckets.get(leading.key, {}), **read.buckets.get(lagging.key, {})},
            tz=tz,
            now=now,
            periods=periods,
            max_lag=max_lag,
            min_points=min_points,
        )
    # Reported or derived: their series come from entries or inputs.
    lead, lag = [
        series(
            item.model_copy(update={"review_period": period}),
            catalog,
            tz=tz,
            now=now,
            periods=periods,
            read=read,
        )
        for item in (leading, lagging)
    ]
    return LinkAnalysis(period, lead_lag(lead, lag, max_lag=max_lag, min_points=min_points))


def _not_folded(kpi: KpiDefinition) -> bool:
    """Reported and derived KPIs have no buckets of their own."""
    return kpi.formula.is_reported or kpi.formula.derived is not None
