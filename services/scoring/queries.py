"""The read side of scoring: KPI views, the scorecard, history, lead/lag, periods.

Everything here is computed from the catalog, the stored buckets and the published
values; history is recomputed from buckets (exact), not sampled from publishes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scoring.catalog_state import CatalogState
from services.scoring.domain.catalog import NOMINAL_PERIOD, KpiDefinition
from services.scoring.domain.coverage import kpi_coverage
from services.scoring.domain.derived import Expression, evaluate_expression
from services.scoring.domain.evaluate import value_as_of
from services.scoring.domain.leadlag import (
    LinkAnalysis,
    common_period,
    early_warnings,
    lead_lag,
    link_lead_lag,
)
from services.scoring.domain.periods import period_analysis, period_series, series_span
from services.scoring.domain.reported import current_value, reported_series
from services.scoring.domain.scoring import (
    as_status,
    assess,
    expiry,
    score_entry,
    scorecard,
)
from services.scoring.domain.targets import in_force
from services.scoring.repository import (
    BucketRepository,
    CatalogRepository,
    CurrentRepository,
    ReportedRepository,
)
from services.scoring.views import kpi_view
from shared.contracts.kpi_values import KpiStatus
from shared.identity.domain import redact
from shared.settings import ScoringSettings

MAX_HISTORY_POINTS = 1000
TREND_POINTS = 40
ANALYSED_PERIODS = 6
LEAD_LAG_PERIODS = 24


#: Which KPIs the caller may read; ``None`` in a call means every KPI.
Visible = Callable[[KpiDefinition], bool]


def _everything(_kpi: KpiDefinition) -> bool:
    return True


# The instants a history may ask about. Event times start at the epoch (Kafka
# timestamps count from it), and the far end leaves room for the window subtracted
# from ``from`` and the step added past ``to``, which overflow Python's datetime near
# year 1 and year 9999.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


class QueryError(ValueError):
    """A read request that cannot be answered as asked (the message says why)."""


class OutOfRange(QueryError):
    """A parameter outside the range the read can answer for (the message names both)."""


def check_instant(name: str, value: datetime | None) -> None:
    """Refuse an aware instant outside ``EARLIEST``..``LATEST``, naming the parameter.

    Compares before converting: converting year 1 or 9999 with an offset to UTC is
    itself what overflows.
    """
    if value is not None and not EARLIEST <= value <= LATEST:
        raise OutOfRange(
            f"'{name}' must be between {EARLIEST.isoformat().replace('+00:00', 'Z')} and "
            f"{LATEST.isoformat().replace('+00:00', 'Z')}"
        )


@dataclass(frozen=True, slots=True)
class KpiQueries:
    sessions: async_sessionmaker[AsyncSession]
    catalog: CatalogState
    buckets: BucketRepository
    current: CurrentRepository
    changes: CatalogRepository
    settings: ScoringSettings
    reported: ReportedRepository = field(default_factory=ReportedRepository)
    # Alerts' "expiring soon" notice comes this many days ahead; the page says the same.
    expiry_warning_days: int = 14

    async def list_kpis(self, visible: Visible | None = None) -> list[dict[str, Any]]:
        """The KPIs the caller may read; links to hidden KPIs are left out."""
        visible = visible or _everything
        now = datetime.now(UTC)
        catalog = self.catalog.catalog
        shown = {kpi.key for kpi in catalog if visible(kpi)}
        async with self.sessions() as session:
            current = await self.current.all(session)
            statuses: dict[str, KpiStatus] = {
                k: as_status(v.status) for k, v in current.items() if k in catalog
            }
            warnings = early_warnings(catalog, statuses)
            data_since = await self.buckets.first_bucket_starts(session, list(catalog.by_key))
            views = []
            today = self._today()
            for kpi in catalog:
                if kpi.key not in shown:
                    continue
                trend = await self.current.recent(session, kpi.key, now - kpi.window)
                value = current.get(kpi.key)
                coverage = kpi_coverage(
                    kpi, catalog, data_since, value.as_of if value else now
                )
                judged = in_force(kpi, now, self.catalog.tz)
                warned = [k for k in warnings.get(kpi.key, []) if k in shown]
                view = kpi_view(
                    judged, value, trend, warned, coverage,
                    shown=shown, trend_points=TREND_POINTS,
                )
                state = expiry(kpi, today, self.expiry_warning_days)
                views.append(
                    view
                    | {
                        "expired": state.expired,
                        "expiring_soon": state.expiring_soon,
                        "expires_in_days": state.days_left,
                    }
                )
        return views

    async def scorecard(self, visible: Visible | None = None) -> dict[str, Any]:
        """Computed over the KPIs the caller may read only: a hidden KPI counts nowhere,
        neither in its perspective's weighted mean nor in the overall score."""
        visible = visible or _everything
        catalog = self.catalog.catalog
        today = self._today()
        async with self.sessions() as session:
            current = await self.current.all(session)
        entries = []
        for kpi in catalog:
            if not visible(kpi):
                continue
            value = current.get(kpi.key)
            judged = in_force(kpi, datetime.now(UTC), self.catalog.tz)
            entries.append(score_entry(judged, value.value if value else None, today))
        card = scorecard(entries)
        return {
            "overall": card.overall,
            "perspectives": [
                {
                    "perspective": name,
                    "score": part.score,
                    "weight": part.weight,
                    "kpis": [*part.kpis, *part.no_data, *part.expired],
                    "scored": list(part.kpis),
                    "no_data": list(part.no_data),
                    "expired": list(part.expired),
                }
                for name, part in card.per_perspective.items()
            ],
        }

    async def detail(self, key: str, visible: Visible | None = None) -> dict[str, Any]:
        visible = visible or _everything
        kpi = self._kpi(key)
        catalog = self.catalog.catalog
        now = datetime.now(UTC)
        views = {v["key"]: v for v in await self.list_kpis(visible)}
        async with self.sessions() as session:
            # Links where this KPI lags (its leading indicators) and where it leads, among
            # the KPIs the caller may read.
            links = [
                (lead, kpi.key) for lead in kpi.leading_indicators if visible(catalog[lead])
            ] + [
                (kpi.key, other.key)
                for other in catalog
                if kpi.key in other.leading_indicators and visible(other)
            ]
            lead_lag_rows = []
            for leading_key, lagging_key in links:
                leading, lagging = catalog[leading_key], catalog[lagging_key]
                period = common_period(leading.review_period, lagging.review_period)
                start, end = series_span(now, period, self.catalog.tz, LEAD_LAG_PERIODS)
                start -= timedelta(seconds=1)
                if _not_folded(leading) or _not_folded(lagging):
                    # Reported or derived: their series come from entries or inputs.
                    lead, lag = [
                        await self._period_series(
                            session,
                            item.model_copy(update={"review_period": period}),
                            now,
                            periods=LEAD_LAG_PERIODS,
                        )
                        for item in (leading, lagging)
                    ]
                    analysis = LinkAnalysis(
                        period,
                        lead_lag(
                            lead,
                            lag,
                            max_lag=self.settings.max_lag_periods,
                            min_points=self.settings.min_correlation_points,
                        ),
                    )
                else:
                    buckets = {
                        **await self.buckets.buckets(session, leading_key, start, end),
                        **await self.buckets.buckets(session, lagging_key, start, end),
                    }
                    analysis = link_lead_lag(
                        leading,
                        lagging,
                        buckets,
                        tz=self.catalog.tz,
                        now=now,
                        periods=LEAD_LAG_PERIODS,
                        max_lag=self.settings.max_lag_periods,
                        min_points=self.settings.min_correlation_points,
                    )
                result = analysis.result
                lead_lag_rows.append(
                    {
                        "leading": leading_key,
                        "lagging": lagging_key,
                        "period": analysis.period,
                        "best_lag": result.best_lag if result else None,
                        "r": result.r if result else None,
                        "points": result.points if result else 0,
                        "enough_points": result is not None,
                    }
                )
            own = await self._period_series(session, kpi, now, periods=ANALYSED_PERIODS)
        rows = period_analysis(kpi, own[-ANALYSED_PERIODS:], now, self.catalog.tz)
        definition = redact(kpi.model_dump(mode="json", exclude_none=True))
        definition["leading_indicators"] = views[kpi.key]["leading_indicators"]
        return {
            "kpi": views[kpi.key],
            "definition": definition,
            "lead_lag": lead_lag_rows,
            "periods": [
                {
                    "period_start": row.start.isoformat(),
                    "period_end": row.end.isoformat(),
                    "elapsed": row.elapsed,
                    "actual": row.actual,
                    "expected": row.expected,
                    "gap": row.gap,
                    "previous": row.previous,
                    "change": row.change,
                    "change_pct": None if row.change_ratio is None else 100 * row.change_ratio,
                }
                for row in rows
            ],
        }

    async def history(
        self, key: str, start: datetime | None, end: datetime | None, step_s: int | None
    ) -> dict[str, Any]:
        kpi = self._kpi(key)
        check_instant("from", start)
        check_instant("to", end)
        end = (end or datetime.now(UTC)).astimezone(UTC)
        start = (start or end - kpi.window).astimezone(UTC)
        if start >= end:
            raise QueryError("'from' must be before 'to'")
        step = timedelta(seconds=step_s) if step_s else (end - start) / TREND_POINTS
        if step.total_seconds() < 1:
            raise QueryError("'step' must be at least 1 second")
        if (end - start) / step > MAX_HISTORY_POINTS:
            raise QueryError(
                f"at most {MAX_HISTORY_POINTS} points per request: widen 'step' or narrow the range"
            )
        async with self.sessions() as session:
            if kpi.formula.derived:
                # Derived values are not kept per bucket: their history is what was published.
                recent = await self.current.recent(session, kpi.key, start)
                return {
                    "kpi": kpi.key,
                    "step_s": step.total_seconds(),
                    "points": [
                        {"at": at.isoformat(), "value": value, "status": status}
                        for at, value, status in recent
                        if at <= end
                    ],
                }
            if kpi.formula.is_reported:
                # Reaching back two review periods covers the previous period's value.
                since = start - 2 * NOMINAL_PERIOD[kpi.review_period]
                entered = (await self.reported.values(session, [kpi.key], since)).get(kpi.key, {})
            else:
                buckets = await self.buckets.buckets(session, kpi.key, start - kpi.window, end)
        points = []
        at = start
        while at <= end:
            if kpi.formula.is_reported:
                value, _ = current_value(kpi, entered, at, self.catalog.tz)
            else:
                value = value_as_of(kpi, buckets, at).value
            points.append(
                {
                    "at": at.isoformat(),
                    "value": value,
                    "status": assess(in_force(kpi, at, self.catalog.tz), value).status,
                }
            )
            at += step
        return {"kpi": kpi.key, "step_s": step.total_seconds(), "points": points}

    async def change_history(self, key: str) -> list[dict[str, Any]]:
        """What changed in a KPI's definition, when and by whom (retired KPIs too)."""
        async with self.sessions() as session:
            rows = await self.changes.history(session, key)
        # Owner URLs are write-only: a change shows that one changed, never its value.
        return [{**redact(row), "at": row["at"].isoformat()} for row in rows]

    async def _period_series(
        self, session: AsyncSession, kpi: KpiDefinition, now: datetime, *, periods: int
    ) -> list[tuple[datetime, float | None]]:
        tz = self.catalog.tz
        first, end = series_span(now, kpi.review_period, tz, periods)
        expression = kpi.formula.expression
        if expression is not None:
            return await self._derived_series(session, kpi, expression, now, periods)
        if kpi.formula.is_reported:
            entered = await self.reported.values(session, [kpi.key], first)
            return reported_series(kpi, entered.get(kpi.key, {}), tz, first, now)
        buckets = await self.buckets.buckets(
            session, kpi.key, first - timedelta(seconds=1), end
        )
        return period_series(kpi, buckets, tz, first, now)

    async def _derived_series(
        self,
        session: AsyncSession,
        kpi: KpiDefinition,
        expression: Expression,
        now: datetime,
        periods: int,
    ) -> list[tuple[datetime, float | None]]:
        """The expression per period over its inputs' values of that period (each input
        taken on the derived KPI's review period) and of the period before."""
        catalog = self.catalog.catalog
        inputs = {
            key: await self._period_series(
                session,
                catalog[key].model_copy(update={"review_period": kpi.review_period}),
                now,
                periods=periods + 1,
            )
            for key in sorted(expression.inputs)
            if key in catalog
        }
        series: list[tuple[datetime, float | None]] = []
        for index in range(1, periods + 1):
            start = next(iter(inputs.values()))[index][0] if inputs else now
            current = {key: points[index][1] for key, points in inputs.items()}
            previous = {key: points[index - 1][1] for key, points in inputs.items()}
            series.append((start, evaluate_expression(expression, current, previous)))
        return series

    def _today(self) -> date:
        """The date in the company's time zone (expiry is a calendar date there)."""
        return datetime.now(self.catalog.tz).date()

    def _kpi(self, key: str) -> KpiDefinition:
        catalog = self.catalog.catalog
        if key not in catalog:
            raise KeyError(key)
        return catalog[key]


def _not_folded(kpi: KpiDefinition) -> bool:
    """Reported and derived KPIs have no buckets of their own."""
    return kpi.formula.is_reported or kpi.formula.derived is not None
