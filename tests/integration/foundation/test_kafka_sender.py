"""KafkaPublisher and its merging sender against the real broker: acks, Kafka's
partitions, shared failure and recovery, limits."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import murmur2
from aiokafka.structs import TopicPartition

from shared.bus.kafka import KafkaPublisher
from shared.bus.kafka_sender import RecordTooLarge
from shared.bus.ports import Message, OutgoingRecord, PublishError
from shared.bus.topics import ensure_topics
from shared.settings import Settings
from tests.support.kafka import consume_matching


async def _topic(settings: Settings, **configs: str) -> str:
    topic = f"{settings.kafka.topic_prefix}sender.{uuid.uuid4().hex[:8]}"
    if not configs:
        await ensure_topics(settings.kafka, [topic])
        return topic
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topic, num_partitions=2, replication_factor=1, topic_configs=configs)]
        )
    finally:
        await admin.close()
    return topic


async def _read(settings: Settings, topic: str, count: int) -> list[Message]:
    return await consume_matching(settings, topic, b"", count=count, timeout=30)


async def _records_in(settings: Settings, topic: str) -> int:
    """How many records the topic holds, over all its partitions."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(settings.kafka.partitions)]
        ends = await consumer.end_offsets(partitions)
        begins = await consumer.beginning_offsets(partitions)
        return sum(ends[tp] - begins[tp] for tp in partitions)
    finally:
        await consumer.stop()


def _java_partition(key: bytes, partitions: int) -> int:
    """Kafka's default partition of a keyed record (the Java client's
    ``toPositive(murmur2(key)) % partitions``)."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


@pytest.fixture
async def publisher(settings: Settings) -> AsyncIterator[KafkaPublisher]:
    publisher = KafkaPublisher(settings.kafka, client_id="publisher-test")
    await publisher.start()
    try:
        yield publisher
    finally:
        await publisher.stop()


async def test_concurrent_publishes_are_all_acknowledged_on_the_keys_kafka_partitions(
    settings: Settings, publisher: KafkaPublisher
) -> None:
    topic = await _topic(settings)
    calls = [
        [
            OutgoingRecord(key=f"key-{(call * 7 + i) % 13}".encode(), value=f"{call}:{i}".encode(),
                           timestamp_ms=1_700_000_000_000 + call)
            for i in range(call % 5 + 1)
        ]
        for call in range(40)
    ]
    await asyncio.gather(*(publisher.publish(topic, records) for records in calls))
    assert publisher.is_healthy()

    sent = [record for records in calls for record in records]
    received = await _read(settings, topic, len(sent))
    assert sorted(m.value for m in received) == sorted(r.value for r in sent)
    assert len({m.partition for m in received}) > 1  # the keys do spread
    for message in received:
        # The partition any Kafka producer of the topic would choose for the key.
        assert message.key is not None
        assert message.partition == _java_partition(message.key, settings.kafka.partitions)
        call = int(message.value.split(b":")[0])
        assert message.timestamp_ms == 1_700_000_000_000 + call
    # Records of one call on one partition keep their order.
    by_partition = sorted(received, key=lambda m: (m.partition, m.offset))
    for call, records in enumerate(calls):
        values = [r.value for r in records]
        for partition in {m.partition for m in received if m.value in values}:
            in_log = [m.value for m in by_partition
                      if m.partition == partition and m.value.startswith(f"{call}:".encode())]
            assert in_log == [v for v in values if v in in_log]


async def test_event_ids_land_on_the_partition_of_murmur2_of_the_key(
    settings: Settings, publisher: KafkaPublisher
) -> None:
    topic = await _topic(settings)
    records = [OutgoingRecord(key=str(uuid.uuid4()).encode(), value=b"%d" % i) for i in range(60)]
    await publisher.publish(topic, records)
    received = await _read(settings, topic, len(records))
    assert {(m.key, m.partition) for m in received} == {
        (r.key, _java_partition(r.key or b"", settings.kafka.partitions)) for r in records
    }


async def test_a_refused_batch_fails_every_publish_in_it_then_the_publisher_recovers(
    settings: Settings, publisher: KafkaPublisher
) -> None:
    # The broker refuses batches over 1,000 bytes on this topic: the merged batch of
    # these concurrent publishes is bigger, so the whole cycle fails.
    strict = await _topic(settings, **{"max.message.bytes": "1000"})
    records = [[OutgoingRecord(key=b"same", value=b"x" * 300)] for _ in range(10)]
    results = await asyncio.gather(
        *(publisher.publish(strict, r) for r in records), return_exceptions=True
    )
    assert results and all(isinstance(r, PublishError) for r in results), results
    assert not any(isinstance(r, RecordTooLarge) for r in results)  # the broker's refusal
    assert not publisher.is_healthy()

    # A new producer takes over; publishing works again without any restart.
    topic = await _topic(settings)
    await publisher.publish(topic, [OutgoingRecord(key=b"after", value=b"recovered")])
    assert publisher.is_healthy()
    assert [m.value for m in await _read(settings, topic, 1)] == [b"recovered"]


async def test_stop_waits_for_the_publishes_in_flight(settings: Settings) -> None:
    topic = await _topic(settings)
    publisher = KafkaPublisher(settings.kafka, client_id="publisher-stop-test")
    await publisher.start()
    await publisher.publish(topic, [OutgoingRecord(key=None, value=b"first")])  # metadata
    pending = [
        asyncio.create_task(publisher.publish(topic, [OutgoingRecord(key=None, value=b"%d" % i)]))
        for i in range(20)
    ]
    await asyncio.sleep(0)  # queued, not yet acknowledged
    await publisher.stop()
    await asyncio.gather(*pending)  # none failed
    assert len(await _read(settings, topic, 21)) == 21


async def test_an_oversized_record_is_refused_without_sending_or_failing_anything(
    settings: Settings, publisher: KafkaPublisher
) -> None:
    topic = await _topic(settings)
    oversized = [OutgoingRecord(key=None, value=b"before"),
                 OutgoingRecord(key=None, value=b"x" * 3_000_000)]
    with pytest.raises(RecordTooLarge, match="exceeds the limit"):
        await publisher.publish(topic, oversized)
    assert publisher.is_healthy()  # the record's fault, not the producer's
    # Over the batch size but within the request limit: a batch of its own.
    await publisher.publish(topic, [OutgoingRecord(key=None, value=b"x" * 600_000),
                                    OutgoingRecord(key=None, value=b"y")])
    await publisher.publish(topic, [OutgoingRecord(key=None, value=b"fine")])
    assert publisher.is_healthy()
    received = await _read(settings, topic, 3)
    assert sorted(len(m.value) for m in received) == [1, 4, 600_000]
    assert await _records_in(settings, topic) == 3  # nothing of the refused call
