"""The notification outbox: written with the transition, drained by the delivery worker.

A row is ``pending`` until a worker claims it (``sending`` with a lease and a claim
token), then ``sent``, ``failed`` (final error or attempts exhausted) or ``suppressed``
(a silence covered the KPI). A row nobody can receive (an owner without any address and
no default one) is written ``undeliverable`` with the reason, and never claimed. A
``sending`` row whose lease ran out belonged to a worker that died mid-send: it goes
back to ``pending`` and is counted as an uncertain resend.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts.repository.leases import finish_leased, lease_due
from services.alerts.tables import alerts, outbox
from shared.db.dialect import utc


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    alert_id: int
    kpi_key: str
    channel: str
    target: str
    kind: str
    payload: dict[str, Any]
    status: str
    attempts: int
    uncertain_resends: int
    last_error: str | None
    next_attempt_at: datetime
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewNotification:
    alert_id: int
    channel: str
    target: str
    kind: str
    payload: dict[str, Any]
    suppressed: bool = False
    # Why nobody can receive it: written as ``undeliverable`` with this as its error.
    undeliverable: str | None = None


_COLUMNS = (*outbox.c, alerts.c.kpi_key)


def _row(row: Any) -> OutboxRow:
    return OutboxRow(
        id=row.id,
        alert_id=row.alert_id,
        kpi_key=row.kpi_key,
        channel=row.channel,
        target=row.target,
        kind=row.kind,
        payload=dict(row.payload),
        status=row.status,
        attempts=row.attempts,
        uncertain_resends=row.uncertain_resends,
        last_error=row.last_error,
        next_attempt_at=utc(row.next_attempt_at),
        created_at=utc(row.created_at),
        sent_at=utc(row.sent_at),
    )


def _joined() -> Any:
    return select(*_COLUMNS).select_from(outbox.join(alerts, outbox.c.alert_id == alerts.c.id))


def _initial_status(item: NewNotification) -> str:
    if item.suppressed:
        return "suppressed"
    return "pending" if item.undeliverable is None else "undeliverable"


class OutboxRepository:
    async def enqueue(
        self, session: AsyncSession, items: Sequence[NewNotification], now: datetime
    ) -> None:
        if not items:
            return
        await session.execute(
            outbox.insert(),
            [
                {
                    "alert_id": item.alert_id,
                    "channel": item.channel,
                    "target": item.target,
                    "kind": item.kind,
                    "payload": item.payload,
                    "status": _initial_status(item),
                    "last_error": item.undeliverable,
                    "attempts": 0,
                    "uncertain_resends": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for item in items
            ],
        )

    async def release_expired_leases(
        self, session: AsyncSession, now: datetime
    ) -> list[tuple[int, str]]:
        """Put rows abandoned mid-send back in the queue; returns (id, channel) of each."""
        result = await session.execute(
            update(outbox)
            .where(outbox.c.status == "sending", outbox.c.lease_until < now)
            .values(
                status="pending",
                next_attempt_at=now,
                lease_until=None,
                claim_token=None,
                uncertain_resends=outbox.c.uncertain_resends + 1,
            )
            .returning(outbox.c.id, outbox.c.channel)
        )
        return [(int(i), str(c)) for i, c in result]

    async def claim_due(
        self,
        session: AsyncSession,
        *,
        now: datetime,
        limit: int,
        lease_until: datetime,
        token: str,
    ) -> list[OutboxRow]:
        if not await lease_due(
            session, outbox, now=now, limit=limit, lease_until=lease_until, token=token
        ):
            return []
        rows = await session.execute(
            _joined().where(outbox.c.claim_token == token).order_by(outbox.c.id)
        )
        return [_row(row) for row in rows]

    async def finish(
        self,
        session: AsyncSession,
        row_id: int,
        *,
        token: str,
        status: str,
        now: datetime,
        error: str | None = None,
        next_attempt_at: datetime | None = None,
    ) -> bool:
        """Record a claimed row's outcome; False when our lease was lost meanwhile."""
        return await finish_leased(
            session, outbox, row_id, token=token, status=status, now=now, error=error,
            next_attempt_at=next_attempt_at,
        )

    async def history(
        self,
        session: AsyncSession,
        *,
        status: str | None = None,
        alert_id: int | None = None,
        limit: int = 100,
        kpi_keys: Collection[str] | None = None,
    ) -> list[OutboxRow]:
        """``kpi_keys``: only notifications about these KPIs (those the caller may read)."""
        query = _joined().order_by(outbox.c.id.desc()).limit(limit)
        if kpi_keys is not None:
            query = query.where(alerts.c.kpi_key.in_(sorted(kpi_keys)))
        if status is not None:
            query = query.where(outbox.c.status == status)
        if alert_id is not None:
            query = query.where(outbox.c.alert_id == alert_id)
        return [_row(row) for row in await session.execute(query)]

    async def depth(self, session: AsyncSession) -> tuple[int, datetime | None]:
        """Rows still to deliver, and when the oldest of them was written."""
        count, oldest = (
            await session.execute(
                select(func.count(), func.min(outbox.c.created_at)).where(
                    outbox.c.status.in_(("pending", "sending"))
                )
            )
        ).one()
        return int(count), utc(oldest)
