"""The fold handler on real PostgreSQL: ids counted by an earlier batch are not counted
again, and the rest of the batch still is (the rare re-fold path); a batch that starts
above the stored offsets is sent back to them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from datasketches import hll_sketch
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.scoring.catalog_state import CatalogState
from services.scoring.consumer import FoldEvents
from services.scoring.domain.buckets import bucket_start
from services.scoring.domain.catalog import parse_catalog
from services.scoring.metrics import ScoringMetrics
from services.scoring.repository import ScoringRepositories
from shared.bus.consumer import DeadLetterPolicy, TransactionalConsumer
from shared.bus.dlq import DeadLetterQueue
from shared.bus.ports import Message, OutgoingRecord, PartitionId, Rewind
from shared.contracts.event_reader import ReadEvent
from shared.contracts.events import EventEnvelope
from shared.db.offsets import offsets_for

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
    dead: _DeadLetters,
    touched: list[dict[str, datetime]],
    *,
    wait_for_flush: bool = True,
) -> TransactionalConsumer[ReadEvent]:
    repositories = ScoringRepositories.for_dialect("postgresql")
    metrics = ScoringMetrics(CollectorRegistry())
    return TransactionalConsumer(
        FoldEvents(
            catalog=CatalogState(parse_catalog(CATALOG), ZoneInfo("UTC")),
            buckets=repositories.buckets,
            event_ids=repositories.event_ids,
            metrics=metrics,
            on_folded=touched.append,
        ),
        sessions=sessions,
        offsets=offsets_for(sessions, consumer="fold-test"),
        dead_letters=DeadLetterPolicy(DeadLetterQueue(dead, "dlq"), stage="scoring"),  # type: ignore[arg-type]
        metrics=metrics.consumer,
        wait_for_flush=wait_for_flush,
    )


async def _complaints(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        totals = await ScoringRepositories.for_dialect("postgresql").buckets.window_totals(
            session, "complaints", NOW - timedelta(days=1), NOW
        )
    return totals[0].count if totals else 0


async def test_ids_counted_by_an_earlier_batch_count_once(
    scoring_db: tuple[AsyncEngine, async_sessionmaker[AsyncSession]],
) -> None:
    _, sessions = scoring_db
    dead = _DeadLetters()
    touched: list[dict[str, datetime]] = []
    catalog = parse_catalog(CATALOG)
    handler = _handler(sessions, dead, touched)
    await handler([_message(0, "a"), _message(1, "b")])
    # A replay: "b" again (and "a" again on another partition), beside two new events.
    await handler(
        [_message(2, "b"), _message(3, "c"), _message(0, "a", partition=1), _message(1, "d", 1)]
    )
    assert await _complaints(sessions) == 4  # a, b, c, d
    assert dead.records == []
    # Per KPI the oldest bucket written: the replayed "b" and "a" are not folded again.
    (complaints,) = (kpi for kpi in catalog if kpi.key == "complaints")
    assert touched == [
        {"complaints": bucket_start(complaints, NOW - timedelta(minutes=2), UTC)},
        {"complaints": bucket_start(complaints, NOW - timedelta(minutes=4), UTC)},
    ]


async def test_a_batch_above_the_stored_offsets_is_sent_back_to_them(
    scoring_db: tuple[AsyncEngine, async_sessionmaker[AsyncSession]],
) -> None:
    """The database lost folds (a crash with asynchronous commits): the consumer's next
    batch starts above the stored offset. Nothing of it is applied; the handler names the
    stored offset, and the batch read again from there counts every event once."""
    _, sessions = scoring_db
    handler = _handler(sessions, _DeadLetters(), [], wait_for_flush=False)
    await handler([_message(0, "a"), _message(1, "b")])
    # Offsets 2 and 3 were folded, then lost with the database's last transactions.
    with pytest.raises(Rewind) as raised:
        await handler([_message(4, "e"), _message(5, "f")])
    assert raised.value.offsets == {PartitionId("events", 0): 2}
    assert await _complaints(sessions) == 2
    await handler([_message(2, "c"), _message(3, "d"), _message(4, "e"), _message(5, "f")])
    assert await _complaints(sessions) == 6


async def test_a_partition_that_starts_above_its_stored_offset_again_is_taken(
    scoring_db: tuple[AsyncEngine, async_sessionmaker[AsyncSession]],
) -> None:
    """Read again from the stored offset, the log's first record lies above it (retention
    deleted the ones between, or they were transaction markers): there is nothing more to
    read, so the batch is applied. A partition never stored is read from offset 0."""
    _, sessions = scoring_db
    handler = _handler(sessions, _DeadLetters(), [])
    with pytest.raises(Rewind) as raised:
        await handler([_message(7, "h", partition=2)])
    assert raised.value.offsets == {PartitionId("events", 2): 0}
    await handler([_message(7, "h", partition=2), _message(8, "i", partition=2)])
    assert await _complaints(sessions) == 2
    # A later gap on the same partition is a loss again, not the log's.
    with pytest.raises(Rewind):
        await handler([_message(12, "m", partition=2)])


def _feature_used(partition: int, offset: int, subject: str) -> Message:
    event = EventEnvelope(
        event_id=f"{partition}-{offset}",
        source="web",
        type="feature_used",
        subject_id=subject,
        occurred_at=NOW - timedelta(minutes=1),
        received_at=NOW,
    )
    return Message("events", partition, offset, None, event.to_bytes(), 0)


async def test_two_instances_folding_at_once_keep_every_sketch_update(
    scoring_db: tuple[AsyncEngine, async_sessionmaker[AsyncSession]],
) -> None:
    """Two scorers fold the same bucket of a distinct-count KPI at the same moment, each
    from its own partitions: each merges into the stored sketch it read, so they must not
    write the same row, or one's users would vanish from the count."""
    _, sessions = scoring_db
    first = _handler(sessions, _DeadLetters(), [])
    second = _handler(sessions, _DeadLetters(), [])
    for round_ in range(5):
        offset = round_ * 20
        await asyncio.gather(
            first(
                [_feature_used(0, offset + i, f"a{round_}-{i}") for i in range(20)]
                + [_feature_used(1, offset + i, f"b{round_}-{i}") for i in range(20)]
            ),
            second(
                [_feature_used(2, offset + i, f"c{round_}-{i}") for i in range(20)]
                + [_feature_used(3, offset + i, f"d{round_}-{i}") for i in range(20)]
            ),
        )
    async with sessions() as session:
        totals = await ScoringRepositories.for_dialect("postgresql").buckets.window_totals(
            session, "active_users", NOW - timedelta(days=1), NOW
        )
    assert totals[0].count == 400
    assert totals[0].sketch is not None
    estimate = hll_sketch.deserialize(totals[0].sketch).get_estimate()
    assert estimate == pytest.approx(400, rel=0.02)  # HLL at lg_k 12: exact to ~0.5 % here


async def test_an_event_the_fold_cannot_apply_is_dead_lettered_and_the_rest_counted(
    scoring_db: tuple[AsyncEngine, async_sessionmaker[AsyncSession]],
) -> None:
    """An event time at the very end of the calendar passed validation once (ingest now
    bounds it), and the fold failed on it for ever, stopping scoring for every KPI. It
    goes to the DLQ with the reason; the partition moves on."""
    _, sessions = scoring_db
    dead = _DeadLetters()
    handler = _handler(sessions, dead, [])
    poison = (
        b'{"event_id":"p","source":"support","type":"complaint_received",'
        b'"occurred_at":"9999-12-31T23:59:59-14:00","received_at":"'
        + NOW.isoformat().encode()
        + b'"}'
    )
    batch = [_message(0, "a"), Message("events", 0, 1, b"p", poison, 0), _message(2, "c")]
    await handler(batch)
    assert await _complaints(sessions) == 2
    (letter,) = dead.records
    assert letter.value == poison
    reason = dict(letter.headers)["kpipulse-dlq-reason"]
    assert reason.startswith(b"cannot be applied: ")
    await handler([_message(3, "d")])  # and the next batch is folded as usual
    assert await _complaints(sessions) == 3
