"""The applied catalog (one row per KPI, retired ones kept) and its change history."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.tables import kpi_changes, kpi_definitions
from shared.db.dialect import utc
from shared.db.upsert import insert_for


@dataclass(frozen=True, slots=True)
class StoredKpi:
    """A KPI's row: its definition as stored, version, owner and whether it is retired."""

    key: str
    definition: dict[str, Any]
    version: int
    managed_by: str | None
    retired: bool


_ROW = select(
    kpi_definitions.c.key,
    kpi_definitions.c.definition,
    kpi_definitions.c.version,
    kpi_definitions.c.managed_by,
    kpi_definitions.c.retired_at,
)


def _stored(row: Row[Any, Any, Any, Any, Any]) -> StoredKpi:
    return StoredKpi(
        key=row.key,
        definition=dict(row.definition),
        version=int(row.version),
        managed_by=row.managed_by,
        retired=row.retired_at is not None,
    )


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

    async def stored(self, session: AsyncSession, key: str) -> StoredKpi | None:
        """The stored row of ``key`` (retired or not), without locking it."""
        row = (await session.execute(_ROW.where(kpi_definitions.c.key == key))).one_or_none()
        return _stored(row) if row is not None else None

    async def lock(
        self, session: AsyncSession, keys: Iterable[str], *, shared: Iterable[str] = ()
    ) -> dict[str, StoredKpi]:
        """Lock the rows of ``keys`` for update and of ``shared`` against change.

        One key at a time in key order, whichever mode: every writer takes its locks in
        the same order, so two writers never wait for each other in a circle. Keys
        without a row are skipped (a new KPI has nothing to lock yet: its insert is the
        claim, see ``insert``). Later reads in the transaction see every write that
        committed before the locks were granted.
        """
        exclusive, readers = set(keys), set(shared)
        found: dict[str, StoredKpi] = {}
        for key in sorted(exclusive | readers):
            query = _ROW.where(kpi_definitions.c.key == key)
            query = query.with_for_update(read=key not in exclusive)
            row = (await session.execute(query)).one_or_none()
            if row is not None:
                found[key] = _stored(row)
        return found

    async def managed_keys(self, session: AsyncSession, managed_by: str) -> list[str]:
        """Keys of the rows ``managed_by`` manages, retired ones included."""
        rows = await session.execute(
            select(kpi_definitions.c.key).where(kpi_definitions.c.managed_by == managed_by)
        )
        return list(rows.scalars())

    async def active_rows(self, session: AsyncSession) -> dict[str, StoredKpi]:
        rows = await session.execute(
            _ROW.where(kpi_definitions.c.retired_at.is_(None)).order_by(kpi_definitions.c.key)
        )
        return {row.key: _stored(row) for row in rows}

    async def insert(
        self,
        session: AsyncSession,
        key: str,
        definition: dict[str, Any],
        *,
        managed_by: str,
        at: datetime,
    ) -> bool:
        """Create the row of a new KPI; False when another writer created it first."""
        stmt = (
            insert_for(session, kpi_definitions)
            .values(
                key=key,
                definition=definition,
                version=1,
                updated_at=at,
                retired_at=None,
                managed_by=managed_by,
            )
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(kpi_definitions.c.key)
        )
        return (await session.execute(stmt)).scalar_one_or_none() is not None

    async def write(
        self,
        session: AsyncSession,
        row: StoredKpi,
        definition: dict[str, Any],
        *,
        managed_by: str,
        at: datetime,
    ) -> int:
        """Replace a locked row's definition (reviving it if retired); the new version."""
        version = row.version + 1
        await session.execute(
            update(kpi_definitions)
            .where(kpi_definitions.c.key == row.key)
            .values(
                definition=definition,
                version=version,
                updated_at=at,
                retired_at=None,
                managed_by=managed_by,
            )
        )
        return version

    async def retire(
        self, session: AsyncSession, row: StoredKpi, at: datetime, *, managed_by: str | None
    ) -> int:
        """Retire a locked row; the new version."""
        version = row.version + 1
        await session.execute(
            update(kpi_definitions)
            .where(kpi_definitions.c.key == row.key)
            .values(retired_at=at, updated_at=at, version=version, managed_by=managed_by)
        )
        return version

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
