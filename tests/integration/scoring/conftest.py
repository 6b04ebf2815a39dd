"""Scoring fixtures: an isolated topic set, a small catalog, a running scoring app."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.scoring import bootstrap
from shared.bootstrap import Adapters
from shared.bus.factory import create_publisher
from shared.bus.topics import ensure_topics
from shared.db.engine import create_engine, create_session_factory
from shared.settings import Settings
from tests.conftest import create_database, drop_database

CATALOG = """
- key: complaints
  name: Complaints
  objective: Keep customers happy
  perspective: customer
  stage: retain
  department: support
  owners: [{name: Mai, email: mai@example.com}]
  formula: {count: {source: support, type: complaint_received}}
  window: 7d
  update_every: 1s
  review_period: week
  unit: count
  direction: lower_is_better
  minimum: 10
  target: 2
  weight: 2
  expires_on: 2030-01-01
  indicator: lagging
  tracking_cost: {amount: 0, currency: USD, per: month}
  data_collection: Support tool webhook
- key: revenue
  name: Revenue
  objective: Financial stability
  perspective: financial
  stage: financial
  department: finance
  owners: [{name: Lan, email: lan@example.com}]
  formula: {sum: {source: crm, type: payment_received, field: value}}
  window: 30d
  update_every: 1s
  review_period: month
  unit: USD
  direction: higher_is_better
  minimum: 100
  target: 1000
  weight: 3
  expires_on: 2030-01-01
  indicator: lagging
  leading_indicators: [active_users]
  tracking_cost: {amount: 0, currency: USD, per: month}
  data_collection: CRM payments
- key: active_users
  name: Active users
  objective: Engagement
  perspective: internal_process
  stage: engage
  department: product
  owners: [{name: Huy, email: huy@example.com}]
  formula: {distinct: {source: web, type: feature_used, field: subject_id}}
  window: 30d
  update_every: 1s
  review_period: week
  unit: count
  direction: higher_is_better
  minimum: 3
  target: 10
  weight: 1
  expires_on: 2030-01-01
  indicator: leading
  tracking_cost: {amount: 0, currency: USD, per: month}
  data_collection: Product backend
"""


@pytest.fixture
async def scoring_settings(settings: Settings, tmp_path: Path) -> AsyncIterator[Settings]:
    """Settings with the database, topics, consumer group and catalog of this test alone."""
    unique = uuid.uuid4().hex[:8]
    database = f"kpipulse_scoring_{unique}"
    url = await create_database(database)
    prefix = f"{settings.kafka.topic_prefix}s{unique}."
    kafka = settings.kafka.model_copy(update={"topic_prefix": prefix})
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(CATALOG)
    scoring = settings.scoring.model_copy(
        update={"catalog_path": catalog, "group_id": f"scoring-{uuid.uuid4().hex[:6]}"}
    )
    db = settings.database.model_copy(update={"url": url})
    await ensure_topics(kafka, kafka.topics().all())
    yield settings.model_copy(update={"kafka": kafka, "scoring": scoring, "database": db})
    await drop_database(database)


def build_app(
    settings: Settings, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> FastAPI:
    adapters = Adapters(
        kafka=settings.kafka,
        engine=engine,
        sessions=sessions,
        publisher=create_publisher(settings.kafka, client_id="test-scoring"),
        registry=CollectorRegistry(),
    )
    return bootstrap.build(settings, adapters)


@pytest.fixture
async def scoring_db(
    scoring_settings: Settings,
) -> AsyncIterator[tuple[AsyncEngine, async_sessionmaker[AsyncSession]]]:
    engine = create_engine(scoring_settings.database)
    yield engine, create_session_factory(engine)
    await engine.dispose()


@pytest.fixture
async def scoring_app(
    scoring_settings: Settings,
    scoring_db: tuple[AsyncEngine, async_sessionmaker[AsyncSession]],
) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(scoring_settings, *scoring_db)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://scoring") as client:
            yield client


async def eventually(
    probe: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.2
) -> Any:
    """Poll ``probe`` (sync or async) until it returns a truthy value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = probe()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)
