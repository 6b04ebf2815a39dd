"""Contract tests of the bus port, run against Kafka (real broker) and the embedded log.

Every adapter must pass the same suite: round trip, resume at the committed offset,
dead letters that record reason and source offset.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest

from shared.bus.dlq import DeadLetter, DeadLetterQueue, describe
from shared.bus.factory import create_publisher, create_subscriber
from shared.bus.kafka import KafkaPublisher
from shared.bus.ports import Message, OutgoingRecord, PartitionId, Rewind, Subscriber
from shared.bus.topics import ensure_topics
from shared.settings import Settings


@pytest.fixture(params=["kafka", "embedded"])
def bus_settings(request: pytest.FixtureRequest, settings: Settings, tmp_path: Path) -> Settings:
    if request.param == "kafka":
        return settings
    embedded = settings.kafka.model_copy(
        update={"bootstrap_servers": f"embedded:{tmp_path / 'bus.db'}"}
    )
    return settings.model_copy(update={"kafka": embedded})


def _is_kafka(settings: Settings) -> bool:
    return not settings.kafka.bootstrap_servers.startswith("embedded:")


async def _fresh_topic(settings: Settings) -> str:
    topic = f"{settings.kafka.topic_prefix}foundation.{uuid.uuid4().hex[:8]}"
    if _is_kafka(settings):
        await ensure_topics(settings.kafka, [topic])
    return topic


async def _consume(
    settings: Settings, topic: str, group: str, want: int, *, timeout: float = 30
) -> list[Message]:
    """Run a subscriber until ``want`` messages arrived, then stop it (which commits)."""
    received: list[Message] = []
    done = asyncio.Event()
    subscriber = create_subscriber(settings.kafka, topics=[topic], group_id=group, max_batch=10)

    async def handler(batch: Sequence[Message]) -> None:
        received.extend(batch)
        if len(received) >= want:
            done.set()

    await subscriber.start()
    task = asyncio.create_task(subscriber.run(handler))
    try:
        await asyncio.wait_for(done.wait(), timeout)
    finally:
        await subscriber.stop()
        await task
    return received


async def test_produce_then_consume_round_trip(bus_settings: Settings) -> None:
    settings = bus_settings
    topic = await _fresh_topic(settings)
    publisher = create_publisher(settings.kafka, client_id="test")
    await publisher.start()
    try:
        records = [
            OutgoingRecord(key=f"k{i}".encode(), value=f"v{i}".encode(), headers=(("h", b"x"),))
            for i in range(20)
        ]
        await publisher.publish(topic, records)
        assert publisher.is_healthy()
        assert await publisher.ping()
    finally:
        await publisher.stop()

    received = await _consume(settings, topic, f"g-{uuid.uuid4().hex[:6]}", 20)
    assert sorted(m.value for m in received) == sorted(r.value for r in records)
    by_key = {m.key: m for m in received}
    assert by_key[b"k7"].value == b"v7"
    assert by_key[b"k7"].header("h") == b"x"


async def test_consumer_resumes_at_committed_offset(bus_settings: Settings) -> None:
    settings = bus_settings
    topic = await _fresh_topic(settings)
    group = f"g-{uuid.uuid4().hex[:6]}"
    publisher = create_publisher(settings.kafka, client_id="test")
    await publisher.start()
    try:
        # One key, so every record lands in one partition and order is total.
        first = [OutgoingRecord(key=b"same", value=f"first-{i}".encode()) for i in range(5)]
        await publisher.publish(topic, first)
        got_first = await _consume(settings, topic, group, 5)
        assert [m.value for m in got_first] == [r.value for r in first]

        second = [OutgoingRecord(key=b"same", value=f"second-{i}".encode()) for i in range(3)]
        await publisher.publish(topic, second)
    finally:
        await publisher.stop()

    got_second = await _consume(settings, topic, group, 3)
    assert [m.value for m in got_second] == [r.value for r in second]
    assert got_second[0].offset == got_first[-1].offset + 1


async def test_dead_letter_records_reason_and_source_offset(bus_settings: Settings) -> None:
    settings = bus_settings
    topic = await _fresh_topic(settings)
    dlq_topic = await _fresh_topic(settings)
    publisher = create_publisher(settings.kafka, client_id="test")
    await publisher.start()
    try:
        await publisher.publish(topic, [OutgoingRecord(key=b"bad", value=b"{not json")])
        [original] = await _consume(settings, topic, f"g-{uuid.uuid4().hex[:6]}", 1)
        await DeadLetterQueue(publisher, dlq_topic).send(
            [
                DeadLetter(
                    reason="malformed JSON at byte 1",
                    payload=original.value,
                    stage="scoring",
                    key=original.key,
                    source=original,
                )
            ]
        )
    finally:
        await publisher.stop()

    [letter] = await _consume(settings, dlq_topic, f"g-{uuid.uuid4().hex[:6]}", 1)
    assert letter.value == b"{not json"
    assert describe(letter) == {
        "reason": "malformed JSON at byte 1",
        "stage": "scoring",
        "source_topic": topic,
        "source_partition": original.partition,
        "source_offset": original.offset,
    }


async def test_publisher_against_closed_port_fails_fast_and_reports_unhealthy(
    settings: Settings,
) -> None:
    closed = settings.kafka.model_copy(
        update={"bootstrap_servers": "127.0.0.1:1", "publish_timeout_s": 2.0}
    )
    publisher = KafkaPublisher(closed, client_id="test")
    await publisher.start()
    try:
        assert not publisher.is_healthy()
        assert not await publisher.ping()
        try:
            await publisher.publish("any", [OutgoingRecord(key=None, value=b"x")])
        except Exception as exc:
            assert "kafka" in str(exc)
        else:
            raise AssertionError("publish to a closed port must fail")
    finally:
        await publisher.stop()


async def _one_partition_of_30(settings: Settings) -> tuple[list[OutgoingRecord], Subscriber]:
    """30 records in one partition of a fresh topic, and a subscriber of 10-record batches."""
    topic = await _fresh_topic(settings)
    publisher = create_publisher(settings.kafka, client_id="test")
    await publisher.start()
    try:
        # One key, so every record lands in one partition and order is total.
        records = [OutgoingRecord(key=b"same", value=f"v{i}".encode()) for i in range(30)]
        await publisher.publish(topic, records)
    finally:
        await publisher.stop()
    subscriber = create_subscriber(
        settings.kafka, topics=[topic], group_id=f"g-{uuid.uuid4().hex[:6]}", max_batch=10
    )
    return records, subscriber


async def test_a_failed_batch_is_delivered_again_with_nothing_skipped(
    bus_settings: Settings,
) -> None:
    """The restarted loop starts again at the failed batch, whatever was fetched after."""
    records, subscriber = await _one_partition_of_30(bus_settings)
    handled: list[Message] = []
    calls = 0
    all_handled = asyncio.Event()

    async def handler(batch: Sequence[Message]) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("the store is down")
        handled.extend(batch)
        if len(handled) >= len(records):
            all_handled.set()

    await subscriber.start()
    try:
        with pytest.raises(RuntimeError, match="the store is down"):
            await asyncio.wait_for(subscriber.run(handler), 30)
        task = asyncio.create_task(subscriber.run(handler))  # the restarted loop
        await asyncio.wait_for(all_handled.wait(), 30)
    finally:
        await subscriber.stop()
    await task
    assert [m.value for m in handled] == [r.value for r in records]
    offsets = [m.offset for m in handled]
    assert offsets == list(range(offsets[0], offsets[0] + len(records)))


async def test_a_rewind_moves_the_partition_back_to_the_offset_given(
    bus_settings: Settings,
) -> None:
    """A handler whose stored offsets fell behind (its database lost its latest
    transactions) answers ``Rewind``: the loop goes on from the offsets it names."""
    records, subscriber = await _one_partition_of_30(bus_settings)
    handled: list[Message] = []
    rewound_at: int | None = None
    done = asyncio.Event()

    async def handler(batch: Sequence[Message]) -> None:
        nonlocal rewound_at
        first = batch[0]
        if rewound_at is None and first.offset >= 10:
            rewound_at = first.offset
            raise Rewind({PartitionId(first.topic, first.partition): first.offset - 7})
        handled.extend(batch)
        if handled[-1].value == records[-1].value:
            done.set()

    await subscriber.start()
    task = asyncio.create_task(subscriber.run(handler))
    try:
        await asyncio.wait_for(done.wait(), 30)
    finally:
        await subscriber.stop()
    await task  # a rewind is no failure: the loop never stopped
    assert rewound_at is not None
    # Read once up to the rewind, then again from 7 records before it, to the end.
    expected = [*range(rewound_at), *range(rewound_at - 7, len(records))]
    assert [m.value for m in handled] == [records[i].value for i in expected]


async def test_lag_counts_the_batch_in_hand_until_it_is_applied(bus_settings: Settings) -> None:
    """A handler stuck on a batch (retrying a failure) shows as lag from the batch's first
    record, not from where fetching got to: a stalled consumer must not look caught up."""
    records, subscriber = await _one_partition_of_30(bus_settings)
    stuck = asyncio.Event()
    release = asyncio.Event()
    batches = 0

    async def handler(batch: Sequence[Message]) -> None:
        nonlocal batches
        batches += 1
        if batches == 2:  # records 10-19: held, as a batch retried for ever would be
            stuck.set()
            await release.wait()

    await subscriber.start()
    task = asyncio.create_task(subscriber.run(handler))
    try:
        await asyncio.wait_for(stuck.wait(), 30)
        lag: dict[PartitionId, int] = {}
        for _ in range(50):  # until the partition's end is known (a fetch response)
            lag = await subscriber.lag()
            if lag:
                break
            await asyncio.sleep(0.1)
        assert sum(lag.values()) == len(records) - 10  # the topic's other partitions: 0
    finally:
        release.set()
        await subscriber.stop()
        await task
