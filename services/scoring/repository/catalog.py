"""The applied catalog (one row per KPI, retired ones kept) and its change history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.tables import kpi_changes, kpi_definitions
from shared.db.dialect import utc
from shared.db.upsert import upsert


class CatalogRepository:
    """The applied catalog and its change history."""

    async def active(self, session: AsyncSession) -> list[dict[str, Any]]:
        rows = await session.execute(
            select(kpi_definitions.c.definition)
            .where(kpi_definitions.c.retired_at.is_(None))
            .order_by(kpi_definitions.c.key)
        )
        return [dict(d) for d in rows.scalars()]

    async def definitions(self, session: AsyncSession, keys: Sequence[str]) -> list[dict[str, Any]]:
        """The stored definitions of ``keys``, retired ones included."""
        rows = await session.execute(
            select(kpi_definitions.c.definition).where(kpi_definitions.c.key.in_(list(keys)))
        )
        return [dict(d) for d in rows.scalars()]

    async def stamp(self, session: AsyncSession) -> tuple[int, datetime | None]:
        """Changes whenever the catalog does: cheap to poll."""
        row = (
            await session.execute(
                select(func.count(), func.max(kpi_definitions.c.updated_at)).select_from(
                    kpi_definitions
                )
            )
        ).one()
        return int(row[0]), (utc(row[1]) if row[1] is not None else None)

    async def upsert_definition(
        self, session: AsyncSession, key: str, definition: dict[str, Any], at: datetime
    ) -> None:
        existing = (
            await session.execute(
                select(kpi_definitions.c.version).where(kpi_definitions.c.key == key)
            )
        ).scalar_one_or_none()
        await upsert(
            session,
            kpi_definitions,
            [
                {
                    "key": key,
                    "definition": definition,
                    "version": (existing or 0) + 1,
                    "updated_at": at,
                    "retired_at": None,
                }
            ],
            key=("key",),
            update=("definition", "version", "updated_at", "retired_at"),
        )

    async def retire(self, session: AsyncSession, key: str, at: datetime) -> bool:
        result = await session.execute(
            update(kpi_definitions)
            .where(kpi_definitions.c.key == key, kpi_definitions.c.retired_at.is_(None))
            .values(retired_at=at, updated_at=at)
        )
        return bool(getattr(result, "rowcount", 0))

    async def record_change(
        self,
        session: AsyncSession,
        *,
        kpi_key: str,
        action: str,
        changes: list[dict[str, Any]],
        actor: str,
        at: datetime,
    ) -> None:
        await session.execute(
            kpi_changes.insert().values(
                kpi_key=kpi_key, action=action, changes=changes, actor=actor, at=at
            )
        )

    async def history(self, session: AsyncSession, kpi_key: str) -> list[dict[str, Any]]:
        rows = await session.execute(
            select(kpi_changes).where(kpi_changes.c.kpi_key == kpi_key).order_by(kpi_changes.c.id)
        )
        return [{**r, "at": utc(r["at"])} for r in rows.mappings()]
