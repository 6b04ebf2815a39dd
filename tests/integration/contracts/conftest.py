"""The contract suites' database: each test runs on PostgreSQL and on SQLite."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scoring.repository import ScoringRepositories
from shared.db.engine import create_engine, create_session_factory
from shared.db.migrate import upgrade
from shared.settings import DatabaseSettings
from tests.conftest import create_database, drop_database

Sessions = async_sessionmaker[AsyncSession]


def scoring_repositories(sessions: Sessions) -> ScoringRepositories:
    """Scoring's repositories for the database ``sessions`` open, as the services pick them."""
    return ScoringRepositories.for_dialect(sessions.kw["bind"].dialect.name)


@pytest.fixture(params=["postgres", "sqlite"])
async def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Sessions]:
    name = f"kpipulse_contract_{uuid.uuid4().hex[:8]}"
    if request.param == "postgres":
        url = await create_database(name)
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'contract.db'}"
        await asyncio.to_thread(upgrade, url)
    engine = create_engine(DatabaseSettings(url=url))
    try:
        yield create_session_factory(engine)
    finally:
        await engine.dispose()
        if request.param == "postgres":
            await drop_database(name)
