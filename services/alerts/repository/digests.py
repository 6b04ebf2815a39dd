"""The weekly digest's storage: its outbox (unique per period, scope and route), the
values it last saw, and the week's breaches read from the alert history."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts.repository.leases import finish_leased, lease_due
from services.alerts.tables import alerts, digest_outbox, digest_snapshots
from shared.db.dialect import utc
from shared.db.upsert import insert_ignore


@dataclass(frozen=True, slots=True)
class DigestRow:
    id: int
    period_start: date
    scope: str
    scope_id: str
    channel: str
    target: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NewDigest:
    scope: str
    scope_id: str
    channel: str
    target: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BreachRow:
    kpi_key: str
    started_at: datetime
    resolved_at: datetime | None


class DigestRepository:
    async def enqueued(self, session: AsyncSession, period_start: date) -> bool:
        found = await session.execute(
            select(digest_outbox.c.id).where(digest_outbox.c.period_start == period_start).limit(1)
        )
        return found.first() is not None

    async def enqueue(
        self,
        session: AsyncSession,
        period_start: date,
        items: Sequence[NewDigest],
        now: datetime,
    ) -> None:
        """Rows already written for this period, scope and route stay as they are."""
        await insert_ignore(
            session,
            digest_outbox,
            [
                {
                    "period_start": period_start,
                    "scope": item.scope,
                    "scope_id": item.scope_id,
                    "channel": item.channel,
                    "target": item.target,
                    "payload": item.payload,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for item in items
            ],
            key=("period_start", "scope", "scope_id", "channel", "target"),
        )

    async def snapshot(self, session: AsyncSession, period_start: date) -> dict[str, float | None]:
        rows = await session.execute(
            select(digest_snapshots.c.kpi_key, digest_snapshots.c.value).where(
                digest_snapshots.c.period_start == period_start
            )
        )
        return {str(key): value for key, value in rows}

    async def save_snapshot(
        self, session: AsyncSession, period_start: date, values: Mapping[str, float | None]
    ) -> None:
        await insert_ignore(
            session,
            digest_snapshots,
            [
                {"period_start": period_start, "kpi_key": key, "value": value}
                for key, value in values.items()
            ],
            key=("period_start", "kpi_key"),
        )

    async def breaches(
        self, session: AsyncSession, start: datetime, end: datetime
    ) -> list[BreachRow]:
        """Below-minimum episodes that fired and were open at some moment of [start, end)."""
        rows = await session.execute(
            select(alerts.c.kpi_key, alerts.c.started_at, alerts.c.resolved_at)
            .where(
                alerts.c.condition == "below_minimum",
                alerts.c.fired_at.is_not(None),
                alerts.c.started_at < end,
                or_(alerts.c.resolved_at.is_(None), alerts.c.resolved_at >= start),
            )
            .order_by(alerts.c.started_at, alerts.c.id)
        )
        return [BreachRow(str(k), utc(s), utc(r)) for k, s, r in rows]

    async def release_expired_leases(self, session: AsyncSession, now: datetime) -> int:
        result = await session.execute(
            update(digest_outbox)
            .where(digest_outbox.c.status == "sending", digest_outbox.c.lease_until < now)
            .values(status="pending", next_attempt_at=now, lease_until=None, claim_token=None)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def claim_due(
        self, session: AsyncSession, *, now: datetime, limit: int, lease_until: datetime, token: str
    ) -> list[DigestRow]:
        if not await lease_due(
            session, digest_outbox, now=now, limit=limit, lease_until=lease_until, token=token
        ):
            return []
        rows = await session.execute(
            select(digest_outbox)
            .where(digest_outbox.c.claim_token == token)
            .order_by(digest_outbox.c.id)
        )
        return [
            DigestRow(
                id=row.id,
                period_start=row.period_start,
                scope=row.scope,
                scope_id=row.scope_id,
                channel=row.channel,
                target=row.target,
                payload=dict(row.payload),
                attempts=row.attempts,
                created_at=utc(row.created_at),
            )
            for row in rows
        ]

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
        return await finish_leased(
            session, digest_outbox, row_id, token=token, status=status, now=now, error=error,
            next_attempt_at=next_attempt_at,
        )
