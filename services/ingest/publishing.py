"""The publishing step every route ends in: accepted events to Kafka, rejected to the DLQ.

One publish call per topic per request; both run concurrently and the request is only
answered once Kafka acknowledged both (acks=all), so a 2xx never hides a dropped or
unrecorded event.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from services.ingest.domain.envelopes import UNENCODABLE, Rejection, Validated, encode
from services.ingest.metrics import IngestMetrics
from shared.bus.dlq import DeadLetter, DeadLetterQueue, truncated
from shared.bus.ports import OutgoingRecord, Publisher, PublishError
from shared.contracts.topics import TopicNames

STAGE = "ingest"


@dataclass(frozen=True, slots=True)
class Outcome:
    accepted: list[str]
    rejected: list[Rejection]


def _letter(rejection: Rejection, *, body: bytes, max_bytes: int) -> DeadLetter:
    raw = rejection.raw
    event_id = rejection.event_id
    if event_id is None and isinstance(raw, dict):
        event_id = raw.get("event_id")
    if raw is UNENCODABLE:
        payload = truncated(body, max_bytes)
    else:
        payload = DeadLetterQueue.rejected_payload(raw, max_bytes=max_bytes, fallback=body)
    return DeadLetter(
        reason=f"index {rejection.index}: {rejection.reason}",
        payload=payload,
        stage=STAGE,
        key=event_id.encode()[:256] if isinstance(event_id, str) else None,
    )


class Ingestor:
    def __init__(
        self,
        *,
        publisher: Publisher,
        topics: TopicNames,
        metrics: IngestMetrics,
        max_event_bytes: int,
        max_dead_letter_bytes: int,
    ) -> None:
        self._publisher = publisher
        self._events_topic = topics.events
        self._dlq = DeadLetterQueue(publisher, topics.events_dlq)
        self._metrics = metrics
        self._max_event_bytes = max_event_bytes
        self._max_dead_letter_bytes = max_dead_letter_bytes

    async def _publish_with_letters(
        self, records: list[OutgoingRecord], rejected: list[Rejection], body: bytes
    ) -> None:
        limit = self._max_dead_letter_bytes
        letters = [_letter(r, body=body, max_bytes=limit) for r in rejected]
        results = await asyncio.gather(
            self._publisher.publish(self._events_topic, records),
            self._dlq.send(letters),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def publish(self, source: str, validated: Validated, *, body: bytes) -> Outcome:
        """Publish and wait for the acks; raises PublishError when Kafka did not ack.

        ``body`` is the request as received: the dead letter of an event that cannot be
        encoded again carries it instead.
        """
        encoded = encode(validated, max_event_bytes=self._max_event_bytes)
        records = [
            OutgoingRecord(event_id.encode(), value)
            for event_id, value in zip(encoded.ids, encoded.values, strict=True)
        ]
        rejected = encoded.rejected
        try:
            if rejected:
                await self._publish_with_letters(records, rejected, body)
            else:  # the common case, without gather's task and future
                await self._publisher.publish(self._events_topic, records)
        except Exception as exc:
            self._metrics.producer_errors.inc()
            if isinstance(exc, PublishError):
                raise
            raise PublishError(f"publish failed: {exc!r}") from exc
        self._metrics.counted(source, len(records), len(rejected))
        self._metrics.batch_size.observe(len(records) + len(rejected))
        return Outcome(encoded.ids, rejected)
