"""Time-driven conditions: hold-down ends, expiry, staleness, repeats; and the gauges.

Each KPI is evaluated in its own transaction. Several instances may run this at once:
every step is a compare-and-set and every episode has a unique dedupe key, so the
worst case is wasted work, never a second notice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerts.domain.conditions import (
    ONE_SHOT,
    Condition,
    expiry_condition,
    is_stale,
)
from services.alerts.domain.lifecycle import State, repeat_due
from services.alerts.metrics import AlertMetrics
from services.alerts.repository import KpiLatest
from services.alerts.transitions import AlertWriter, Evaluation
from shared.bus.ports import Subscriber
from shared.db.engine import transaction
from shared.metrics import ConsumerMetrics
from shared.settings import AlertsSettings

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        writer: AlertWriter,
        settings: AlertsSettings,
        metrics: AlertMetrics,
        clock: Callable[[], datetime],
        tz: tzinfo = UTC,
        on_commit: Callable[[], None] = lambda: None,
        subscriber: Subscriber | None = None,
        consumer_metrics: ConsumerMetrics | None = None,
    ) -> None:
        self._sessions = sessions
        self._writer = writer
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self._tz = tz
        self._on_commit = on_commit
        self._subscriber = subscriber
        self._consumer_metrics = consumer_metrics

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.run_once()
            except (SQLAlchemyError, OSError):
                log.exception("scheduler round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._settings.scheduler_interval_s)

    async def run_once(self) -> int:
        """One round over every known KPI; returns the notices enqueued."""
        async with self._sessions() as session:
            kpis = await self._writer.kpis.all(session)
        enqueued = 0
        for latest in kpis:
            async with transaction(self._sessions) as session:
                enqueued += await self._evaluate(session, latest, self._clock())
        enqueued += await self._repeats()
        if enqueued:
            self._on_commit()
        await self.refresh_gauges()
        return enqueued

    async def _evaluate(self, session: AsyncSession, latest: KpiLatest, now: datetime) -> int:
        writer = self._writer
        open_alerts = await writer.alerts.open_for(session, latest.kpi_key)
        evaluations: list[Evaluation] = []
        # A pending alert whose condition still holds (the consumer would have cleared
        # it otherwise) fires once its hold-down has passed, even without a new value.
        for condition in (Condition.BELOW_MINIMUM, Condition.EARLY_WARNING):
            pending = open_alerts.get(condition)
            if pending is not None and pending.state is State.PENDING:
                evaluations.append(Evaluation(condition, True, False, pending.value))
        # Expiry is a date on the company's calendar, not on UTC's.
        today = now.astimezone(self._tz).date()
        due = expiry_condition(latest.expires_on, today, self._settings.expiry_warning_days)
        if latest.expires_on is not None or open_alerts.keys() & ONE_SHOT:
            episode = latest.expires_on.isoformat() if latest.expires_on else None
            for condition in (Condition.EXPIRING_SOON, Condition.EXPIRED):
                hit = due is condition
                evaluations.append(Evaluation(condition, hit, not hit, latest.value, episode))
        # A KPI that never received data is stale counting from when it was first heard of.
        since = latest.fresh_since
        stale = is_stale(since, latest.update_every_s, now)
        if stale or Condition.STALE in open_alerts:
            episode = since.isoformat() if since else None
            evaluations.append(Evaluation(Condition.STALE, stale, not stale, latest.value, episode))
        enqueued = 0
        for evaluation in evaluations:
            current = open_alerts.get(evaluation.condition)
            enqueued += await writer.apply(session, latest, current, evaluation, now)
        return enqueued

    async def _repeats(self) -> int:
        interval = self._settings.repeat_interval_s
        async with self._sessions() as session:
            firing = await self._writer.alerts.search(session, state=State.FIRING, limit=10_000)
        enqueued = 0
        for alert in firing:
            now = self._clock()
            if not repeat_due(
                state=alert.state,
                acked=alert.acked_at is not None,
                one_shot=alert.condition in ONE_SHOT,
                last_notified_at=alert.last_notified_at,
                now=now,
                repeat_interval_s=interval,
            ):
                continue
            async with transaction(self._sessions) as session:
                latest = await self._writer.kpis.get(session, alert.kpi_key)
                cutoff = now - timedelta(seconds=interval)
                if latest is None or not await self._writer.alerts.claim_repeat(
                    session, alert.id, due_before=cutoff, now=now
                ):
                    continue
                enqueued += await self._writer.notify(
                    session, alert, latest, kind="repeat", value=latest.value, now=now
                )
        return enqueued

    async def refresh_gauges(self) -> None:
        async with self._sessions() as session:
            counts = await self._writer.alerts.count_by_state(session)
            depth, oldest = await self._writer.outbox.depth(session)
        self._metrics.set_alert_counts(counts)
        self._metrics.outbox_depth.set(depth)
        age = (self._clock() - oldest).total_seconds() if oldest is not None else 0.0
        self._metrics.outbox_oldest_age.set(max(0.0, age))
        if self._subscriber is not None and self._consumer_metrics is not None:
            for pid, lag in (await self._subscriber.lag()).items():
                self._consumer_metrics.set_lag(pid.topic, pid.partition, lag)
