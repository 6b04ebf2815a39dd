"""Reading topics back in integration tests (a consumer outside any group)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaConsumer

from shared.bus.ports import Message
from shared.settings import Settings


@asynccontextmanager
async def reader(settings: Settings, topic: str) -> AsyncIterator[AIOKafkaConsumer]:
    """A started consumer of ``topic`` from its beginning, in no group; stopped after."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka.bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def consume_matching(
    settings: Settings, topic: str, needle: bytes, *, count: int = 1, timeout: float = 20.0
) -> list[Message]:
    """Records whose value contains ``needle`` (DLQ records may have no key); ``b""``
    matches every record."""
    found: list[Message] = []
    try:
        async with reader(settings, topic) as consumer, asyncio.timeout(timeout):
            while len(found) < count:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    found.extend(
                        Message(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp,
                                tuple(r.headers or ()))
                        for r in records
                        if needle in r.value
                    )
    except TimeoutError:
        raise AssertionError(f"{count} records with {needle!r} not in {topic}") from None
    return found
