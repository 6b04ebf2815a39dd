"""The ingest migration upgrades and downgrades on Postgres and on SQLite."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from shared.db.migrate import downgrade, upgrade
from tests.conftest import create_empty_database, drop_database

TABLES = {"ingest_write_keys", "ingest_webhook_deliveries"}


def tables(url: str) -> set[str]:
    async def names() -> set[str]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        finally:
            await engine.dispose()

    return asyncio.run(names())


def key_columns(url: str) -> set[str]:
    async def names() -> set[str]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                columns = await conn.run_sync(
                    lambda c: inspect(c).get_columns("ingest_write_keys")
                )
                return {column["name"] for column in columns}
        finally:
            await engine.dispose()

    return asyncio.run(names())


def round_trip(url: str) -> None:
    upgrade(url)
    assert tables(url) >= TABLES
    assert "allowed_origins" in key_columns(url)
    downgrade(url, "ingest@-1")  # only the ingest branch, one step
    assert "allowed_origins" not in key_columns(url)
    assert tables(url) >= TABLES
    downgrade(url, "ingest@-1")  # and the write-key tables
    assert not TABLES & tables(url)
    assert "consumer_offsets" in tables(url)  # the foundation stays
    upgrade(url)
    assert tables(url) >= TABLES


def test_sqlite(tmp_path: Path) -> None:
    round_trip(f"sqlite+aiosqlite:///{tmp_path / 'ingest.db'}")


def test_postgres() -> None:
    name = f"kpipulse_ingest_mig_{uuid.uuid4().hex[:8]}"
    url = asyncio.run(create_empty_database(name))
    try:
        round_trip(url)
    finally:
        asyncio.run(drop_database(name))
