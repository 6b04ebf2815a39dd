"""The Kafka adapter of the bus's producing side, over aiokafka (topics: ``topics.py``).

The producer is always ``acks=all`` with idempotence on: a publish returns only when
every in-sync replica has the records. (The consuming side: ``kafka_consumer.py``.)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from shared.bus.kafka_sender import ProducerSession, RecordTooLarge
from shared.bus.ports import (
    OutgoingRecord,
    PublishError,
)
from shared.settings import KafkaSettings
from shared.tasks import quietly

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
                await quietly(producer.stop())
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
            await quietly(session.close(self._settings.publish_timeout_s))
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
            quietly(asyncio.wait_for(session.producer.stop(), self._settings.publish_timeout_s))
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
