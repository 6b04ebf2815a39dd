"""Schema and storage on both dialects: migrations up and down, and the consumer handler
plus delivery worker on Postgres and on SQLite (the embedded dev mode's database)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import asyncpg
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.alerts.channels.smtp import SmtpSender
from services.alerts.consumer import kpi_value_consumer
from services.alerts.metrics import AlertMetrics
from services.alerts.transitions import AlertWriter
from services.alerts.worker import DeliveryWorker
from shared.bus.dlq import REASON, SOURCE_OFFSET, STAGE, DeadLetterQueue
from shared.bus.ports import Message, OutgoingRecord
from shared.db.engine import create_engine, create_session_factory
from shared.db.migrate import downgrade, upgrade
from shared.db.offsets import OffsetRepository
from shared.metrics import ConsumerMetrics
from shared.settings import DatabaseSettings, Settings
from tests.conftest import SERVER_DSN, _async_url
from tests.integration.alerts.factories import Clock, kpi_value, unique
from tests.integration.alerts.receivers import SmtpServer

ALERT_TABLES = {
    "alerts",
    "alert_transitions",
    "kpi_observations",
    "kpi_latest",
    "silences",
    "outbox",
    "digest_outbox",
    "digest_snapshots",
}
DIGEST_TABLES = {"digest_outbox", "digest_snapshots"}


async def _tables(url: str) -> set[str]:
    engine = create_engine(DatabaseSettings(url=url))
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
    finally:
        await engine.dispose()
    return set(names)


def _cycle(url: str) -> None:
    upgrade(url)
    assert asyncio.run(_tables(url)) >= ALERT_TABLES
    # alerts_acked_by down: the tables stay, without the column it added.
    downgrade(url, "alerts@-1")
    assert asyncio.run(_tables(url)) >= ALERT_TABLES
    # alerts_0003 down: the digest's tables go, the alert tables stay.
    downgrade(url, "alerts@-1")
    assert asyncio.run(_tables(url)) >= ALERT_TABLES - DIGEST_TABLES
    assert not DIGEST_TABLES & asyncio.run(_tables(url))
    # alerts_0002 down: the tables stay, without the column it added.
    downgrade(url, "alerts@-1")
    assert asyncio.run(_tables(url)) >= ALERT_TABLES - DIGEST_TABLES
    # alerts_0001 down: only our tables go.
    downgrade(url, "alerts@-1")
    remaining = asyncio.run(_tables(url))
    assert not ALERT_TABLES & remaining
    assert "consumer_offsets" in remaining  # the foundation is untouched
    upgrade(url)
    assert asyncio.run(_tables(url)) >= ALERT_TABLES


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(SERVER_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def test_migrations_up_and_down_on_postgres() -> None:
    name = f"kpipulse_alerts_mig_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        _cycle(_async_url(SERVER_DSN, name))
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_migrations_up_and_down_on_sqlite(tmp_path: Path) -> None:
    _cycle(f"sqlite+aiosqlite:///{tmp_path / 'alerts.db'}")


@pytest.fixture(scope="module")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite') / 'dev.db'}"
    upgrade(url)  # before any event loop runs: alembic's env uses asyncio.run
    return url


@pytest.fixture(params=["postgres", "sqlite"])
async def db(
    request: pytest.FixtureRequest, sessions: async_sessionmaker[AsyncSession], sqlite_url: str
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    if request.param == "postgres":
        yield sessions
        return
    engine: AsyncEngine = create_engine(DatabaseSettings(url=sqlite_url))
    yield create_session_factory(engine)
    await engine.dispose()


@pytest.fixture
def collected() -> Iterator[CollectorRegistry]:
    yield CollectorRegistry()


def _message(offset: int, value: bytes, topic: str) -> Message:
    return Message(topic, 0, offset, None, value, 0)


class _Recording:
    """The dead-letter queue's publisher port, recording (Kafka is not what this tests)."""

    def __init__(self) -> None:
        self.records: list[OutgoingRecord] = []

    async def publish(self, topic: str, records: Sequence[OutgoingRecord]) -> None:
        self.records.extend(records)


