"""The weekly digest: built once per week and scope, delivered like alert notifications.

A round first makes sure the due week's digests exist: built from the latest KPI facts,
the week's breaches and last week's values, written to ``digest_outbox`` in one
transaction. The outbox's unique key (week, scope, route) makes that idempotent, so
instances and restarts never write a week twice. Then due rows are claimed with a lease,
sent through the alert channels and recorded, as ``worker.py`` does for alerts: a crash
between send and record is the only way a digest can go out twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerts.channels.base import Sender, attempt
from services.alerts.domain.digest import (
    WEEK,
    Breach,
    Digest,
    DigestKpi,
    DigestOwner,
    digests_for,
    due_period,
    render_payload,
)
from services.alerts.domain.retry import backoff_s
from services.alerts.repository import KpiLatest, KpiRepository
from services.alerts.repository.digests import DigestRepository, DigestRow, NewDigest
from shared.db.engine import transaction
from shared.i18n import LocalePolicy
from shared.settings import AlertsSettings

log = logging.getLogger(__name__)


def digest_kpi(latest: KpiLatest) -> DigestKpi:
    return DigestKpi(
        key=latest.kpi_key,
        name=latest.name,
        department=latest.department,
        unit=latest.unit,
        value=latest.value,
        status=latest.status,
        score=latest.score,
        expires_on=latest.expires_on,
        owners=tuple(
            DigestOwner(
                name=str(o.get("name") or ""),
                email=o.get("email"),
                webhook_url=o.get("webhook_url"),
                slack_webhook_url=o.get("slack_webhook_url"),
            )
            for o in latest.owners
        ),
    )


class DigestService:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        senders: Mapping[str, Sender],
        settings: AlertsSettings,
        locales: LocalePolicy,
        time_zone: str,
        clock: Callable[[], datetime],
    ) -> None:
        self._sessions = sessions
        self._senders = senders
        self._settings = settings
        self._locales = locales
        self._tz = ZoneInfo(time_zone)
        self._clock = clock
        self._repo = DigestRepository()
        self._kpis = KpiRepository()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            # Waiting first lets the consumer catch up after a start: a week's digest is
            # written once, so it must not be built from a half-loaded set of KPIs.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._settings.digest.interval_s)
            if stop.is_set():
                return
            try:
                await self.run_once()
            except (SQLAlchemyError, OSError):
                log.exception("digest round failed")

    async def run_once(self) -> int:
        """Write the due week's digests if they are not written yet; deliver what is due."""
        await self.enqueue_due()
        return await self.deliver_due()

    async def enqueue_due(self) -> int:
        now = self._clock()
        period = due_period(now, self._tz, self._settings.digest.send_hour)
        async with transaction(self._sessions) as session:
            if await self._repo.enqueued(session, period.start):
                return 0
            kpis = [digest_kpi(k) for k in await self._kpis.all(session)]
            if not kpis:
                return 0
            breaches = [
                Breach(b.kpi_key, b.started_at, b.resolved_at)
                for b in await self._repo.breaches(session, period.start_at, period.end_at)
            ]
            before = await self._repo.snapshot(session, period.start - WEEK)
            digests = digests_for(
                period,
                kpis,
                breaches=breaches,
                before=before,
                expiry_warning_days=self._settings.expiry_warning_days,
                department_emails=self._settings.digest.department_emails,
                default_email=self._settings.default_email,
            )
            items = [item for digest in digests for item in self._rows(digest)]
            await self._repo.enqueue(session, period.start, items, now)
            await self._repo.save_snapshot(session, period.start, {k.key: k.value for k in kpis})
        log.info("weekly digest written", extra={"period": period.start.isoformat()})
        return len(items)

    def _rows(self, digest: Digest) -> list[NewDigest]:
        rows = []
        for route in digest.routes:
            tr = self._locales.for_person(route.target)
            # The link opens the page on this digest's view, in the reader's language.
            query = urlencode({digest.scope: digest.scope_id, "lang": tr.locale})
            link = f"{self._settings.scorecard_url}?{query}"
            rows.append(
                NewDigest(
                    scope=digest.scope,
                    scope_id=digest.scope_id,
                    channel=route.channel,
                    target=route.target,
                    payload=render_payload(digest, route, tr, link),
                )
            )
        return rows

    async def deliver_due(self) -> int:
        now = self._clock()
        async with transaction(self._sessions) as session:
            await self._repo.release_expired_leases(session, now)
        token = uuid.uuid4().hex
        async with transaction(self._sessions) as session:
            rows = await self._repo.claim_due(
                session,
                now=now,
                limit=self._settings.outbox_batch,
                lease_until=now + timedelta(seconds=self._settings.outbox_lease_s),
                token=token,
            )
        await asyncio.gather(*(self._deliver(row, token) for row in rows))
        return len(rows)

    async def _deliver(self, row: DigestRow, token: str) -> None:
        error = await attempt(
            self._senders, row.channel, row.target, row.payload,
            timeout_s=self._settings.outbox_lease_s / 2, what="a digest",
        )
        status, next_at = "sent", None
        if error is not None:
            status = "failed"
            if error.retryable and row.attempts < self._settings.delivery_max_attempts:
                status = "pending"
                delay = backoff_s(
                    row.attempts,
                    base_s=self._settings.delivery_base_backoff_s,
                    cap_s=self._settings.delivery_max_backoff_s,
                    rand=random.random,
                )
                next_at = self._clock() + timedelta(seconds=delay)
        with contextlib.suppress(SQLAlchemyError, OSError):
            async with transaction(self._sessions) as session:
                await self._repo.finish(
                    session,
                    row.id,
                    token=token,
                    status=status,
                    now=self._clock(),
                    error=error.reason[:2000] if error else None,
                    next_attempt_at=next_at,
                )
