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
from shared.bus.dlq import DeadLetter, DeadLetterQueue, encoded, truncated
from shared.bus.ports import OutgoingRecord, Publisher, PublishError
from shared.contracts.topics import TopicNames

STAGE = "ingest"


@dataclass(frozen=True, slots=True)
class Outcome:
    accepted: list[str]
    rejected: list[Rejection]


#: The payload of a letter whose request travels in another letter of the same request.
ELSEWHERE = b"...[kpipulse: the request's %d bytes are in its dead letter of index %d]"


def _letters(rejected: list[Rejection], *, body: bytes, max_bytes: int) -> list[DeadLetter]:
    """One letter per rejection: its own bytes, or the request's when it has none.

    The request's bytes go into one letter only: a batch of many events that cannot be
    encoded again must not write the request once per event.
    """
    carrier: int | None = None
    letters = []
    for rejection in rejected:
        raw = rejection.raw
        payload = None if raw is UNENCODABLE else encoded(raw)
        if payload is None:
            if carrier is None:
                carrier, payload = rejection.index, body
            else:
                payload = ELSEWHERE % (len(body), carrier)
        event_id = rejection.event_id
        if event_id is None and isinstance(raw, dict):
            event_id = raw.get("event_id")
        letters.append(
            DeadLetter(
                reason=f"index {rejection.index}: {rejection.reason}",
                payload=truncated(payload, max_bytes),
                stage=STAGE,
                # Bounded, as the payload is: an id may be as long as the request.
                key=event_id.encode()[:256] if isinstance(event_id, str) else None,
            )
        )
    return letters


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
        letters = _letters(rejected, body=body, max_bytes=self._max_dead_letter_bytes)
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
