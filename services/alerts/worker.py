"""Outbox delivery worker.

Each row is claimed in its own short transaction (status ``sending``, a lease and a
claim token), sent, then its outcome recorded in another. A ``kill -9`` therefore leaves
a row either ``pending`` (sent later, once) or ``sending`` with a lease; when that lease
runs out the row is re-sent and counted in ``kpipulse_notifications_uncertain_total``:
that is the only duplicate possible, a send whose success could not be recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerts.channels.base import Sender, attempt
from services.alerts.domain.retry import backoff_s
from services.alerts.metrics import AlertMetrics
from services.alerts.repository import OutboxRepository, OutboxRow, SilenceRepository
from shared.db.engine import transaction
from shared.settings import AlertsSettings

log = logging.getLogger(__name__)


class DeliveryWorker:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        senders: Mapping[str, Sender],
        settings: AlertsSettings,
        metrics: AlertMetrics,
        clock: Callable[[], datetime],
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._sessions = sessions
        self._senders = senders
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self._rand = rand
        self._outbox = OutboxRepository()
        self._silences = SilenceRepository()
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Called after a transition committed: deliver now instead of at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                busy = await self.run_once()
            except (SQLAlchemyError, OSError):
                log.exception("outbox delivery round failed")
                busy = 0
            if busy:
                continue  # more rows may be due right away
            self._wake.clear()
            waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(
                waiters,
                timeout=self._settings.outbox_poll_interval_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
            for waiter in waiters:
                waiter.cancel()

    async def run_once(self) -> int:
        """Release abandoned leases, then claim and deliver one batch of due rows."""
        now = self._clock()
        async with transaction(self._sessions) as session:
            released = await self._outbox.release_expired_leases(session, now)
        for row_id, channel in released:
            log.warning("re-sending a notification abandoned mid-send", extra={"outbox": row_id})
            self._metrics.uncertain.labels(channel).inc()
        token = uuid.uuid4().hex
        lease = timedelta(seconds=self._settings.outbox_lease_s)
        async with transaction(self._sessions) as session:
            rows = await self._outbox.claim_due(
                session,
                now=now,
                limit=self._settings.outbox_batch,
                lease_until=now + lease,
                token=token,
            )
            silenced = await self._silences.silenced_kpis(
                session, {row.kpi_key for row in rows}, now
            )
        await asyncio.gather(*(self._deliver(row, token, row.kpi_key in silenced) for row in rows))
        return len(rows)

    async def _deliver(self, row: OutboxRow, token: str, silenced: bool) -> None:
        if silenced:
            # A silence that began after the row was written still holds it back.
            await self._finish(row, token, "suppressed", error="silenced")
            self._metrics.suppressed.labels(row.channel).inc()
            return
        error = await attempt(
            self._senders, row.channel, row.target, row.payload,
            timeout_s=self._settings.outbox_lease_s / 2, what="a notification",
        )
        if error is None:
            if await self._finish(row, token, "sent"):
                self._metrics.sent.labels(row.channel).inc()
                self._metrics.delivery.labels(row.channel).observe(
                    max(0.0, (self._clock() - row.created_at).total_seconds())
                )
            return
        self._metrics.failed.labels(row.channel).inc()
        if error.retryable and row.attempts < self._settings.delivery_max_attempts:
            delay = backoff_s(
                row.attempts,
                base_s=self._settings.delivery_base_backoff_s,
                cap_s=self._settings.delivery_max_backoff_s,
                rand=self._rand,
            )
            next_at = self._clock() + timedelta(seconds=delay)
            await self._finish(row, token, "pending", error=error.reason, next_at=next_at)
            return
        log.error(
            "giving up on a notification",
            extra={"outbox": row.id, "channel": row.channel, "error": error.reason},
        )
        self._metrics.failed_final.labels(row.channel).inc()
        await self._finish(row, token, "failed", error=error.reason)

    async def _finish(
        self,
        row: OutboxRow,
        token: str,
        status: str,
        *,
        error: str | None = None,
        next_at: datetime | None = None,
    ) -> bool:
        # If recording fails the lease runs out and the row is retried (uncertain).
        with contextlib.suppress(SQLAlchemyError, OSError):
            async with transaction(self._sessions) as session:
                return await self._outbox.finish(
                    session,
                    row.id,
                    token=token,
                    status=status,
                    now=self._clock(),
                    error=error[:2000] if error else None,
                    next_attempt_at=next_at,
                )
        log.error("could not record a delivery outcome", extra={"outbox": row.id})
        return False
