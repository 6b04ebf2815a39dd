"""One aiokafka producer and the task that feeds it merged batches of concurrent publishes.

aiokafka's ``create_batch()``/``send_batch()`` costs a fraction of a ``send()`` per
record, but ``send_batch`` queues at most one batch per partition: concurrent callers on
one partition wait on each other inside the accumulator and time out under load. So
publish calls only queue their records, per partition (``shared.bus.batching``), and
wait on a future; a single sender task is the only caller of ``send_batch``.

The sender works in cycles: it takes what every partition has queued (one batch each),
hands all of them to aiokafka in one go and waits until the broker acknowledged
(acks=all) them; whatever arrived meanwhile is the next cycle. One cycle at a time
matches aiokafka, which keeps one produce request per broker in flight: batches handed
over together travel in one request, and the busier the service, the more each request
carries. (Senders per partition, each cycling on its own, drifted apart and split the
traffic into many small produce requests, each costing far more CPU than its records.)

A ``ProducerSession`` fails as a whole: the first failed batch fails every waiting
publish, and the owner (``KafkaPublisher``) replaces the session, producer and all.
The rest of the session's batches could not be trusted anyway: an idempotent
producer's later batches on a partition are refused once one of its batches was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaProducer

from shared.bus.batching import (
    Batch,
    PartitionQueue,
    acknowledged,
    split_by_partition,
    ticket,
)
from shared.bus.ports import OutgoingRecord, PublishError

log = logging.getLogger(__name__)

Waiter = asyncio.Future[None]
FailureCallback = Callable[[BaseException], None]
Partition = tuple[str, int]

# aiokafka's record builder wants a list; it only reads it.
_NO_HEADERS: list[tuple[str, bytes]] = []


class RecordTooLarge(PublishError):
    """A record over the producer's request size; refused, the producer stays healthy."""


def _fail(waiter: Waiter, error: BaseException) -> None:
    if not waiter.done():  # a caller that gave up (timeout) cancelled its waiter
        waiter.set_exception(error)


class ProducerSession:
    """An aiokafka producer, its per-partition queues and their one sender task."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        *,
        max_batch_bytes: int,
        max_record_bytes: int,
        linger_s: float,
        on_failure: FailureCallback,
    ) -> None:
        self.producer = producer
        self._max_batch_bytes = max_batch_bytes
        self._max_record_bytes = max_record_bytes
        self._linger_s = linger_s
        self._on_failure = on_failure
        self._queues: dict[Partition, PartitionQueue[Waiter]] = {}
        self._partitions: dict[str, list[int]] = {}
        self._in_flight: list[Batch[Waiter]] = []
        self._error: BaseException | None = None
        self._wakeup: asyncio.Future[None] | None = None
        self._task = asyncio.get_running_loop().create_task(self._run(), name="kafka-sender")

    async def enqueue(self, topic: str, records: Sequence[OutgoingRecord]) -> list[Waiter]:
        """Queue ``records`` on their partitions; one future per partition."""
        partitions = self._partitions.get(topic)
        if partitions is None:
            # Waits for the topic's metadata once; then the list is reused.
            partitions = sorted(await self.producer.partitions_for(topic))
            self._partitions[topic] = partitions
        if self._error is not None:
            raise PublishError(f"kafka producer failed: {self._error!r}")
        loop = asyncio.get_running_loop()
        tickets = [
            (partitions[index], ticket(group, loop.create_future()))
            for index, group in split_by_partition(records, len(partitions)).items()
        ]
        largest = max(max(t.sizes) for _, t in tickets)
        if largest > self._max_record_bytes:
            # Refused before anything is queued: one oversized record must not fail
            # the other publishes sharing the producer. (A record over the batch
            # budget but under this limit travels in a batch of its own.)
            raise RecordTooLarge(
                f"a record of {largest} bytes exceeds the limit of {self._max_record_bytes}"
            )
        waiters = []
        for partition, queued in tickets:
            self._queue(topic, partition).put(queued)
            waiters.append(queued.waiter)
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)
        return waiters

    def _queue(self, topic: str, partition: int) -> PartitionQueue[Waiter]:
        queue = self._queues.get((topic, partition))
        if queue is None:
            queue = self._queues[topic, partition] = PartitionQueue(
                max_batch_bytes=self._max_batch_bytes
            )
        return queue

    async def _run(self) -> None:
        try:
            while True:
                ready = [(key, queue) for key, queue in self._queues.items() if queue]
                if not ready:
                    self._wakeup = asyncio.get_running_loop().create_future()
                    await self._wakeup
                    continue
                if self._linger_s > 0:
                    # Let the requests answered by the last cycle come back first: their
                    # clients' next publishes join this cycle instead of the one after,
                    # and a produce cycle costs the client far more than its records.
                    await asyncio.sleep(self._linger_s)
                    ready = [(key, queue) for key, queue in self._queues.items() if queue]
                await self._cycle(ready)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever broke, the waiters must hear it
            self.fail(exc)

    async def _cycle(self, ready: list[tuple[Partition, PartitionQueue[Waiter]]]) -> None:
        """One batch per ready partition, handed over together, then all their acks."""
        deliveries = []
        for (topic, partition), queue in ready:
            batch = queue.take()
            self._in_flight.append(batch)  # from here on, a failure reaches its waiters
            builder = self.producer.create_batch()
            for record in batch.records:
                if builder.append(
                    key=record.key,
                    value=record.value,
                    timestamp=record.timestamp_ms,
                    headers=list(record.headers) if record.headers else _NO_HEADERS,
                ) is None:
                    # record_size() is an upper bound, so this means a bug there.
                    raise PublishError("a batch overflowed its estimated size")
            builder.close()  # complete: no linger in aiokafka, the cycle is the linger
            # No other batch of this partition is queued in aiokafka (the previous cycle
            # was acknowledged), so this returns at once, without waiting.
            deliveries.append(
                await self.producer.send_batch(builder, topic, partition=partition)
            )
        await asyncio.wait(deliveries)
        for delivery in deliveries:
            error = delivery.exception()  # (aiokafka never cancels a delivery)
            if error is not None:
                raise error
        for batch in self._in_flight:
            for completed in acknowledged(batch):
                if not completed.waiter.done():
                    completed.waiter.set_result(None)
        self._in_flight.clear()

    def _waiters(self) -> list[Waiter]:
        """The futures of every publish still waiting, queued or in flight."""
        queued = [t.waiter for queue in self._queues.values() for t in queue]
        sent = [t.waiter for batch in self._in_flight for t in batch.tickets]
        return queued + sent

    def fail(self, error: BaseException) -> None:
        """Fail every waiting publish of the session and stop its sender; idempotent."""
        if self._error is not None:
            return
        self._error = error
        log.warning("kafka producer failed, failing its pending publishes: %r", error)
        failure = PublishError(f"kafka did not acknowledge: {error!r}")
        for waiter in self._waiters():
            _fail(waiter, failure)
        for queue in self._queues.values():
            queue.drain()
        self._in_flight.clear()
        self._task.cancel()
        self._on_failure(error)

    async def close(self, timeout_s: float) -> None:
        """Send what is queued, wait (up to ``timeout_s``) for the acks, stop the producer."""
        pending = self._waiters()
        if pending and self._error is None:
            await asyncio.wait(pending, timeout=timeout_s)
        self._error = self._error or PublishError("kafka producer stopped")
        for waiter in self._waiters():
            _fail(waiter, PublishError("kafka producer stopped"))
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self.producer.stop()
