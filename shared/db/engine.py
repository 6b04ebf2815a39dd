"""Engine and session factory, one per process, built from the settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import event, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from shared.db.dialect import is_postgres
from shared.settings import DatabaseSettings

_DONT_WAIT_FOR_FLUSH = text("SET LOCAL synchronous_commit TO off")


def create_engine(settings: DatabaseSettings) -> AsyncEngine:
    if settings.url.startswith("sqlite"):
        engine = create_async_engine(settings.url, echo=settings.echo)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        settings.url,
        echo=settings.echo,
        pool_size=settings.pool_size,
        max_overflow=settings.pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # WAL lets readers run beside the single writer; FULL sync keeps commits durable
    # across a kill -9, which embedded mode promises.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def transaction(
    sessions: async_sessionmaker[AsyncSession], *, wait_for_flush: bool = True
) -> AsyncIterator[AsyncSession]:
    """One unit of work: commits when the block ends, rolls back on any error.

    ``wait_for_flush=False`` (Postgres): the commit returns before its WAL reaches the
    disk. A crash of Postgres may then lose the latest such transactions, each whole and
    in commit order, never a part of one: for a caller that can redo them (state
    derived from a log, with the log's offsets in the same transaction), and not for
    anything acknowledged to a client.
    """
    async with sessions() as session, session.begin():
        if not wait_for_flush and is_postgres(session):
            await session.execute(_DONT_WAIT_FOR_FLUSH)
        yield session


async def ping(engine: AsyncEngine) -> bool:
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError):
        return False
    return True
