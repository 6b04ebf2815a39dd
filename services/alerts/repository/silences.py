"""Silences: time-boxed, per KPI; ending one early keeps it in the history."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts.tables import silences
from shared.db.dialect import utc


@dataclass(frozen=True, slots=True)
class SilenceRow:
    id: int
    kpi_key: str
    starts_at: datetime
    ends_at: datetime
    created_by: str
    reason: str


def _silence(row: Any) -> SilenceRow:
    return SilenceRow(
        id=row.id,
        kpi_key=row.kpi_key,
        starts_at=utc(row.starts_at),
        ends_at=utc(row.ends_at),
        created_by=row.created_by,
        reason=row.reason,
    )


class SilenceRepository:
    async def add(
        self,
        session: AsyncSession,
        *,
        kpi_key: str,
        starts_at: datetime,
        ends_at: datetime,
        created_by: str,
        reason: str,
    ) -> SilenceRow:
        new_id = (
            await session.execute(
                silences.insert()
                .values(
                    kpi_key=kpi_key,
                    starts_at=starts_at,
                    ends_at=ends_at,
                    created_by=created_by,
                    reason=reason,
                )
                .returning(silences.c.id)
            )
        ).scalar_one()
        return SilenceRow(int(new_id), kpi_key, starts_at, ends_at, created_by, reason)

    async def end(self, session: AsyncSession, silence_id: int, now: datetime) -> bool:
        """End a silence now; False if it does not exist or already ended."""
        result = await session.execute(
            update(silences)
            .where(silences.c.id == silence_id, silences.c.ends_at > now)
            .values(ends_at=now)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def get(self, session: AsyncSession, silence_id: int) -> SilenceRow | None:
        row = (await session.execute(select(silences).where(silences.c.id == silence_id))).first()
        return _silence(row) if row is not None else None

    async def search(
        self,
        session: AsyncSession,
        *,
        now: datetime,
        active_only: bool,
        kpi_keys: Collection[str] | None = None,
    ) -> list[SilenceRow]:
        query = select(silences).order_by(silences.c.id.desc()).limit(500)
        if kpi_keys is not None:
            query = query.where(silences.c.kpi_key.in_(sorted(kpi_keys)))
        if active_only:
            query = query.where(silences.c.starts_at <= now, silences.c.ends_at > now)
        return [_silence(row) for row in await session.execute(query)]

    async def silenced_kpis(
        self, session: AsyncSession, kpi_keys: set[str], now: datetime
    ) -> set[str]:
        if not kpi_keys:
            return set()
        rows = await session.execute(
            select(silences.c.kpi_key).where(
                silences.c.kpi_key.in_(sorted(kpi_keys)),
                silences.c.starts_at <= now,
                silences.c.ends_at > now,
            )
        )
        return set(rows.scalars())
