"""Read back what the platform made of the events: buckets, ids, values, the outbox.

Everything here reads state (Postgres rows, Kafka end offsets, the scoring API); the
expected side is computed by the test from the acknowledged events alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerts.tables import alerts, outbox
from services.scoring.tables import kpi_buckets, kpi_current, seen_events
from shared.db.metadata import consumer_offsets
from tests.chaos.load import Event
from tests.conftest import ADMIN_TOKEN


async def eventually(
    probe: Callable[[], Awaitable[object]], *, timeout: float, what: str, interval: float = 0.5
) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = await probe()
        except Exception as exc:
            last = exc
        if last is True:
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"{what}: not reached within {timeout} s (last: {last!r})")


async def topic_end(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return {tp.partition: int(offset) for tp, offset in ends.items()}
    finally:
        await consumer.stop()


async def stored_offsets(
    sessions: async_sessionmaker[AsyncSession], consumer: str, topic: str
) -> dict[int, int]:
    c = consumer_offsets.c
    async with sessions() as session:
        rows = await session.execute(
            select(c.partition, c.next_offset).where(c.consumer == consumer, c.topic == topic)
        )
        return {int(p): int(o) for p, o in rows}


@dataclass(frozen=True)
class Expected:
    counts: dict[str, int]
    revenue_micros: int

    @classmethod
    def from_events(cls, events: list[Event], kpi_of: dict[tuple[str, str], str]) -> Expected:
        counts = dict.fromkeys(kpi_of.values(), 0)
        micros = 0
        for event in events:
            counts[kpi_of[(event.source, event.type)]] += 1
            if event.value is not None:
                micros += int(event.value * 1_000_000)
        return cls(counts, micros)


async def bucket_totals(
    sessions: async_sessionmaker[AsyncSession],
) -> tuple[dict[str, int], dict[str, Decimal]]:
    c = kpi_buckets.c
    async with sessions() as session:
        rows = await session.execute(
            select(c.kpi_key, func.sum(c.count), func.sum(c.sum_micros)).group_by(c.kpi_key)
        )
        counts, sums = {}, {}
        for key, count, micros in rows:
            counts[str(key)] = int(count)
            sums[str(key)] = Decimal(micros)
        return counts, sums


async def processed_ids(sessions: async_sessionmaker[AsyncSession]) -> set[str]:
    async with sessions() as session:
        return set((await session.execute(select(seen_events.c.event_id))).scalars())


async def current_statuses(sessions: async_sessionmaker[AsyncSession]) -> dict[str, str]:
    async with sessions() as session:
        rows = await session.execute(select(kpi_current.c.kpi_key, kpi_current.c.status))
        return {str(k): str(s) for k, s in rows}


def rolling_value(scoring_url: str, kpi: str) -> float | None:
    """The KPI's value now, as scoring's history API computes it from the buckets."""
    end = datetime.now(UTC)
    response = httpx.get(
        f"{scoring_url}/v1/kpis/{kpi}/history",
        params={"from": (end - timedelta(minutes=1)).isoformat(), "to": end.isoformat(),
                "step": 60},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=30,
    )
    response.raise_for_status()
    value = response.json()["points"][-1]["value"]
    return None if value is None else float(value)


@dataclass(frozen=True)
class OutboxRow:
    kpi_key: str
    target: str
    kind: str
    status: str
    attempts: int
    uncertain_resends: int


async def outbox_rows(sessions: async_sessionmaker[AsyncSession]) -> list[OutboxRow]:
    o, a = outbox.c, alerts.c
    async with sessions() as session:
        rows = await session.execute(
            select(a.kpi_key, o.target, o.kind, o.status, o.attempts, o.uncertain_resends)
            .join(alerts, alerts.c.id == o.alert_id)
            .order_by(o.id)
        )
        return [OutboxRow(str(k), str(t), str(kd), str(s), int(at), int(u))
                for k, t, kd, s, at, u in rows]


async def alert_episodes(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str, str]]:
    """(kpi, condition, state) per alert row: one row per episode."""
    a = alerts.c
    async with sessions() as session:
        rows = await session.execute(select(a.kpi_key, a.condition, a.state).order_by(a.id))
        return [(str(k), str(c), str(s)) for k, c, s in rows]
