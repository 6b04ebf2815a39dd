"""Scoring's consumer application with in-memory repositories: what a batch adds, which
events it counts once, what it refuses, and what it reports once committed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry

from services.scoring.catalog_state import CatalogState
from services.scoring.consumer import FoldEvents
from services.scoring.domain.aggregates import TermAggregate, merge
from services.scoring.metrics import ScoringMetrics
from services.scoring.repository import (
    BucketRepository,
    EventIdRepository,
    PartitionBucket,
    SeenEvent,
)
from shared.bus.consumer import Item
from shared.bus.dlq import describe
from shared.bus.ports import Message
from shared.contracts.event_reader import ReadEvent
from tests.unit.scoring.factories import T0, event, make_catalog, make_kpi

SESSION: Any = object()  # the fakes below keep their rows in memory


class _Buckets(BucketRepository):
    def __init__(self) -> None:
        self.rows: dict[PartitionBucket, TermAggregate] = {}

    async def add(self, session: Any, deltas: Mapping[PartitionBucket, TermAggregate]) -> None:
        for key, delta in deltas.items():
            self.rows[key] = merge(self.rows[key], delta) if key in self.rows else delta

    def count(self) -> int:
        return sum(aggregate.count for aggregate in self.rows.values())


class _EventIds(EventIdRepository):
    def __init__(self) -> None:
        self.seen: set[SeenEvent] = set()

    async def claim(
        self, session: Any, events: Sequence[SeenEvent], seen_at: datetime
    ) -> set[SeenEvent]:
        new = set(events) - self.seen
        self.seen |= new
        return new


class _Harness:
    def __init__(self) -> None:
        kpi = make_kpi(window="1d", retention="7d")
        self.buckets, self.ids = _Buckets(), _EventIds()
        self.folded: list[dict[str, datetime]] = []
        self.metrics = ScoringMetrics(CollectorRegistry())
        self.fold = FoldEvents(
            catalog=CatalogState(make_catalog(kpi), ZoneInfo("UTC")),
            buckets=self.buckets,
            event_ids=self.ids,
            metrics=self.metrics,
            on_folded=self.folded.append,
            clock=lambda: T0 + timedelta(hours=1),
        )

    async def apply(self, *events: Any, partition: int = 0) -> list[str]:
        items = [
            Item(Message("events", partition, i, None, b"", 0), ReadEvent.of(e))
            for i, e in enumerate(events)
        ]
        applied = await self.fold.apply(SESSION, items)
        assert applied.after_commit is not None
        applied.after_commit()
        return [letter.reason for letter in applied.letters]


def _signup(event_id: str, *, source: str = "web", at: datetime = T0) -> Any:
    return event(source=source, at=at).model_copy(update={"event_id": event_id})


async def test_each_event_is_counted_once_within_and_across_batches() -> None:
    harness = _Harness()
    assert await harness.apply(_signup("a"), _signup("b"), _signup("a")) == []
    assert await harness.apply(_signup("b"), _signup("c")) == []
    assert harness.buckets.count() == 3  # a, b, c
    folded = harness.metrics.folded._value.get()
    duplicates = harness.metrics.duplicates._value.get()
    assert (folded, duplicates) == (3, 1)


async def test_the_same_id_from_two_sources_is_two_events() -> None:
    harness = _Harness()
    await harness.apply(_signup("t-1", source="web"), _signup("t-1", source="support"))
    assert SeenEvent("support", "t-1") in harness.ids.seen
    assert SeenEvent("web", "t-1") in harness.ids.seen


async def test_an_event_older_than_the_retention_is_refused_by_name() -> None:
    harness = _Harness()
    reasons = await harness.apply(_signup("old", at=T0 - timedelta(days=30)), _signup("new"))
    assert reasons == ["older than the retention of KPIs: signups (7d)"]
    assert harness.buckets.count() == 1


async def test_a_refused_event_is_dead_lettered_as_consumed_with_its_origin() -> None:
    harness = _Harness()
    old = ReadEvent.of(_signup("old", at=T0 - timedelta(days=30)))
    raw = b'{"as": "consumed"}'  # the letter carries these bytes, not a re-encoding
    message = Message("events", 4, 17, b"old", raw, 0)
    applied = await harness.fold.apply(SESSION, [Item(message, old)])
    [letter] = applied.letters
    assert (letter.source, letter.payload, letter.key, letter.stage) == (
        message, raw, b"old", "scoring"
    )
    assert describe(Message("dlq", 0, 0, None, b"", 0, letter.to_record().headers)) == {
        "reason": "older than the retention of KPIs: signups (7d)", "stage": "scoring",
        "source_topic": "events", "source_partition": 4, "source_offset": 17,
    }


async def test_once_committed_it_reports_the_oldest_bucket_per_kpi() -> None:
    harness = _Harness()
    await harness.apply(_signup("x", at=T0 - timedelta(hours=3)), _signup("y"))
    assert len(harness.folded) == 1
    assert harness.folded[0]["signups"] <= T0 - timedelta(hours=3)
    assert {key.partition for key in harness.buckets.rows} == {0}
