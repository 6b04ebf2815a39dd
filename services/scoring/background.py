"""Scoring's periodic loops besides the consumer and the evaluator."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scoring.catalog_service import CatalogService
from services.scoring.catalog_state import CatalogState
from services.scoring.metrics import ScoringMetrics
from services.scoring.repository import EventIdRepository
from shared.bus.ports import Subscriber
from shared.db.engine import transaction
from shared.tasks import sleep_unless

CATALOG_POLL_S = 2.0
PRUNE_EVERY_S = 600.0
LAG_EVERY_S = 5.0


async def watch_catalog(service: CatalogService, state: CatalogState, stop: asyncio.Event) -> None:
    """Pick up catalog changes made by other processes (CLI, another instance's API)."""
    seen = await service.stamp()
    while not stop.is_set():
        await sleep_unless(stop, CATALOG_POLL_S)
        stamp = await service.stamp()
        if stamp != seen:
            state.replace(await service.load())
            seen = stamp


async def prune_dedupe_ids(
    sessions: async_sessionmaker[AsyncSession],
    event_ids: EventIdRepository,
    horizon_s: int,
    stop: asyncio.Event,
) -> None:
    """Forget event ids older than the dedupe horizon."""
    while not stop.is_set():
        cutoff = datetime.now(UTC) - timedelta(seconds=horizon_s)
        async with transaction(sessions) as session:
            await event_ids.prune(session, cutoff)
        await sleep_unless(stop, PRUNE_EVERY_S)


async def report_lag(subscriber: Subscriber, metrics: ScoringMetrics, stop: asyncio.Event) -> None:
    while not stop.is_set():
        for pid, lag in (await subscriber.lag()).items():
            metrics.consumer.set_lag(pid.topic, pid.partition, lag)
        await sleep_unless(stop, LAG_EVERY_S)
