"""Plain helper functions and records for the ingest integration tests."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from cryptography.hazmat.primitives.asymmetric import ec

from shared.bus.ports import Message
from shared.settings import Settings
from tests.support.kafka import reader


@dataclass(frozen=True)
class Keys:
    web: str
    crm: str
    email: str
    support: str


@dataclass(frozen=True)
class Secrets:
    hubspot: tuple[str, str]
    sendgrid: tuple[ec.EllipticCurvePrivateKey, ec.EllipticCurvePrivateKey]
    mailchimp: tuple[str, str]
    zendesk: tuple[str, str]
    standard: dict[str, tuple[str, str]]  # per source: a secret serves one source


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def unique(prefix: str = "evt") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


async def consume(
    settings: Settings, topic: str, keys: Iterable[str], *, timeout: float = 20.0
) -> dict[str, Message]:
    """Read ``topic`` from the beginning until a record for every key arrived."""
    wanted = set(keys)
    found: dict[str, Message] = {}
    try:
        async with reader(settings, topic) as consumer, asyncio.timeout(timeout):
            while not wanted <= set(found):
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for r in records:
                        key = r.key.decode() if r.key else ""
                        if key in wanted:
                            found[key] = Message(
                                r.topic, r.partition, r.offset, r.key, r.value, r.timestamp,
                                tuple(r.headers or ()),
                            )
    except TimeoutError:
        missing = wanted - set(found)
        raise AssertionError(f"not in {topic} after {timeout}s: {sorted(missing)}") from None
    return found


def value(message: Message) -> dict[str, Any]:
    decoded: dict[str, Any] = orjson.loads(message.value)
    return decoded


async def count_key(settings: Settings, topic: str, key: str) -> int:
    """How many records in ``topic`` (up to its current end) have ``key``."""
    return len(await records_to_end(settings, topic, lambda k, v: k == key.encode()))


async def values_containing(settings: Settings, topic: str, needle: str) -> list[dict[str, Any]]:
    """Every record of ``topic`` (up to its current end) whose value contains ``needle``."""
    found = await records_to_end(settings, topic, lambda k, v: needle.encode() in v)
    return [value(message) for message in found]


async def records_to_end(
    settings: Settings, topic: str, match: Callable[[bytes | None, bytes], bool]
) -> list[Message]:
    """The records of ``topic`` from its beginning up to its current end that ``match``
    (key, value)."""
    from aiokafka.structs import TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = [
                TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
            ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[Message] = []
        async with asyncio.timeout(20):
            while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
                batches = await consumer.getmany(timeout_ms=500)
                found.extend(
                    Message(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp,
                            tuple(r.headers or ()))
                    for records in batches.values() for r in records
                    if r.offset < ends[TopicPartition(r.topic, r.partition)]
                    and match(r.key, r.value)
                )
        return found
    finally:
        await consumer.stop()
