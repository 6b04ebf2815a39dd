"""INSERT … ON CONFLICT for both dialects the repositories run on (Postgres, SQLite)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert


def insert_for(session: AsyncSession, table: Table) -> Any:
    """The dialect's own INSERT construct, which knows ON CONFLICT."""
    dialect = session.bind.dialect.name if session.bind is not None else "postgresql"
    if dialect == "sqlite":
        return sqlite.insert(table)
    return postgresql.insert(table)


async def upsert(
    session: AsyncSession,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: Sequence[str],
    update: Sequence[str],
) -> None:
    """Insert rows, replacing ``update`` columns where ``key`` already exists."""
    if not rows:
        return
    stmt = insert_for(session, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(key),
        set_={name: getattr(stmt.excluded, name) for name in update},
    )
    await session.execute(stmt, list(rows))


async def insert_ignore(
    session: AsyncSession, table: Table, rows: Sequence[Mapping[str, Any]], *, key: Sequence[str]
) -> None:
    if not rows:
        return
    stmt: Insert = insert_for(session, table).on_conflict_do_nothing(index_elements=list(key))
    await session.execute(stmt, list(rows))
