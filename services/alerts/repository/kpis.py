"""Latest facts per KPI and its recent observations (trend and staleness)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts.domain.facts import TrendPoint
from services.alerts.tables import kpi_latest, kpi_observations
from shared.db.dialect import utc
from shared.db.upsert import upsert


@dataclass(frozen=True, slots=True)
class KpiLatest:
    kpi_key: str
    name: str
    value: float | None
    status: str
    minimum: float
    target: float
    direction: str
    owners: list[dict[str, Any]]
    expires_on: date | None
    update_every_s: int
    leading_in_breach: list[str]
    as_of: datetime
    last_seen_at: datetime
    last_value_at: datetime | None
    # For the weekly digest (department views, scores); None from before they were kept.
    department: str | None = None
    unit: str | None = None
    score: float | None = None
    # When alerts first heard of the KPI (None only on rows older than the column).
    first_seen_at: datetime | None = None

    @property
    def fresh_since(self) -> datetime | None:
        """Since when the KPI is expected to have fresh data: its last fresh value, or,
        when none ever came, when it was first heard of."""
        return self.last_value_at or self.first_seen_at


def _latest(row: Any) -> KpiLatest:
    return KpiLatest(
        kpi_key=row.kpi_key,
        name=row.name,
        value=row.value,
        status=row.status,
        minimum=row.minimum,
        target=row.target,
        direction=row.direction,
        owners=list(row.owners or []),
        expires_on=row.expires_on,
        update_every_s=row.update_every_s,
        leading_in_breach=list(row.leading_in_breach or []),
        as_of=utc(row.as_of),
        last_seen_at=utc(row.last_seen_at),
        last_value_at=utc(row.last_value_at),
        department=row.department,
        unit=row.unit,
        score=row.score,
        first_seen_at=utc(row.first_seen_at),
    )


class KpiRepository:
    async def get(self, session: AsyncSession, kpi_key: str) -> KpiLatest | None:
        row = (
            await session.execute(select(kpi_latest).where(kpi_latest.c.kpi_key == kpi_key))
        ).first()
        return _latest(row) if row is not None else None

    async def all(self, session: AsyncSession) -> list[KpiLatest]:
        rows = await session.execute(select(kpi_latest).order_by(kpi_latest.c.kpi_key))
        return [_latest(row) for row in rows]

    async def forget(self, session: AsyncSession, kpi_key: str) -> None:
        """Stop watching a KPI: its latest value and its observations go."""
        await session.execute(delete(kpi_observations).where(kpi_observations.c.kpi_key == kpi_key))
        await session.execute(delete(kpi_latest).where(kpi_latest.c.kpi_key == kpi_key))

    async def save(self, session: AsyncSession, latest: KpiLatest) -> None:
        values = {
            "kpi_key": latest.kpi_key,
            "name": latest.name,
            "value": latest.value,
            "status": latest.status,
            "minimum": latest.minimum,
            "target": latest.target,
            "direction": latest.direction,
            "owners": latest.owners,
            "expires_on": latest.expires_on,
            "update_every_s": latest.update_every_s,
            "leading_in_breach": latest.leading_in_breach,
            "as_of": latest.as_of,
            "last_seen_at": latest.last_seen_at,
            "last_value_at": latest.last_value_at,
            "department": latest.department,
            "unit": latest.unit,
            "score": latest.score,
            "first_seen_at": latest.first_seen_at,
        }
        await upsert(
            session,
            kpi_latest,
            [values],
            key=("kpi_key",),
            update=tuple(name for name in values if name != "kpi_key"),
        )

    async def observe(
        self,
        session: AsyncSession,
        *,
        kpi_key: str,
        value: float | None,
        status: str,
        as_of: datetime,
        received_at: datetime,
        keep: int,
    ) -> None:
        """Append an observation and trim the KPI's history to the newest ``keep``."""
        await session.execute(
            kpi_observations.insert().values(
                kpi_key=kpi_key, value=value, status=status, as_of=as_of, received_at=received_at
            )
        )
        newest = (
            select(kpi_observations.c.id)
            .where(kpi_observations.c.kpi_key == kpi_key)
            .order_by(kpi_observations.c.as_of.desc(), kpi_observations.c.id.desc())
            .limit(keep)
        )
        await session.execute(
            delete(kpi_observations).where(
                kpi_observations.c.kpi_key == kpi_key,
                kpi_observations.c.id.not_in(newest.scalar_subquery()),
            )
        )

    async def trend(self, session: AsyncSession, kpi_key: str, limit: int) -> list[TrendPoint]:
        """The newest observations, oldest first (how a trend reads)."""
        rows = await session.execute(
            select(kpi_observations.c.as_of, kpi_observations.c.value)
            .where(kpi_observations.c.kpi_key == kpi_key)
            .order_by(kpi_observations.c.as_of.desc(), kpi_observations.c.id.desc())
            .limit(limit)
        )
        return [TrendPoint(utc(as_of), value) for as_of, value in reversed(rows.all())]