async def test_redelivered_batches_are_applied_once(
    db: async_sessionmaker[AsyncSession],
    alerts_settings: Settings,
    smtp: SmtpServer,
    collected: CollectorRegistry,
) -> None:
    cfg = alerts_settings.alerts
    clock = Clock()
    metrics = AlertMetrics(collected)
    consumer_metrics = ConsumerMetrics(collected, "alerts")
    letters = _Recording()
    handler = kpi_value_consumer(
        sessions=db,
        offsets=OffsetRepository(db, consumer=unique("consumer")),
        writer=AlertWriter(cfg, metrics),
        dlq=DeadLetterQueue(letters, "dlq"),  # type: ignore[arg-type]
        consumer_metrics=consumer_metrics,
        clock=clock,
        trend_points=cfg.trend_points,
    )
    worker = DeliveryWorker(
        sessions=db,
        senders={"email": SmtpSender(cfg.smtp)},
        settings=cfg,
        metrics=metrics,
        clock=clock,
    )
    kpi = unique("redelivery")
    mail = f"{kpi}@example.com"
    from shared.contracts.kpi_values import Owner

    owner = [Owner(name="A", email=mail)]
    topic = unique("topic")
    batch = [
        _message(0, kpi_value(kpi, 0.15, owners=owner).to_bytes(), topic),
        _message(1, b"{not json", topic),  # invalid: counted and skipped
        _message(2, kpi_value(kpi, 0.05, owners=owner).to_bytes(), topic),
    ]
    await handler(batch)
    await handler(batch)  # Kafka re-delivers after a crash before its commit
    await handler(batch[1:])
    while await worker.run_once():
        pass
    (mail_received,) = await smtp.wait_for(mail, 1)
    assert mail_received.subject.startswith("[FIRING]")
    dlq = consumer_metrics.dlq.labels("alerts", "invalid_kpi_value")._value.get()
    assert dlq == 1  # the invalid message was seen once; the re-deliveries were skipped
    (letter,) = letters.records  # dead-lettered once, with why and where from
    assert letter.value == b"{not json"
    headers = dict(letter.headers)
    assert headers[STAGE] == b"alerts"
    assert headers[REASON].startswith(b"invalid KPI value: body: Invalid JSON")
    assert headers[SOURCE_OFFSET] == b"1"
    await asyncio.sleep(0.3)
    assert len(smtp.mails_to(mail)) == 1


async def test_a_partial_window_raises_no_below_minimum_alert_unless_asked(
    db: async_sessionmaker[AsyncSession], alerts_settings: Settings, collected: CollectorRegistry
) -> None:
    """A window still filling looks below its minimum: no alert until it is full, unless
    the KPI sets ``require_full_window: false``."""
    cfg = alerts_settings.alerts
    writer = AlertWriter(cfg, AlertMetrics(collected))
    handler = kpi_value_consumer(
        sessions=db,
        offsets=OffsetRepository(db, consumer=unique("consumer")),
        writer=writer,
        dlq=DeadLetterQueue(_Recording(), "dlq"),  # type: ignore[arg-type]
        consumer_metrics=ConsumerMetrics(collected, "alerts"),
        clock=Clock(),
        trend_points=cfg.trend_points,
    )
    filling, eager = unique("filling"), unique("eager")
    topic = unique("topic")
    breach = kpi_value(filling, 0.05)
    assert breach.status == "breach"
    await handler(
        [
            _message(0, breach.model_copy(update={"coverage": 0.4}).to_bytes(), topic),
            _message(
                1,
                kpi_value(eager, 0.05)
                .model_copy(update={"coverage": 0.4, "require_full_window": False})
                .to_bytes(),
                topic,
            ),
        ]
    )
    async with db() as session:
        assert "below_minimum" not in await writer.alerts.open_for(session, filling)
        assert "below_minimum" in await writer.alerts.open_for(session, eager)
    # The window is full now, and still below the minimum: the alert is raised.
    await handler([_message(2, breach.to_bytes(), topic)])
    async with db() as session:
        assert "below_minimum" in await writer.alerts.open_for(session, filling)
