"""Evaluation: which KPIs are due, their values over their windows, and their status.

A KPI is re-evaluated as soon as events were folded into it (at most every
``_MIN_REEVALUATE_S``) and at least every ``update_every`` (windows slide without events).
A value is published at once when its status changes or it crosses the level at which
alerts resolves a breach (``shared.contracts.recovery``), otherwise at most once per
``update_every``. Windows are read through ``WindowTotals`` (``windows.py``), which
remembers their settled buckets between reads; values go on to ``publication.py``, KPIs
that left the catalog to ``retirement.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scoring.catalog_state import CatalogState
from services.scoring.domain.catalog import KpiDefinition
from services.scoring.domain.coverage import is_partial, window_coverage
from services.scoring.domain.evaluate import Evaluation, evaluate
from services.scoring.domain.leadlag import early_warnings
from services.scoring.domain.scoring import as_status, assess
from services.scoring.metrics import ScoringMetrics
from services.scoring.publication import PendingValue, ValuePublication, value_message
from services.scoring.repository import BucketRepository, CurrentRepository, CurrentValue
from services.scoring.retirement import RetirementAnnouncer
from services.scoring.windows import WindowTotals
from shared.bus.ports import PublishError
from shared.contracts.kpi_values import KpiStatus
from shared.contracts.recovery import has_recovered

log = logging.getLogger(__name__)

_MIN_REEVALUATE_S = 0.2
_TICK_S = 0.1
# The current value in the database (read API) is refreshed at most this often per KPI
# while neither its status changes nor a publication is due.
_STORE_EVERY_S = 1.0
# Evaluation may take at most about a tenth of the time: under heavy load the re-check
# interval stretches in proportion.
_LOAD_FACTOR = 10.0
# After a failed announcement of retired KPIs (Kafka or the database away), wait this
# long before the next try: ticks come every 0.1 s, and each try may wait out a publish.
_RETIRED_RETRY = timedelta(seconds=5)

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Evaluator:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        catalog: CatalogState,
        windows: WindowTotals,
        buckets: BucketRepository,
        current: CurrentRepository,
        publication: ValuePublication,
        retirement: RetirementAnnouncer,
        metrics: ScoringMetrics,
        clock: Clock = _utcnow,
        recovery_margin: Callable[[str], float] = lambda _key: 0.0,
    ) -> None:
        self._sessions = sessions
        self._catalog = catalog
        self._windows = windows
        self._buckets = buckets
        self._current = current
        self._publication = publication
        self._retirement = retirement
        self._announce_not_before: datetime | None = None
        self._metrics = metrics
        self._clock = clock
        self._recovery_margin = recovery_margin
        self._dirty: set[str] = set()
        self._evaluated_at: dict[str, datetime] = {}
        self._folded_at: dict[str, datetime] = {}
        # Per KPI, when its data began (its first bucket): what its coverage is taken from.
        self._data_since: dict[str, datetime] = {}
        self._statuses: dict[str, KpiStatus] = {}
        # What this process last wrote per KPI: (value, status, written at, published at).
        self._written: dict[str, tuple[float | None, str, datetime, datetime]] = {}
        self._reevaluate_s = _MIN_REEVALUATE_S
        self._wake = asyncio.Event()
        self._started_at = clock()

    def mark(self, oldest: Mapping[str, datetime]) -> None:
        """Events were folded into these KPIs, into buckets from these starts on."""
        now = self._clock()
        for key, start in oldest.items():
            self._folded_at[key] = now
            since = self._data_since.get(key)
            if since is None or start < since:
                self._data_since[key] = start
        self._dirty.update(oldest)
        self._windows.changed(oldest)
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        async with self._sessions() as session:
            stored = await self._current.all(session)
        self._statuses = {k: as_status(v.status) for k, v in stored.items()}
        self._written = {
            k: (v.value, v.status, v.published_at, v.published_at) for k, v in stored.items()
        }
        while not stop.is_set():
            self._wake.clear()
            started = time.perf_counter()
            try:
                await self.tick()
            except Exception:
                # The next tick retries; a database or broker hiccup must not stop scoring.
                log.exception("kpi evaluation failed")
                await asyncio.sleep(1)
            spent = time.perf_counter() - started
            self._reevaluate_s = max(_MIN_REEVALUATE_S, _LOAD_FACTOR * spent)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), _TICK_S)
            await asyncio.sleep(self._reevaluate_s if self._dirty else 0)

    async def tick(self) -> None:
        now = self._clock()
        catalog = self._catalog.catalog
        retrying = self._announce_not_before is not None and now < self._announce_not_before
        if not retrying and self._written.keys() - catalog.by_key.keys():
            try:
                await self._retire(catalog.by_key.keys(), now)
                self._announce_not_before = None
            except Exception:
                # Kafka or the database away: announce later, but never hold up the
                # active KPIs' evaluation for it.
                log.exception("announcing retired kpis failed; retrying in %s", _RETIRED_RETRY)
                self._announce_not_before = now + _RETIRED_RETRY
        due = [kpi for kpi in catalog if self._is_due(kpi, now)]
        if not due:
            return
        # Clear the marks before reading: events folded while we read mark the KPI
        # again, so their value is looked at on the next tick instead of being lost.
        for kpi in due:
            self._dirty.discard(kpi.key)
        try:
            async with self._sessions() as session:
                await self._refresh_data_since(session, due, now)
                evaluations = await self.evaluate_all(session, due, now)
        except Exception:
            self._dirty.update(kpi.key for kpi in due)
            raise
        for kpi in due:
            self._statuses[kpi.key] = assess(kpi, evaluations[kpi.key].value).status
            self._evaluated_at[kpi.key] = now
        warnings = early_warnings(catalog, self._statuses)
        pending = [
            write
            for kpi in due
            if (write := self._assess(kpi, evaluations[kpi.key], now, warnings.get(kpi.key, [])))
        ]
        try:
            await self._store(pending, now)
        except Exception:
            # A database error: nothing of this tick was stored; evaluate it again.
            self._dirty.update(p.value.kpi_key for p in pending)
            raise

    async def _retire(self, active: AbstractSet[str], now: datetime) -> None:
        gone = sorted(self._written.keys() - active)
        await self._retirement.announce(gone, active, now)
        for key in gone:
            self._written.pop(key, None)
            self._statuses.pop(key, None)

    async def _refresh_data_since(
        self, session: AsyncSession, kpis: list[KpiDefinition], now: datetime
    ) -> None:
        """Read when the data began of the KPIs whose window is not known to be full: a
        backfill, or another instance's fold, may have moved it back. Once full, a
        window stays full, so those are not asked again."""
        unsure = [kpi.key for kpi in kpis if is_partial(self._coverage(kpi, now))]
        if unsure:
            found = await self._buckets.first_bucket_starts(session, unsure)
            for key in unsure:
                if key in found:
                    self._data_since[key] = found[key]
                else:
                    self._data_since.pop(key, None)

    def _coverage(self, kpi: KpiDefinition, now: datetime) -> float:
        return window_coverage(kpi.window, self._data_since.get(kpi.key), now)

    def _is_due(self, kpi: KpiDefinition, now: datetime) -> bool:
        last = self._evaluated_at.get(kpi.key)
        if last is None:
            return True
        if kpi.key in self._dirty:
            return (now - last).total_seconds() >= self._reevaluate_s
        return now - last >= kpi.update_every

    async def evaluate_all(
        self, session: AsyncSession, kpis: list[KpiDefinition], as_of: datetime
    ) -> dict[str, Evaluation]:
        """Each KPI's value over its window ending at ``as_of``."""
        totals = await self._windows.read(session, kpis, as_of)
        return {
            kpi.key: evaluate(
                kpi.formula,
                [totals[kpi.key].get(term) for term in range(len(kpi.formula.sides()))],
            )
            for kpi in kpis
        }

    def _worth_writing(self, kpi: KpiDefinition, value: CurrentValue, now: datetime) -> bool:
        """Skip the database round trip when it would change nothing that matters yet.

        The claim in the database stays the authority on publishing (other instances
        may publish too); this only avoids asking it when the answer cannot be yes.
        """
        written = self._written.get(kpi.key)
        if written is None:
            return True
        old_value, old_status, written_at, published_at = written
        if value.status != old_status or now - published_at >= kpi.update_every:
            return True
        return value.value != old_value and (now - written_at).total_seconds() >= _STORE_EVERY_S

    def _assess(
        self, kpi: KpiDefinition, evaluation: Evaluation, now: datetime, leading: list[str]
    ) -> PendingValue | None:
        """Update the gauges; the value to store (and maybe publish), if it is worth it."""
        assessment = assess(kpi, evaluation.value)
        value = CurrentValue(
            kpi_key=kpi.key,
            value=evaluation.value,
            numerator=evaluation.numerator,
            denominator=evaluation.denominator,
            status=assessment.status,
            score=assessment.score,
            as_of=now,
            published_at=now,
        )
        stale = now - self._folded_at.get(kpi.key, self._started_at) > 2 * kpi.update_every
        self._metrics.kpi(
            kpi.key, evaluation.value, assessment.score, assessment.status, now.timestamp()
        )
        self._metrics.stale.labels(kpi.key).set(1.0 if stale else 0.0)
        if not self._worth_writing(kpi, value, now):
            written = self._written.get(kpi.key)
            if written is not None and written[0] != value.value:
                # A newer value waits for the store interval: look again, don't drop it.
                self._dirty.add(kpi.key)
            return None
        message = value_message(
            kpi,
            evaluation,
            as_of=now,
            computed_at=self._clock(),
            status=assessment.status,
            score=assessment.score,
            leading=leading,
            coverage=self._coverage(kpi, now),
        )
        prompt = self._crossed_recovery(kpi, value)
        return PendingValue(
            value, message, not_since=now if prompt else now - kpi.update_every
        )

    def _crossed_recovery(self, kpi: KpiDefinition, value: CurrentValue) -> bool:
        """Whether the value crossed alerts' recovery level since the last one written:
        without a publication now, a resolved breach would stay open on the page and in
        alerts until the next periodic one."""
        written = self._written.get(kpi.key)
        if written is None or written[0] is None or value.value is None:
            return False
        margin = self._recovery_margin(kpi.key)
        before = has_recovered(
            written[0], kpi.minimum, kpi.direction, status=written[1], margin=margin
        )
        after = has_recovered(
            value.value, kpi.minimum, kpi.direction, status=value.status, margin=margin
        )
        return before != after

    async def _store(self, pending: list[PendingValue], now: datetime) -> None:
        """Store and publish the tick's values; if Kafka refuses, the KPIs are evaluated
        and offered again on the next tick."""
        if not pending:
            return
        try:
            claimed = await self._publication.store(pending)
        except PublishError as exc:
            self._dirty.update(p.value.kpi_key for p in pending)
            log.warning(
                "kpi values not published, retrying",
                extra={"kpis": [p.value.kpi_key for p in pending], "error": str(exc)},
            )
            return
        for p in pending:
            key = p.value.kpi_key
            before = self._written.get(key)
            published_at = now if key in claimed else (before[3] if before else now)
            self._written[key] = (p.value.value, p.value.status, now, published_at)
