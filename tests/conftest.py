"""Fixtures shared by the integration and e2e suites.

Integration tests talk to the real Kafka broker and PostgreSQL server that
``make test`` starts (deploy/local). Each test session gets its own database and its
own topic prefix, so runs never see each other's rows or messages.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.bus.topics import ensure_topics
from shared.db.engine import create_engine, create_session_factory
from shared.db.migrate import upgrade
from shared.settings import Settings, load_settings

ADMIN_TOKEN = "test-admin-token-0123456789"
SERVER_DSN = os.environ.get(
    "KPIPULSE_TEST_SERVER_DSN", "postgresql://kpipulse:kpipulse@127.0.0.1:5432/kpipulse"
)
KAFKA = os.environ.get("KPIPULSE_TEST_KAFKA", "127.0.0.1:9092")


def _async_url(dsn: str, database: str) -> str:
    base = dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{database}"


@pytest.fixture(scope="session")
def run_id() -> str:
    return uuid.uuid4().hex[:10]


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(SERVER_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def create_empty_database(name: str) -> str:
    """Create a database on the test server, without any schema; return its async URL."""
    await _admin(f'CREATE DATABASE "{name}"')
    return _async_url(SERVER_DSN, name)


async def create_database(name: str) -> str:
    """Create and migrate a database on the test server; return its async URL."""
    url = await create_empty_database(name)
    await asyncio.to_thread(upgrade, url)
    return url


async def drop_database(name: str) -> None:
    # FORCE ends the database's sessions, but an autovacuum worker busy in it belongs to
    # the superuser and may not be signalled by our role: it finishes soon, so try again.
    for attempt in range(50):
        try:
            await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except asyncpg.InsufficientPrivilegeError:
            if attempt == 49:
                raise
            await asyncio.sleep(0.2)


@pytest.fixture(scope="session")
def test_database(run_id: str) -> Iterator[str]:
    """A fresh database for this test session, migrated to the newest schema."""
    name = f"kpipulse_test_{run_id}"
    url = asyncio.run(create_database(name))
    yield url
    asyncio.run(drop_database(name))


@pytest.fixture(scope="session")
def settings(test_database: str, run_id: str) -> Settings:
    return load_settings(
        environment="test",
        admin_token=ADMIN_TOKEN,
        database={"url": test_database, "pool_size": 5},
        kafka={"bootstrap_servers": KAFKA, "topic_prefix": f"test-{run_id}.", "partitions": 3},
        # The weekly digest would add mails to every count of alert mails; its own tests
        # (tests/integration/alerts/test_digest.py) drive it directly.
        alerts={"digest": {"enabled": False}},
    )


@pytest.fixture(scope="session")
def topics_ready(settings: Settings) -> Settings:
    asyncio.run(ensure_topics(settings.kafka, settings.kafka.topics().all()))
    return settings


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings.database)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(engine)
