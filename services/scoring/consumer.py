"""Scoring's consumer: the fold of a batch of events into KPI buckets.

``shared.bus.consumer.TransactionalConsumer`` makes it exactly once (offsets locked and
saved in the same transaction, poison messages dead-lettered); this module supplies the
decoding and the batch's effect: count each (source, event id) once within the dedupe
horizon, fold the new events into bucket deltas, and add them to the stored buckets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.catalog_state import CatalogState
from services.scoring.domain.aggregates import TermAggregate
from services.scoring.domain.fold import FoldResult
from services.scoring.metrics import ScoringMetrics
from services.scoring.repository import (
    BucketRepository,
    EventIdRepository,
    PartitionBucket,
    SeenEvent,
)
from shared.bus.consumer import Applied, InvalidMessage, Item
from shared.bus.dlq import DeadLetter, first_problem
from shared.bus.ports import Message
from shared.contracts.event_reader import ReadEvent, read_event, validate_event

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class FoldEvents:
    """The ``Application`` of scoring's consumer."""

    stage = "scoring"

    def __init__(
        self,
        *,
        catalog: CatalogState,
        buckets: BucketRepository,
        event_ids: EventIdRepository,
        metrics: ScoringMetrics,
        on_folded: Callable[[dict[str, datetime]], None],
        clock: Clock = _utcnow,
    ) -> None:
        self._catalog = catalog
        self._buckets = buckets
        self._event_ids = event_ids
        self._metrics = metrics
        self._on_folded = on_folded
        self._clock = clock

    def decode(self, message: Message) -> ReadEvent:
        return decode_event(message.value)

    async def apply(self, session: AsyncSession, items: Sequence[Item[ReadEvent]]) -> Applied:
        started = time.perf_counter()
        now = self._clock()
        events = first_of_each(item.value for item in items)
        ids = [SeenEvent(event.source, event.event_id) for event in events]
        result, new = await self._claim_while_folding(session, events, ids, now)
        duplicates = len(ids) - len(new)
        if duplicates:
            # Rare (a client's retry, a replay past the offsets): fold the batch again
            # without the events an earlier batch already counted.
            events = [e for e in events if SeenEvent(e.source, e.event_id) in new]
            result = self._fold(events, now)
        # The batch's buckets go to one row each, under the lowest partition of the
        # batch: only a transaction holding that partition's stored offset (locked until
        # the commit) writes rows under it, so a stored sketch is never merged into by two
        # writers at once. One row per partition would multiply the rows, and the
        # upserts, by the number of partitions in the batch.
        slot = min(item.message.partition for item in items)
        deltas: dict[PartitionBucket, TermAggregate] = {}
        touched: dict[str, datetime] = {}  # per KPI, the oldest bucket the batch wrote to
        for key, aggregate in result.buckets.items():
            deltas[PartitionBucket(key, slot)] = aggregate
            oldest = touched.get(key.kpi_key)
            if oldest is None or key.bucket_start < oldest:
                touched[key.kpi_key] = key.bucket_start
        await self._buckets.add(session, deltas)
        # A refused event's letter is its message as consumed (raw bytes, topic, partition
        # and offset), like every other letter of the consumer: the fold refers to the
        # decoded event, the very object of its item.
        message_of = {id(item.value): item.message for item in items}
        letters = [
            DeadLetter.of(
                message_of[id(refusal.event)],
                reason=refusal.reason,
                stage=self.stage,
                kind="older_than_retention",
            )
            for refusal in result.refused
        ]

        def committed() -> None:
            self._metrics.batch_done(
                folded=len(new), duplicates=duplicates, seconds=time.perf_counter() - started
            )
            if touched:
                self._on_folded(touched)

        return Applied(letters=letters, after_commit=committed)

    def _fold(self, events: Iterable[ReadEvent], now: datetime) -> FoldResult:
        return self._catalog.folder.fold(events, now=now)

    async def _claim_while_folding(
        self,
        session: AsyncSession,
        events: list[ReadEvent],
        ids: list[SeenEvent],
        now: datetime,
    ) -> tuple[FoldResult, set[SeenEvent]]:
        """Fold the batch while the database records its ids; return the fold and the
        ids not seen before. The claim is the batch's longest statement and the fold its
        largest CPU cost: run side by side, a batch takes about the fold's time less."""
        claim = asyncio.ensure_future(self._event_ids.claim(session, ids, now))
        try:
            await asyncio.sleep(0)  # the claim reaches the database before the fold runs
            result = self._fold(events, now)
        except BaseException:
            # Never leave a statement running on a session about to roll back; the fold's
            # error is the one to report (the claim's, if any, is retrieved and dropped).
            await asyncio.wait([claim])
            if not claim.cancelled():
                claim.exception()
            raise
        return result, await claim


def decode_event(raw: bytes) -> ReadEvent:
    """The event in ``raw``; raises ``InvalidMessage`` naming what is wrong with it."""
    # Fast when certain, else the contract decides (and names what is wrong).
    event = read_event(raw)
    if event is not None:
        return event
    try:
        return validate_event(raw)
    except ValidationError as exc:
        raise InvalidMessage(
            f"invalid event: {first_problem(exc)}", kind="invalid_event"
        ) from exc


def first_of_each(events: Iterable[ReadEvent]) -> list[ReadEvent]:
    """The events with the first occurrence of each (source, event id) kept."""
    seen: set[tuple[str, str]] = set()
    kept: list[ReadEvent] = []
    for event in events:
        key = (event.source, event.event_id)
        if key not in seen:
            seen.add(key)
            kept.append(event)
    return kept
