"""The Kafka adapter of the bus's consuming side, over aiokafka.

The consumer never auto-commits: ``shared.bus.loop`` commits a batch after its handler
returned, and on stop the batch in hand finishes before the consumer leaves the group.
A service that keeps its offsets with its state (an ``OffsetStore``) has the consumer
seek to them whenever partitions are assigned.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from shared.bus.loop import BatchLoop, next_offsets
from shared.bus.ports import BatchHandler, Message, OffsetStore, PartitionId
from shared.settings import KafkaSettings
from shared.tasks import quietly

log = logging.getLogger(__name__)


class _SeekToStoredOffsets(ConsumerRebalanceListener):  # type: ignore[misc]
    """On assignment, continue from the offsets the service stored with its state."""

    def __init__(self, consumer: AIOKafkaConsumer, store: OffsetStore) -> None:
        self._consumer = consumer
        self._store = store

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Offsets live with the state; nothing to flush here.
        return None

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        if not assigned:
            return
        ids = [PartitionId(tp.topic, tp.partition) for tp in assigned]
        stored = await self._store.load(ids)
        for tp in assigned:
            offset = stored.get(PartitionId(tp.topic, tp.partition))
            if offset is not None:
                self._consumer.seek(tp, offset)
            else:
                await self._consumer.seek_to_beginning(tp)
        log.info("partitions assigned", extra={"partitions": [str(p) for p in ids]})


class _KafkaBatches:
    """The ``BatchSource`` of one started aiokafka consumer."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        *,
        max_batch: int,
        poll_timeout_ms: int,
        offsets_stored_elsewhere: bool,
    ) -> None:
        self._consumer = consumer
        self._max_batch = max_batch
        self._poll_timeout_ms = poll_timeout_ms
        self._informational = offsets_stored_elsewhere
        self._commit: asyncio.Future[None] | None = None
        #: Per partition, the first offset of the batch in the handler's hands: fetching
        #: moved the consumer's position past it, but nothing of it is applied yet.
        self.in_hand: dict[TopicPartition, int] = {}

    async def fetch(self) -> Sequence[Message]:
        batches = await self._consumer.getmany(
            timeout_ms=self._poll_timeout_ms, max_records=self._max_batch
        )
        self.in_hand = {tp: records[0].offset for tp, records in batches.items() if records}
        return _to_messages(batches)

    def seek(self, offsets: Mapping[PartitionId, int]) -> None:
        self.in_hand = {}  # the positions go back to what is not applied
        assigned = self._consumer.assignment()
        for pid, offset in offsets.items():
            tp = TopicPartition(pid.topic, pid.partition)
            if tp in assigned:  # a revoked partition's new owner seeks by itself
                self._consumer.seek(tp, offset)

    async def commit(self, batch: Sequence[Message]) -> None:
        self.in_hand = {}
        offsets = {
            TopicPartition(pid.topic, pid.partition): offset
            for pid, offset in next_offsets(batch).items()
        }
        if not self._informational:
            await self._consumer.commit(offsets)
        elif self._commit is None or self._commit.done():
            # With offsets stored beside the state, the group's offsets in Kafka only
            # inform lag tools (assignment seeks to the stored ones): no round trip is
            # awaited for them. At most one commit is in flight; a batch finishing
            # meanwhile leaves its offsets to the next commit.
            self._commit = asyncio.ensure_future(_commit_informational(self._consumer, offsets))

    async def settle(self) -> None:
        if self._commit is not None:
            await quietly(self._commit)


class KafkaSubscriber:
    """Consumes topics in a group, batch by batch, with manual commits."""

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        topics: Sequence[str],
        group_id: str,
        offset_store: OffsetStore | None = None,
        max_batch: int = 5000,
        poll_timeout_ms: int = 200,
    ) -> None:
        self._settings = settings
        self._topics = list(topics)
        self._group_id = group_id
        self._offset_store = offset_store
        self._max_batch = max_batch
        self._poll_timeout_ms = poll_timeout_ms
        self._consumer: AIOKafkaConsumer | None = None
        self._loop = BatchLoop()
        self._batches: _KafkaBatches | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.bootstrap_servers,
            group_id=self._group_id,
            client_id=f"{self._settings.client_id}-{self._group_id}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            fetch_max_wait_ms=self._settings.fetch_max_wait_ms,
            fetch_min_bytes=self._settings.fetch_min_bytes,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=3_000,
            request_timeout_ms=max(self._settings.request_timeout_ms, 15_000),
        )
        await consumer.start()
        if self._offset_store is not None:
            consumer.subscribe(
                self._topics, listener=_SeekToStoredOffsets(consumer, self._offset_store)
            )
        else:
            consumer.subscribe(self._topics)
        self._consumer = consumer

    async def run(self, handler: BatchHandler) -> None:
        if self._consumer is None:
            raise RuntimeError("subscriber not started")
        source = _KafkaBatches(
            self._consumer,
            max_batch=self._max_batch,
            poll_timeout_ms=self._poll_timeout_ms,
            offsets_stored_elsewhere=self._offset_store is not None,
        )
        self._batches = source
        try:
            await self._loop.run(source, handler)
        finally:
            await source.settle()

    async def stop(self) -> None:
        self._loop.request_stop()
        consumer, self._consumer = self._consumer, None
        if consumer is None:
            return
        if not await self._loop.wait_finished(30):
            log.warning("consumer did not finish its batch within 30 s")
        await quietly(consumer.stop())

    async def lag(self) -> dict[PartitionId, int]:
        """Per assigned partition, the records not applied yet: from the batch in hand
        when there is one (a handler retrying it for ever must show as lag, growing),
        else from the consumer's position."""
        consumer = self._consumer
        if consumer is None:
            return {}
        in_hand = self._batches.in_hand if self._batches is not None else {}
        result: dict[PartitionId, int] = {}
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            try:
                position = in_hand.get(tp)
                if position is None:
                    position = await consumer.position(tp)
            except (KafkaError, AssertionError):
                continue
            if highwater is not None:
                result[PartitionId(tp.topic, tp.partition)] = max(0, highwater - position)
        return result

    async def ping(self) -> bool:
        consumer = self._consumer
        if consumer is None:
            return False
        try:
            await asyncio.wait_for(consumer._client.fetch_all_metadata(), 3)
        except (KafkaError, OSError, TimeoutError):
            return False
        return True


def _to_messages(batches: dict[TopicPartition, list[Any]]) -> list[Message]:
    """The port's messages for aiokafka's records, in one flat loop: built once per
    consumed record, so ``tuple.__new__`` rather than the named tuple's Python-level
    constructor, and no call per record."""
    new = tuple.__new__
    messages: list[Message] = []
    append = messages.append
    for records in batches.values():
        for r in records:
            headers = r.headers
            append(
                new(
                    Message,
                    (
                        r.topic,
                        r.partition,
                        r.offset,
                        r.key,
                        r.value,
                        r.timestamp,
                        tuple(headers) if headers else (),
                    ),
                )
            )
    return messages


async def _commit_informational(
    consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]
) -> None:
    try:
        await consumer.commit(offsets)
    except Exception as exc:  # noqa: BLE001 - reported; the stored offsets stay the truth
        log.warning("group offsets not committed to kafka (lag tools lag behind): %r", exc)
