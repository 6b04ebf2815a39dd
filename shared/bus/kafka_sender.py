"""One aiokafka producer with one sender task per partition, merging concurrent publishes.

aiokafka's ``create_batch()``/``send_batch()`` costs a fraction of a ``send()`` per
record, but ``send_batch`` queues at most one batch per partition: concurrent callers on
one partition wait on each other inside the accumulator and time out under load. So
each partition gets exactly one sender task. Publish calls only queue their records
(``shared.bus.batching``) and wait on a future; the sender takes everything queued as
one batch whenever the partition has room (``max_in_flight`` unacknowledged batches:
one at the broker, one waiting in aiokafka), so the busier the partition, the bigger
its batches. A request's future resolves when the broker acknowledged (acks=all) every
batch holding its records.

A ``ProducerSession`` fails as a whole: the first failed or refused batch fails every
waiting publish, and the owner (``KafkaPublisher``) replaces the session, producer and
all. The rest of the session's batches could not be trusted anyway: an idempotent
producer's later batches on a partition are refused once one of its batches was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

from shared.bus.batching import Batch, PartitionQueue, acknowledged, split_by_partition
from shared.bus.ports import OutgoingRecord, PublishError

log = logging.getLogger(__name__)

Waiter = asyncio.Future[None]
FailureCallback = Callable[[BaseException], None]

# One batch at the broker and the next one waiting in aiokafka's accumulator: the most
# a partition can use (aiokafka sends one batch per partition at a time, in order).
MAX_IN_FLIGHT = 2
# aiokafka's record builder wants a list; it only reads it.
_NO_HEADERS: list[tuple[str, bytes]] = []


def _fail(waiter: Waiter, error: BaseException) -> None:
    if not waiter.done():  # a caller that gave up (timeout) cancelled its waiter
        waiter.set_exception(error)


class PartitionSender:
    """The only task producing to one partition of one topic for its session."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        partition: int,
        *,
        max_batch_bytes: int,
        max_in_flight: int,
        on_failure: FailureCallback,
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._partition = partition
        self._queue: PartitionQueue[Waiter] = PartitionQueue(max_batch_bytes=max_batch_bytes)
        self._max_in_flight = max_in_flight
        self._on_failure = on_failure
        self._in_flight: set[Batch[Waiter]] = set()
        self._wakeup: asyncio.Future[None] | None = None
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"kafka-sender-{topic}-{partition}"
        )

    def enqueue(self, records: Sequence[OutgoingRecord]) -> Waiter:
        waiter: Waiter = asyncio.get_running_loop().create_future()
        self._queue.add(records, waiter)
        self._wake()
        return waiter

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    def _ready(self) -> bool:
        return bool(self._queue) and len(self._in_flight) < self._max_in_flight

    async def _run(self) -> None:
        try:
            while True:
                while not self._ready():
                    self._wakeup = asyncio.get_running_loop().create_future()
                    await self._wakeup
                batch = self._queue.take()
                self._in_flight.add(batch)  # from here on, a failure reaches its waiters
                builder = self._producer.create_batch()
                for record in batch.records:
                    if builder.append(
                        key=record.key,
                        value=record.value,
                        timestamp=record.timestamp_ms,
                        headers=list(record.headers) if record.headers else _NO_HEADERS,
                    ) is None:
                        # record_size() is an upper bound, so this means a bug there.
                        raise PublishError("a batch overflowed its estimated size")
                # Returns once aiokafka queued the batch (after the partition's previous
                # one left for the broker); the ack comes through the delivery future.
                delivery = await self._producer.send_batch(
                    builder, self._topic, partition=self._partition
                )
                delivery.add_done_callback(
                    lambda done, batch=batch: self._delivered(batch, done)
                )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever broke, the waiters must hear it
            self._on_failure(exc)

    def _delivered(self, batch: Batch[Waiter], delivery: asyncio.Future[Any]) -> None:
        self._in_flight.discard(batch)
        error = (
            asyncio.CancelledError("delivery cancelled")
            if delivery.cancelled()
            else delivery.exception()
        )
        if error is not None:
            self._on_failure(error)
            return
        for ticket in acknowledged(batch):
            if not ticket.waiter.done():
                ticket.waiter.set_result(None)
        self._wake()

    def waiters(self) -> list[Waiter]:
        """The futures of every publish still waiting on this partition."""
        queued = [ticket.waiter for ticket in self._queue]
        sent = [ticket.waiter for batch in self._in_flight for ticket in batch.tickets]
        return queued + sent

    def fail(self, error: BaseException) -> None:
        """Fail every waiter of this partition (queued or in flight) and stop."""
        self._task.cancel()
        for ticket in self._queue.drain():
            _fail(ticket.waiter, error)
        for batch in self._in_flight:
            for ticket in batch.tickets:
                _fail(ticket.waiter, error)
        self._in_flight.clear()

    async def stopped(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class ProducerSession:
    """An aiokafka producer and its per-partition senders, failing as one."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        *,
        max_batch_bytes: int,
        max_in_flight: int = MAX_IN_FLIGHT,
        on_failure: FailureCallback,
    ) -> None:
        self.producer = producer
        self._max_batch_bytes = max_batch_bytes
        self._max_in_flight = max_in_flight
        self._on_failure = on_failure
        self._senders: dict[tuple[str, int], PartitionSender] = {}
        self._partitions: dict[str, list[int]] = {}
        self._error: BaseException | None = None

    @property
    def failed(self) -> bool:
        return self._error is not None

    async def enqueue(self, topic: str, records: Sequence[OutgoingRecord]) -> list[Waiter]:
        """Queue ``records`` on their partitions' senders; one future per partition."""
        partitions = self._partitions.get(topic)
        if partitions is None:
            # Waits for the topic's metadata once; then the list is reused.
            partitions = sorted(await self.producer.partitions_for(topic))
            self._partitions[topic] = partitions
        if self._error is not None:
            raise PublishError(f"kafka producer failed: {self._error!r}")
        return [
            self._sender(topic, partitions[index]).enqueue(group)
            for index, group in split_by_partition(records, len(partitions)).items()
        ]

    def _sender(self, topic: str, partition: int) -> PartitionSender:
        sender = self._senders.get((topic, partition))
        if sender is None:
            sender = self._senders[topic, partition] = PartitionSender(
                self.producer,
                topic,
                partition,
                max_batch_bytes=self._max_batch_bytes,
                max_in_flight=self._max_in_flight,
                on_failure=self.fail,
            )
        return sender

    def fail(self, error: BaseException) -> None:
        """Fail every waiting publish of the session; idempotent."""
        if self._error is not None:
            return
        self._error = error
        log.warning("kafka producer failed, failing its pending publishes: %r", error)
        failure = PublishError(f"kafka did not acknowledge: {error!r}")
        for sender in self._senders.values():
            sender.fail(failure)
        self._on_failure(error)

    async def close(self, timeout_s: float) -> None:
        """Send what is queued, wait (up to ``timeout_s``) for the acks, stop the producer."""
        pending = [w for sender in self._senders.values() for w in sender.waiters()]
        if pending and self._error is None:
            await asyncio.wait(pending, timeout=timeout_s)
        for sender in self._senders.values():
            sender.fail(PublishError("kafka producer stopped"))
        await asyncio.gather(*(s.stopped() for s in self._senders.values()))
        await self.producer.stop()
