"""Fixtures for the alerts integration tests: real Kafka, Postgres, SMTP and HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerts import bootstrap
from services.alerts.repository import KpiRepository
from services.alerts.scheduler import Scheduler
from services.alerts.worker import DeliveryWorker
from shared.bootstrap import Adapters
from shared.bus.kafka import KafkaPublisher
from shared.bus.ports import OutgoingRecord
from shared.contracts.kpi_values import KpiValueMessage
from shared.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.integration.alerts.factories import Clock
from tests.integration.alerts.receivers import HttpReceiver, SmtpServer

WEBHOOK_SECRET = "webhook-secret-for-tests"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="session")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def receiver() -> AsyncIterator[HttpReceiver]:
    server = await HttpReceiver().start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
def alerts_settings(topics_ready: Settings, run_id: str, smtp: SmtpServer) -> Settings:
    """The session settings with fast delivery and this session's own consumer group."""
    alerts = topics_ready.alerts.model_copy(
        update={
            "group_id": f"kpipulse-alerts-{run_id}",
            "delivery_base_backoff_s": 0.1,
            "delivery_max_backoff_s": 0.5,
            "delivery_max_attempts": 4,
            "outbox_poll_interval_s": 0.1,
            "scheduler_interval_s": 3600.0,  # tests drive the scheduler themselves
            "webhook_secret": SecretStr(WEBHOOK_SECRET),
            # The receivers are plain-http servers on this machine.
            "allow_http_webhooks": True,
            "webhook_allowed_hosts": ["127.0.0.1", "localhost"],
            "scorecard_url": "http://scorecard.test/",
            "smtp": topics_ready.alerts.smtp.model_copy(update={"port": smtp.port}),
        }
    )
    return topics_ready.model_copy(update={"alerts": alerts})


@pytest.fixture(scope="session")
async def publisher(alerts_settings: Settings) -> AsyncIterator[KafkaPublisher]:
    pub = KafkaPublisher(alerts_settings.kafka, client_id="alerts-tests")
    await pub.start()
    yield pub
    await pub.stop()


async def produce(
    publisher: KafkaPublisher, settings: Settings, messages: Sequence[KpiValueMessage]
) -> None:
    """Publish KPI values keyed by KPI key, as scoring does."""
    records = [OutgoingRecord(key=m.kpi_key.encode(), value=m.to_bytes()) for m in messages]
    await publisher.publish(settings.kafka.topics().kpi_values, records)


async def kpi_known(sessions: async_sessionmaker[AsyncSession], kpi_key: str) -> bool:
    """Whether the consumer has applied at least one value of ``kpi_key``."""
    async with sessions() as session:
        return await KpiRepository().get(session, kpi_key) is not None


@dataclass
class Harness:
    app: FastAPI
    client: httpx.AsyncClient
    clock: Clock
    settings: Settings

    @property
    def scheduler(self) -> Scheduler:
        scheduler: Scheduler = self.app.state.scheduler
        return scheduler

    @property
    def worker(self) -> DeliveryWorker:
        worker: DeliveryWorker = self.app.state.worker
        return worker


@pytest.fixture
async def service(
    alerts_settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Harness]:
    """The alerts app with its real consumer, scheduler and worker running."""
    async with running_service(alerts_settings, sessions) as harness:
        yield harness


@asynccontextmanager
async def running_service(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Harness]:
    """One run of the alerts app with ``settings``."""
    clock = Clock()
    adapters = Adapters(
        kafka=settings.kafka,
        engine=sessions.kw["bind"],
        sessions=sessions,
        publisher=KafkaPublisher(settings.kafka, client_id="alerts-under-test"),
        registry=CollectorRegistry(),
    )
    app = bootstrap.build(settings, adapters, clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://alerts") as client,
    ):
        yield Harness(app, client, clock, settings)
