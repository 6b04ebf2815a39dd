"""The fold handler on real PostgreSQL: ids counted by an earlier batch are not counted
again, and the rest of the batch still is; a batch prepared before others were written
writes only what they did not (the rare re-fold paths)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.scoring.catalog_state import CatalogState
from services.scoring.domain.catalog import parse_catalog
from services.scoring.handlers import FoldHandler
from services.scoring.metrics import ScoringMetrics
from services.scoring.repository import BucketRepository
from shared.bus.dlq import DeadLetterQueue
from shared.bus.ports import Message, OutgoingRecord
from shared.contracts.events import EventEnvelope
from shared.db.offsets import OffsetRepository

from .conftest import CATALOG

NOW = datetime.now(UTC).replace(microsecond=0)


class _DeadLetters:
    """The DLQ's publisher port, recording (Kafka is not what this test is about)."""

    def __init__(self) -> None:
        self.records: list[OutgoingRecord] = []

    async def publish(self, topic: str, records: Sequence[OutgoingRecord]) -> None:
        self.records.extend(records)


def _message(offset: int, event_id: str, partition: int = 0) -> Message:
    event = EventEnvelope(
        event_id=event_id,
        source="support",
        type="complaint_received",
        occurred_at=NOW - timedelta(minutes=offset + 1),
        received_at=NOW,
    )
    return Message("events", partition, offset, event_id.encode(), event.to_bytes(), 0)


def _handler(
    sessions: async_sessionmaker[AsyncSession],
    buckets: BucketRepository,
    dead: _DeadLetters,
    touched: list[set[str]],
) -> FoldHandler:
    return FoldHandler(
        sessions=sessions,
        catalog=CatalogState(parse_catalog(CATALOG), ZoneInfo("UTC")),
        buckets=buckets,
        offsets=OffsetRepository(sessions, consumer="fold-test"),
        dlq=DeadLetterQueue(dead, "dlq"),  # type: ignore[arg-type]
        metrics=ScoringMetrics(CollectorRegistry()),
        on_folded=touched.append,
    )


async def _complaints(
    sessions: async_sessionmaker[AsyncSession], buckets: BucketRepository
) -> int:
    async with sessions() as session:
        totals = await buckets.window_totals(session, "complaints", NOW - timedelta(days=1), NOW)
    return totals[0].count if totals else 0


async def test_ids_counted_by_an_earlier_batch_count_once(
    scoring_db: tuple[AsyncEngine, async_sessionmaker[AsyncSession]],
) -> None:
    _, sessions = scoring_db
    dead = _DeadLetters()
    buckets = BucketRepository()
    touched: list[set[str]] = []
    handler = _handler(sessions, buckets, dead, touched)
    await handler([_message(0, "a"), _message(1, "b")])
    # A replay: "b" again (and "a" again on another partition), beside two new events.
    await handler(
        [_message(2, "b"), _message(3, "c"), _message(0, "a", partition=1), _message(1, "d", 1)]
    )
    assert await _complaints(sessions, buckets) == 4  # a, b, c, d
    assert dead.records == []
    assert touched == [{"complaints"}, {"complaints"}]


async def test_a_batch_prepared_before_others_were_written_writes_only_the_rest(
    scoring_db: tuple[AsyncEngine, async_sessionmaker[AsyncSession]],
) -> None:
    """E.g. a partition moved to another instance, which applied part of it meanwhile."""
    _, sessions = scoring_db
    buckets = BucketRepository()
    dead = _DeadLetters()
    touched: list[set[str]] = []
    mine, theirs = _handler(sessions, buckets, dead, touched), _handler(sessions, buckets, dead, [])
    batch = [_message(i, f"e{i}") for i in range(6)]
    write = await mine.prepare(batch)  # folded all six, speculatively
    await theirs(batch[:4])  # offsets 0-3 applied first, by "another instance"
    await write()
    assert await _complaints(sessions, buckets) == 6  # e4 and e5 added once, not e0-e3 again

    stale = await mine.prepare(batch[4:])
    await theirs(batch[4:])
    await stale()  # everything in it was applied meanwhile: nothing happens
    assert await _complaints(sessions, buckets) == 6
    assert touched == [{"complaints"}]
    assert dead.records == []
