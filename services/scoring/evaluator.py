"""Evaluates KPIs from their buckets and publishes KPI value messages.

A KPI is re-evaluated as soon as events were folded into it (at most every
``_MIN_REEVALUATE_S``) and at least every ``update_every`` (windows slide without events).
A value is published at once when its status changes or it crosses the level at which
alerts resolves a breach (``shared.contracts.recovery``), otherwise at most once per
``update_every`` — the claim in ``kpi_current`` enforces that across instances. Windows
are read through ``WindowTotals``, which remembers their settled buckets between reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scoring.catalog_state import CatalogState
from services.scoring.domain.catalog import KpiDefinition
from services.scoring.domain.evaluate import Evaluation, evaluate
from services.scoring.domain.leadlag import early_warnings
from services.scoring.domain.scoring import as_status, assess
from services.scoring.metrics import ScoringMetrics
from services.scoring.repository import (
    CatalogRepository,
    Claim,
    CurrentRepository,
    CurrentValue,
)
from services.scoring.windows import WindowTotals
from shared.bus.ports import OutgoingRecord, Publisher, PublishError
from shared.contracts.kpi_values import KpiStatus, KpiValueMessage
from shared.contracts.recovery import has_recovered
from shared.db.engine import transaction

log = logging.getLogger(__name__)

_MIN_REEVALUATE_S = 0.2
_TICK_S = 0.1
# The current value in the database (read API) is refreshed at most this often per KPI
# while neither its status changes nor a publication is due.
_STORE_EVERY_S = 1.0
# Evaluation may take at most about a tenth of the time: under heavy load the re-check
# interval stretches (e.g. 50 ms of queries -> every 500 ms at the least).
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
        current: CurrentRepository,
        catalog_repository: CatalogRepository,
        publisher: Publisher,
        topic: str,
        metrics: ScoringMetrics,
        clock: Clock = _utcnow,
        recovery_margin: Callable[[str], float] = lambda _key: 0.0,
    ) -> None:
        self._sessions = sessions
        self._catalog = catalog
        self._windows = windows
        self._current = current
        self._catalog_repository = catalog_repository
        self._announce_not_before: datetime | None = None
        self._publisher = publisher
        self._topic = topic
        self._metrics = metrics
        self._clock = clock
        self._recovery_margin = recovery_margin
        self._dirty: set[str] = set()
        self._evaluated_at: dict[str, datetime] = {}
        self._folded_at: dict[str, datetime] = {}
        self._statuses: dict[str, KpiStatus] = {}
        # What this process last wrote per KPI: (value, status, written at, published at).
        self._written: dict[str, tuple[float | None, str, datetime, datetime]] = {}
        self._reevaluate_s = _MIN_REEVALUATE_S
        self._wake = asyncio.Event()
        self._started_at = clock()

    def mark(self, oldest: Mapping[str, datetime]) -> None:
        """Events were folded into these KPIs, into buckets from these starts on."""
        now = self._clock()
        for key in oldest:
            self._folded_at[key] = now
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
                await self._announce_retired(catalog.by_key.keys(), now)
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
            self._dirty.update(write.value.kpi_key for write in pending)
            raise

    async def _announce_retired(self, active: AbstractSet[str], now: datetime) -> None:
        """Publish a last, ``retired`` message for each KPI that has a current value but
        left the catalog, so that alerts stops watching it (it would otherwise report it
        stale forever). Its current value goes in the same transaction: that is the
        claim (one instance announces) and the memory (announced once, across restarts);
        if Kafka refuses, both roll back and the next tick tries again."""
        gone = sorted(self._written.keys() - active)
        async with transaction(self._sessions) as session:
            definitions: dict[str, KpiDefinition] = {}
            for stored in await self._catalog_repository.definitions(session, gone):
                try:
                    kpi = KpiDefinition.model_validate(stored)
                except ValidationError:
                    # Stored by an older version and no longer valid: nothing to announce
                    # it with. Logged, not retried for ever.
                    log.warning("a retired kpi's stored definition is invalid",
                                extra={"kpi": stored.get("key")})
                    continue
                if kpi.key not in active:
                    definitions[kpi.key] = kpi
            claimed = await self._current.forget(session, list(definitions))
            computed_at = self._clock()
            records = [
                OutgoingRecord(
                    key=key.encode(),
                    value=value_message(
                        definitions[key], Evaluation(None), as_of=now,
                        computed_at=computed_at, status="no_data", score=None, leading=[],
                        retired=True,
                    ).to_bytes(),
                )
                for key in claimed
            ]
            if records:
                await self._publisher.publish(self._topic, records)
        for key in gone:
            self._written.pop(key, None)
            self._statuses.pop(key, None)
        if records:
            log.info("announced retired kpis", extra={"kpis": claimed})

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
    ) -> _Write | None:
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
        )
        prompt = self._crossed_recovery(kpi, value)
        return _Write(value, message, not_since=now if prompt else now - kpi.update_every)

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

    async def _store(self, writes: list[_Write], now: datetime) -> None:
        """Store every value and publish the claimed ones, in one transaction.

        If Kafka refuses, the claims roll back and the KPIs are evaluated and offered
        again on the next tick. One transaction per tick rather than per KPI: under load
        every KPI changes on every tick, and the round trips were most of the cost.
        """
        if not writes:
            return
        try:
            async with transaction(self._sessions) as session:
                claimed = await self._current.claim_publications(
                    session, [Claim(w.value, w.not_since) for w in writes]
                )
                records = [
                    OutgoingRecord(key=w.value.kpi_key.encode(), value=w.message.to_bytes())
                    for w in writes
                    if w.value.kpi_key in claimed
                ]
                if records:
                    await self._publisher.publish(self._topic, records)
        except PublishError as exc:
            self._dirty.update(w.value.kpi_key for w in writes)
            log.warning(
                "kpi values not published, retrying",
                extra={"kpis": [w.value.kpi_key for w in writes], "error": str(exc)},
            )
            return
        for write in writes:
            key = write.value.kpi_key
            before = self._written.get(key)
            published_at = now if key in claimed else (before[3] if before else now)
            self._written[key] = (write.value.value, write.value.status, now, published_at)


@dataclass(frozen=True, slots=True)
class _Write:
    value: CurrentValue
    message: KpiValueMessage
    not_since: datetime


def value_message(
    kpi: KpiDefinition,
    evaluation: Evaluation,
    *,
    as_of: datetime,
    computed_at: datetime,
    status: KpiStatus,
    score: float | None,
    leading: list[str],
    retired: bool = False,
) -> KpiValueMessage:
    """The message about ``kpi``'s value, with the thresholds in force."""
    return KpiValueMessage(
        kpi_key=kpi.key,
        name=kpi.name,
        value=evaluation.value,
        numerator=evaluation.numerator,
        denominator=evaluation.denominator,
        window_s=int(kpi.window.total_seconds()),
        as_of=as_of,
        computed_at=computed_at,
        status=status,
        score=score,
        minimum=kpi.minimum,
        target=kpi.target,
        direction=kpi.direction,
        owners=list(kpi.owners),
        expires_on=kpi.expires_on,
        update_every_s=max(1, int(kpi.update_every.total_seconds())),
        leading_indicators_in_breach=leading,
        retired=retired,
    )

