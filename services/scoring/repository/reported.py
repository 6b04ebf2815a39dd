"""Reported KPI values (one per KPI and period) and the history of every entry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.domain.reported import Entry
from services.scoring.tables import kpi_changes, reported_value_changes, reported_values
from shared.db.dialect import utc
from shared.db.upsert import upsert


@dataclass(frozen=True, slots=True)
class Written:
    """An entry as stored, with the value it replaced (None for a first entry)."""

    entry: Entry
    previous: float | None
    previous_note: str | None


class ReportedRepository:
    async def values(
        self, session: AsyncSession, keys: Sequence[str], since: datetime
    ) -> dict[str, dict[datetime, float]]:
        """Per KPI, the values of the periods starting at or after ``since``."""
        if not keys:
            return {}
        rows = await session.execute(
            select(
                reported_values.c.kpi_key,
                reported_values.c.period_start,
                reported_values.c.value,
            ).where(
                reported_values.c.kpi_key.in_(list(keys)),
                reported_values.c.period_start >= since,
            )
        )
        found: dict[str, dict[datetime, float]] = {}
        for key, start, value in rows:
            found.setdefault(key, {})[utc(start)] = value
        return found

    async def entries(
        self, session: AsyncSession, key: str, since: datetime
    ) -> list[dict[str, Any]]:
        """The KPI's stored values from ``since`` on, with who entered them and when."""
        rows = await session.execute(
            select(reported_values)
            .where(reported_values.c.kpi_key == key, reported_values.c.period_start >= since)
            .order_by(reported_values.c.period_start)
        )
        return [
            {
                "period_start": utc(row.period_start),
                "value": row.value,
                "note": row.note,
                "entered_by": row.entered_by,
                "entered_at": utc(row.entered_at),
            }
            for row in rows
        ]

    async def write(
        self, session: AsyncSession, entries: Sequence[Entry], *, actor: str, at: datetime
    ) -> list[Written]:
        """Store ``entries`` (replacing a period's earlier value) and record each one with
        the value it replaced. The caller commits."""
        if not entries:
            return []
        pairs = [(e.kpi_key, e.period_start) for e in entries]
        existing = {
            (row.kpi_key, utc(row.period_start)): (row.value, row.note)
            for row in await session.execute(
                select(
                    reported_values.c.kpi_key,
                    reported_values.c.period_start,
                    reported_values.c.value,
                    reported_values.c.note,
                )
                .where(
                    tuple_(reported_values.c.kpi_key, reported_values.c.period_start).in_(pairs)
                )
                .with_for_update()
            )
        }
        await upsert(
            session,
            reported_values,
            [
                {
                    "kpi_key": e.kpi_key,
                    "period_start": e.period_start,
                    "value": e.value,
                    "note": e.note,
                    "entered_by": actor,
                    "entered_at": at,
                }
                for e in entries
            ],
            key=["kpi_key", "period_start"],
            update=["value", "note", "entered_by", "entered_at"],
        )
        written = [
            Written(e, *existing.get((e.kpi_key, e.period_start), (None, None))) for e in entries
        ]
        await session.execute(
            reported_value_changes.insert(),
            [
                {
                    "kpi_key": w.entry.kpi_key,
                    "period_start": w.entry.period_start,
                    "old_value": w.previous,
                    "new_value": w.entry.value,
                    "old_note": w.previous_note,
                    "new_note": w.entry.note,
                    "changed_by": actor,
                    "changed_at": at,
                }
                for w in written
            ],
        )
        return written

    async def changes(self, session: AsyncSession, key: str) -> list[dict[str, Any]]:
        """Every entry and correction of the KPI's values, newest first."""
        rows = await session.execute(
            select(reported_value_changes)
            .where(reported_value_changes.c.kpi_key == key)
            .order_by(reported_value_changes.c.id.desc())
        )
        return [
            {
                "period_start": utc(row.period_start),
                "old_value": row.old_value,
                "new_value": row.new_value,
                "old_note": row.old_note,
                "new_note": row.new_note,
                "by": row.changed_by,
                "at": utc(row.changed_at),
            }
            for row in rows
        ]

    async def defined_since(
        self, session: AsyncSession, keys: Sequence[str]
    ) -> dict[str, datetime]:
        """When each KPI was first defined (its first catalog change): values of periods
        that ended before it are never due."""
        if not keys:
            return {}
        rows = await session.execute(
            select(kpi_changes.c.kpi_key, func.min(kpi_changes.c.at))
            .where(kpi_changes.c.kpi_key.in_(list(keys)))
            .group_by(kpi_changes.c.kpi_key)
        )
        return {key: utc(at) for key, at in rows if at is not None}
