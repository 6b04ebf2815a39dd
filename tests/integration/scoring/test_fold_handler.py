"""The fold handler on real PostgreSQL: ids counted by an earlier batch are not counted
again, and the rest of the batch still is (the rare re-fold path)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.scoring.catalog_state import CatalogState
from services.scoring.domain.aggregates import bucket_start
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


async def test_ids_counted_by_an_earlier_batch_count_once(
    scoring_db: tuple[AsyncEngine, async_sessionmaker[AsyncSession]],
) -> None:
    _, sessions = scoring_db
    dead = _DeadLetters()
    buckets = BucketRepository()
    touched: list[dict[str, datetime]] = []
    catalog = parse_catalog(CATALOG)
    handler = FoldHandler(
        sessions=sessions,
        catalog=CatalogState(catalog, ZoneInfo("UTC")),
        buckets=buckets,
        offsets=OffsetRepository(sessions, consumer="fold-test"),
        dlq=DeadLetterQueue(dead, "dlq"),  # type: ignore[arg-type]
        metrics=ScoringMetrics(CollectorRegistry()),
        on_folded=touched.append,
    )
    await handler([_message(0, "a"), _message(1, "b")])
    # A replay: "b" again (and "a" again on another partition), beside two new events.
    await handler(
        [_message(2, "b"), _message(3, "c"), _message(0, "a", partition=1), _message(1, "d", 1)]
    )
    async with sessions() as session:
        totals = await buckets.window_totals(session, "complaints", NOW - timedelta(days=1), NOW)
    assert totals[0].count == 4  # a, b, c, d
    assert dead.records == []
    # Per KPI the oldest bucket written: the replayed "b" and "a" are not folded again.
    (complaints,) = (kpi for kpi in catalog if kpi.key == "complaints")
    assert touched == [
        {"complaints": bucket_start(complaints, NOW - timedelta(minutes=2), UTC)},
        {"complaints": bucket_start(complaints, NOW - timedelta(minutes=4), UTC)},
    ]
