"""The read side of scoring: KPI views, the scorecard, history, lead/lag, periods.

Everything here is computed from the catalog, the stored buckets and the published
values; history is recomputed from buckets (exact), not sampled from publishes.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scoring.catalog_state import CatalogState
from services.scoring.data_since import DataSince
from services.scoring.domain.catalog import NOMINAL_PERIOD, Catalog, KpiDefinition
from services.scoring.domain.coverage import kpi_coverage
from services.scoring.domain.evaluate import value_as_of
from services.scoring.domain.leadlag import (
    common_period,
    early_warnings,
    leaders_in_breach,
)
from services.scoring.domain.periods import period_analysis
from services.scoring.domain.reported import current_value
from services.scoring.domain.scoring import as_status, assess, score_entry, scorecard
from services.scoring.domain.targets import in_force
from services.scoring.period_reads import Needed, Read, link_analysis, series
from services.scoring.repository import (
    BucketRepository,
    CatalogRepository,
    CurrentRepository,
    ReportedRepository,
    Trend,
)
from services.scoring.views import expiry_fields, for_caller, kpi_view
from shared.contracts.kpi_values import KpiStatus
from shared.identity.domain import redact
from shared.settings import ScoringSettings

MAX_HISTORY_POINTS = 1000
TREND_POINTS = 40
ANALYSED_PERIODS = 6
LEAD_LAG_PERIODS = 24
# The stored values change at most about once a second per KPI (the evaluator's store
# interval), so a list is reused that long.
LIST_REUSE_S = 1.0

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


@dataclass(slots=True)
class _Listed:
    """The last list of views, the catalog it is of, and when it was read."""

    catalog: Catalog | None = None
    at: float = -math.inf
    views: list[dict[str, Any]] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


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
    listed: _Listed = field(default_factory=_Listed)
    data_since: DataSince = field(default_factory=DataSince)

    async def list_kpis(self, visible: Visible | None = None) -> list[dict[str, Any]]:
        """The KPIs the caller may read; links to hidden KPIs are left out.

        Requests within ``LIST_REUSE_S`` of each other share one reading, as long as the
        catalog is the same: the stored values change at most about that often, and under
        load each request reading the whole catalog for itself made every request wait
        for all the others. The reading is of every KPI, the same for every caller; what
        a caller may not see is taken out of it afterwards."""
        listed, catalog = self.listed, self.catalog.catalog
        async with listed.lock:
            if listed.catalog is not catalog or time.monotonic() - listed.at >= LIST_REUSE_S:
                listed.views = await self._list(catalog)
                listed.catalog, listed.at = catalog, time.monotonic()
            views = listed.views
        if visible is None:
            return list(views)
        shown = {kpi.key for kpi in catalog if visible(kpi)}
        return [for_caller(view, shown) for view in views if view["key"] in shown]

    async def _list(self, catalog: Catalog) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        async with self.sessions() as session:
            current = await self.current.all(session)
            data_since = await self.data_since.refresh(session, self.buckets, catalog, catalog, now)
            trends = await self._trends(session, list(catalog), now)
        statuses: dict[str, KpiStatus] = {
            k: as_status(v.status) for k, v in current.items() if k in catalog
        }
        warnings = early_warnings(catalog, statuses)
        today = self._today()
        views = []
        for kpi in catalog:
            value = current.get(kpi.key)
            coverage = kpi_coverage(kpi, catalog, data_since, value.as_of if value else now)
            judged = in_force(kpi, now, self.catalog.tz)
            view = kpi_view(
                judged, value, trends.get(kpi.key, []), warnings.get(kpi.key, []), coverage
            )
            views.append(view | expiry_fields(kpi, today, self.expiry_warning_days))
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
        # Links where this KPI lags (its leading indicators) and where it leads, among the
        # KPIs the caller may read.
        links = [
            (lead, kpi.key) for lead in kpi.leading_indicators if visible(catalog[lead])
        ] + [
            (kpi.key, other.key)
            for other in catalog
            if kpi.key in other.leading_indicators and visible(other)
        ]
        # Every series the page needs is planned first and read at once: a statement per
        # kind of data, not per linked KPI.
        tz = self.catalog.tz
        needed = Needed()
        needed.add(kpi, catalog, tz, now, ANALYSED_PERIODS)
        for leading_key, lagging_key in links:
            leading, lagging = catalog[leading_key], catalog[lagging_key]
            period = common_period(leading.review_period, lagging.review_period)
            for linked in (leading, lagging):
                on_period = linked.model_copy(update={"review_period": period})
                needed.add(on_period, catalog, tz, now, LEAD_LAG_PERIODS)
        async with self.sessions() as session:
            current = await self.current.of(session, {kpi.key, *kpi.leading_indicators})
            trend = (await self._trends(session, [kpi], now)).get(kpi.key, [])
            data_since = await self.data_since.refresh(session, self.buckets, catalog, [kpi], now)
            read = Read(
                await self.buckets.buckets_of(session, needed.buckets),
                await self.reported.values(
                    session, sorted(needed.reported), min(needed.reported.values())
                )
                if needed.reported
                else {},
            )
        statuses = {k: as_status(v.status) for k, v in current.items()}
        value = current.get(kpi.key)
        coverage = kpi_coverage(kpi, catalog, data_since, value.as_of if value else now)
        view = kpi_view(
            in_force(kpi, now, tz),
            value,
            trend,
            leaders_in_breach(kpi, statuses),
            coverage,
        ) | expiry_fields(kpi, self._today(), self.expiry_warning_days)
        view = for_caller(view, {k for k in kpi.leading_indicators if visible(catalog[k])})
        lead_lag_rows = []
        for leading_key, lagging_key in links:
            analysis = link_analysis(
                catalog[leading_key],
                catalog[lagging_key],
                catalog,
                tz=tz,
                now=now,
                read=read,
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
        own = series(kpi, catalog, tz=tz, now=now, periods=ANALYSED_PERIODS, read=read)
        rows = period_analysis(kpi, own[-ANALYSED_PERIODS:], now, tz)
        definition = redact(kpi.model_dump(mode="json", exclude_none=True))
        definition["leading_indicators"] = view["leading_indicators"]
        return {
            "kpi": view,
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

    async def _trends(
        self, session: AsyncSession, kpis: list[KpiDefinition], now: datetime
    ) -> dict[str, Trend]:
        return await self.current.trends(
            session, {kpi.key: now - kpi.window for kpi in kpis}, points=TREND_POINTS
        )

    def _today(self) -> date:
        """The date in the company's time zone (expiry is a calendar date there)."""
        return datetime.now(self.catalog.tz).date()

    def _kpi(self, key: str) -> KpiDefinition:
        catalog = self.catalog.catalog
        if key not in catalog:
            raise KeyError(key)
        return catalog[key]
