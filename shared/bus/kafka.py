"""Kafka adapters of the bus port, over aiokafka.

The producer is always ``acks=all`` with idempotence on: a publish returns only when
every in-sync replica has the records. The consumer never auto-commits; it commits the
offsets of a batch after its handler returned, and on stop it finishes the batch in hand
before committing and leaving the group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.structs import TopicPartition

from shared.bus.kafka_sender import ProducerSession, RecordTooLarge
from shared.bus.ports import (
    BatchHandler,
    Message,
    OffsetStore,
    OutgoingRecord,
    PartitionId,
    PublishError,
    Rewind,
)
from shared.settings import KafkaSettings

log = logging.getLogger(__name__)

# The largest batch the producer builds; a broker takes up to 1 MiB per batch by default.
MAX_BATCH_BYTES = 512 * 1024
# The largest record accepted at all (the producer's request limit, as before).
MAX_RECORD_BYTES = 2 * 1024 * 1024


class KafkaPublisher:
    """Publishes records and waits for acks=all; reports unhealthy after a failure.

    Records go through the producer's one sender task (``shared.bus.kafka_sender``),
    which merges the records of concurrent publish calls into one batch per partition.
    """

    def __init__(self, settings: KafkaSettings, *, client_id: str) -> None:
        self._settings = settings
        self._client_id = client_id
        self._session: ProducerSession | None = None
        self._healthy = False
        self._lock = asyncio.Lock()
        self._closing: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        # Starting fails when the broker is down; the service still starts (it answers
        # 503 and /readyz says why) and the producer is retried on the next publish.
        try:
            await self._ensure_started()
        except PublishError as exc:
            log.warning("kafka producer not started yet: %s", exc)

    async def _ensure_started(self) -> ProducerSession:
        if self._session is not None:
            return self._session
        async with self._lock:
            if self._session is not None:
                return self._session
            producer = AIOKafkaProducer(
                bootstrap_servers=self._settings.bootstrap_servers,
                client_id=self._client_id,
                acks="all",
                enable_idempotence=True,
                linger_ms=self._settings.linger_ms,
                request_timeout_ms=self._settings.request_timeout_ms,
                max_batch_size=MAX_BATCH_BYTES,
                max_request_size=MAX_RECORD_BYTES,
            )
            try:
                await asyncio.wait_for(producer.start(), self._settings.publish_timeout_s)
            except (KafkaError, OSError, TimeoutError) as exc:
                await _quietly(producer.stop())
                self._healthy = False
                raise PublishError(f"kafka unreachable: {exc!r}") from exc
            session = ProducerSession(
                producer,
                # Below the producer's own limit: the estimate leaves room for the
                # batch header, so a batch never overflows the builder.
                max_batch_bytes=MAX_BATCH_BYTES - 1024,
                max_record_bytes=MAX_RECORD_BYTES,
                linger_s=self._settings.linger_ms / 1000,
                on_failure=lambda _error: self._discard(session),
            )
            self._session = session
            self._healthy = True
            return session

    async def stop(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            # Sends what is queued and waits for its acks first.
            await _quietly(session.close(self._settings.publish_timeout_s))
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    def _discard(self, session: ProducerSession) -> None:
        """Replace a producer after a failed publish; the next publish starts a new one.

        A failed batch may have used up idempotent sequence numbers without reaching the
        broker (aiokafka expires a batch whose partition has no leader, e.g. while the
        broker is down, after assigning its sequence). The broker then refuses every
        later batch of that producer with OutOfOrderSequenceNumber, for good. A new
        producer gets a new producer id and starts its sequences at zero.
        """
        self._healthy = False
        session.fail(PublishError("kafka producer replaced after a failed publish"))
        if self._session is not session:
            return  # another request already replaced it
        self._session = None
        task = asyncio.create_task(
            _quietly(asyncio.wait_for(session.producer.stop(), self._settings.publish_timeout_s))
        )
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def publish(self, topic: str, records: Sequence[OutgoingRecord]) -> None:
        if not records:
            return
        session = await self._ensure_started()
        try:
            async with asyncio.timeout(self._settings.publish_timeout_s):
                waiters = await session.enqueue(topic, records)  # may wait for metadata
                # (gather also collects the errors of the waiters it did not report.)
                await (waiters[0] if len(waiters) == 1 else asyncio.gather(*waiters))
        except RecordTooLarge:
            raise  # the record's fault, not the producer's
        except (KafkaError, OSError, TimeoutError, PublishError) as exc:
            self._discard(session)
            if isinstance(exc, PublishError):
                raise
            raise PublishError(f"kafka did not acknowledge: {exc!r}") from exc
        self._healthy = True

    def is_healthy(self) -> bool:
        return self._healthy

    async def ping(self) -> bool:
        try:
            session = await self._ensure_started()
            await asyncio.wait_for(
                session.producer.client.fetch_all_metadata(), self._settings.publish_timeout_s
            )
        except (KafkaError, OSError, TimeoutError, PublishError):
            self._healthy = False
            return False
        self._healthy = True
        return True


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


class KafkaSubscriber:
    """Consumes a topic in a group, batch by batch, with manual commits."""

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
        self._stopping = asyncio.Event()
        self._finished = asyncio.Event()
        self._running = False
        self._commit: asyncio.Future[None] | None = None

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
        listener: ConsumerRebalanceListener | None = (
            _SeekToStoredOffsets(consumer, self._offset_store)
            if self._offset_store is not None
            else None
        )
        if listener is not None:
            consumer.subscribe(self._topics, listener=listener)
        else:
            consumer.subscribe(self._topics)
        self._consumer = consumer

    async def run(self, handler: BatchHandler) -> None:
        self._running = True
        self._finished.clear()  # a restarted loop (after a failed batch) is running again
        consumer = self._require()
        try:
            while not self._stopping.is_set():
                batches = await consumer.getmany(
                    timeout_ms=self._poll_timeout_ms, max_records=self._max_batch
                )
                messages = _to_messages(batches)
                if not messages:
                    continue
                try:
                    await handler(messages)
                except Rewind as rewind:
                    log.warning("consumer rewound", extra={"error": str(rewind)})
                    _rewind(consumer, batches, rewind.offsets)
                    continue
                except BaseException:
                    # The position is already past this batch: rewind to its start, so
                    # the restarted loop reads it again instead of skipping it (handlers
                    # drop what they already applied).
                    _rewind(consumer, batches)
                    raise
                # Commit only after the handler made its effect durable: a crash in
                # between re-delivers, and handlers are idempotent by design.
                offsets = {tp: records[-1].offset + 1 for tp, records in batches.items() if records}
                if self._offset_store is None:
                    await consumer.commit(offsets)
                else:
                    self._commit_in_background(consumer, offsets)
        finally:
            if self._commit is not None:
                await _quietly(self._commit)
            self._finished.set()

    def _commit_in_background(
        self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]
    ) -> None:
        """With offsets stored beside the state, the group's offsets in Kafka only inform
        lag tools (assignment seeks to the stored ones): no round trip is awaited for
        them. At most one commit is in flight; a batch finishing meanwhile leaves its
        offsets to the next commit."""
        if self._commit is None or self._commit.done():
            self._commit = asyncio.ensure_future(_commit_informational(consumer, offsets))

    async def stop(self) -> None:
        self._stopping.set()
        consumer, self._consumer = self._consumer, None
        if consumer is None:
            return
        if self._running:
            try:
                await asyncio.wait_for(self._finished.wait(), timeout=30)
            except TimeoutError:
                log.warning("consumer did not finish its batch within 30 s")
        await _quietly(consumer.stop())

    async def lag(self) -> dict[PartitionId, int]:
        consumer = self._consumer
        if consumer is None:
            return {}
        result: dict[PartitionId, int] = {}
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            try:
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

    def _require(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("subscriber not started")
        return self._consumer


def _rewind(
    consumer: AIOKafkaConsumer,
    batches: dict[TopicPartition, list[Any]],
    to: Mapping[PartitionId, int] | None = None,
) -> None:
    """Seek every partition of the batch back to its first record, or to ``to``'s offset."""
    assigned = consumer.assignment()
    for tp, records in batches.items():
        if records and tp in assigned:  # a revoked partition's new owner seeks itself
            offset = records[0].offset
            if to is not None:
                offset = to.get(PartitionId(tp.topic, tp.partition), offset)
            consumer.seek(tp, offset)


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


async def ensure_topics(
    settings: KafkaSettings, topics: Sequence[str], *, timeout_s: float = 60.0
) -> list[str]:
    """Create the topics that do not exist yet; return the ones created."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, request_timeout_ms=15_000
    )
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            await admin.start()
            break
        except (KafkaError, OSError) as exc:
            if time.monotonic() > deadline:
                raise PublishError(f"kafka unreachable at {settings.bootstrap_servers}") from exc
            await asyncio.sleep(1)
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [
                        NewTopic(
                            name=topic,
                            num_partitions=settings.partitions,
                            replication_factor=settings.replication_factor,
                        )
                        for topic in missing
                    ]
                )
        return missing
    finally:
        await admin.close()


async def _commit_informational(
    consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]
) -> None:
    try:
        await consumer.commit(offsets)
    except Exception as exc:  # noqa: BLE001 - reported; the stored offsets stay the truth
        log.warning("group offsets not committed to kafka (lag tools lag behind): %r", exc)


async def _quietly(awaitable: Any) -> None:
    try:
        await awaitable
    except Exception:  # shutdown of a broken client must not mask the original error
        log.debug("ignored error while closing a kafka client", exc_info=True)
