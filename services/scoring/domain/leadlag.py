"""Lead/lag analysis between a leading KPI and the lagging KPI it is declared to lead.

Both inputs are period series: ``(period_start, value | None)`` for consecutive review
periods (a missing period should be present with ``None``). They are aligned on the
sorted union of their period starts; the lagging series shifted by ``lag`` periods pairs
``leading[i]`` with ``lagging[i + lag]``. For every lag in 0..max_lag the Pearson
correlation over the pairs where both values are present is computed; lags with fewer
than ``min_points`` pairs, or with a constant side (r undefined), are left out.

Both series must be of one period. A link between KPIs with different review periods
(a weekly leading KPI, a monthly lagging one) is correlated on the coarser of the two:
both KPIs are evaluated per period of that length (``link_lead_lag``), and the lag counts
those periods. Pairing a weekly series with a monthly one by position would pair a week
with whichever month happened to follow it in the merged list of starts.

The best lag maximises ``|r|`` — a leading indicator may move against its lagging KPI
(first-response time up, satisfaction down) — with ties going to the shorter lag. ``r``
keeps its sign. The result is None when no lag has enough points.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from services.scoring.domain.aggregates import BucketKey, TermAggregate
from services.scoring.domain.catalog import Catalog, KpiDefinition, ReviewPeriod
from services.scoring.domain.periods import period_series, series_span
from shared.contracts.kpi_values import KpiStatus

#: Review periods from the finest to the coarsest.
PERIOD_ORDER: tuple[ReviewPeriod, ...] = ("day", "week", "month", "quarter")

Series = Sequence[tuple[datetime, float | None]]


@dataclass(frozen=True, slots=True)
class LagCorrelation:
    lag: int
    r: float
    points: int


@dataclass(frozen=True, slots=True)
class LeadLagResult:
    best_lag: int
    r: float
    points: int
    by_lag: tuple[LagCorrelation, ...]  # every lag that had enough points


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson's r, or None with fewer than 2 points or a constant side."""
    n = len(xs)
    if n != len(ys) or n < 2:
        return None
    mean_x, mean_y = math.fsum(xs) / n, math.fsum(ys) / n
    cov = math.fsum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    var_x = math.fsum((x - mean_x) ** 2 for x in xs)
    var_y = math.fsum((y - mean_y) ** 2 for y in ys)
    if var_x == 0 or var_y == 0:
        return None
    return max(-1.0, min(1.0, cov / math.sqrt(var_x * var_y)))


def lead_lag(
    leading: Series,
    lagging: Series,
    *,
    max_lag: int = 3,
    min_points: int = 6,
) -> LeadLagResult | None:
    """Correlate ``leading`` with ``lagging`` shifted by 0..max_lag periods."""
    starts = sorted({start for start, _ in leading} | {start for start, _ in lagging})
    lead_by = dict(leading)
    lag_by = dict(lagging)
    lead_values = [lead_by.get(start) for start in starts]
    lag_values = [lag_by.get(start) for start in starts]
    found: list[LagCorrelation] = []
    for lag in range(max_lag + 1):
        xs: list[float] = []
        ys: list[float] = []
        for i in range(len(starts) - lag):
            x, y = lead_values[i], lag_values[i + lag]
            if x is not None and y is not None:
                xs.append(x)
                ys.append(y)
        if len(xs) < max(min_points, 2):
            continue
        r = pearson(xs, ys)
        if r is not None:
            found.append(LagCorrelation(lag, r, len(xs)))
    if not found:
        return None
    best = max(found, key=lambda c: (abs(c.r), -c.lag))
    return LeadLagResult(best.lag, best.r, best.points, tuple(found))


@dataclass(frozen=True, slots=True)
class LinkAnalysis:
    period: ReviewPeriod  # the period both series were evaluated on; lags count these
    result: LeadLagResult | None


def common_period(a: ReviewPeriod, b: ReviewPeriod) -> ReviewPeriod:
    """The coarser of two review periods: each KPI can be evaluated on it."""
    return max(a, b, key=PERIOD_ORDER.index)


def link_lead_lag(
    leading: KpiDefinition,
    lagging: KpiDefinition,
    buckets: Mapping[BucketKey, TermAggregate],
    *,
    tz: tzinfo,
    now: datetime,
    periods: int,
    max_lag: int = 3,
    min_points: int = 6,
) -> LinkAnalysis:
    """Correlate a declared link over the last ``periods`` periods of its common period.

    ``buckets`` must hold both KPIs' buckets over ``series_span`` of the common period
    (more does no harm).
    """
    period = common_period(leading.review_period, lagging.review_period)
    first, _ = series_span(now, period, tz, periods)
    lead = period_series(leading, buckets, tz, first, now, period=period)
    lag = period_series(lagging, buckets, tz, first, now, period=period)
    return LinkAnalysis(period, lead_lag(lead, lag, max_lag=max_lag, min_points=min_points))


def early_warnings(catalog: Catalog, statuses: Mapping[str, KpiStatus]) -> dict[str, list[str]]:
    """Per lagging KPI, its declared leading indicators currently in ``breach``.

    Only KPIs with at least one leading indicator in breach appear; lists keep the
    catalog's order of ``leading_indicators``.
    """
    warnings: dict[str, list[str]] = {}
    for kpi in catalog:
        breached = [key for key in kpi.leading_indicators if statuses.get(key) == "breach"]
        if breached:
            warnings[kpi.key] = breached
    return warnings
