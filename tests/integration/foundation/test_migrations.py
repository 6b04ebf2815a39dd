"""Migrations upgrade and downgrade cleanly, on PostgreSQL and on SQLite."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from shared.db.migrate import downgrade, upgrade
from tests.conftest import create_empty_database, drop_database


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
    finally:
        await engine.dispose()
    return set(names) - {"alembic_version"}


def _cycle(url: str) -> None:
    upgrade(url)
    after_up = asyncio.run(_tables(url))
    assert "consumer_offsets" in after_up
    downgrade(url, "base")
    assert asyncio.run(_tables(url)) == set()
    upgrade(url)
    assert asyncio.run(_tables(url)) == after_up


def test_postgres_upgrade_downgrade_upgrade() -> None:
    name = f"kpipulse_mig_{uuid.uuid4().hex[:8]}"
    url = asyncio.run(create_empty_database(name))
    try:
        _cycle(url)
    finally:
        asyncio.run(drop_database(name))


def test_sqlite_upgrade_downgrade_upgrade(tmp_path: Path) -> None:
    _cycle(f"sqlite+aiosqlite:///{tmp_path / 'kpipulse.db'}")
