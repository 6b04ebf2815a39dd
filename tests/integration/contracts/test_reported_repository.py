"""Contract tests (PostgreSQL and SQLite) of what issue 19 stores: reported values with
their correction history, and ``latest`` sketches merged in stored buckets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scoring.domain.aggregates import BucketKey, TermAggregate, pack_last, unpack_last
from services.scoring.domain.reported import Entry
from services.scoring.repository import PartitionBucket
from shared.db.engine import transaction
from tests.integration.contracts.conftest import scoring_repositories

Sessions = async_sessionmaker[AsyncSession]
NOV = datetime(2026, 11, 1, tzinfo=UTC)
DEC = datetime(2026, 12, 1, tzinfo=UTC)
AT = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)


async def test_reported_values_corrections_keep_history(sessions: Sessions) -> None:
    repo = scoring_repositories(sessions).reported
    async with transaction(sessions) as session:
        first = await repo.write(
            session,
            [Entry("turnover", NOV, 0.08, "two leavers"), Entry("turnover", DEC, 0.02, None)],
            actor="hoa",
            at=AT,
        )
    assert [w.previous for w in first] == [None, None]
    async with transaction(sessions) as session:
        (corrected,) = await repo.write(
            session, [Entry("turnover", NOV, 0.01, "recount")], actor="lan", at=AT + timedelta(1)
        )
    assert (corrected.previous, corrected.previous_note) == (0.08, "two leavers")
    async with sessions() as session:
        values = await repo.values(session, ["turnover", "other"], NOV)
        entries = await repo.entries(session, "turnover", NOV)
        changes = await repo.changes(session, "turnover")
        since = await repo.defined_since(session, ["turnover"])
    assert values == {"turnover": {NOV: 0.01, DEC: 0.02}}
    assert [(e["period_start"], e["entered_by"]) for e in entries] == [(NOV, "lan"), (DEC, "hoa")]
    assert [(c["old_value"], c["new_value"], c["by"]) for c in changes] == [
        (0.08, 0.01, "lan"),
        (None, 0.02, "hoa"),
        (None, 0.08, "hoa"),
    ]
    assert since == {}  # no catalog change recorded for it


async def test_latest_sketches_keep_the_newest_value_when_merged(sessions: Sessions) -> None:
    repo = scoring_repositories(sessions).buckets
    bucket = PartitionBucket(BucketKey("headcount", 0, NOV), 0)
    newer, older = NOV.timestamp() + 60, NOV.timestamp() + 30
    async with transaction(sessions) as session:
        await repo.add(
            session,
            {bucket: TermAggregate(count=1, sum_micros=42, sketch=pack_last(newer, 42.0),
                                   sketch_kind="last")},
        )
    async with transaction(sessions) as session:
        await repo.add(
            session,
            {bucket: TermAggregate(count=1, sum_micros=40, sketch=pack_last(older, 40.0),
                                   sketch_kind="last")},
        )
    async with sessions() as session:
        loaded = await repo.load(session, [bucket])
        totals = await repo.window_totals(session, "headcount", NOV - timedelta(1), DEC)
    stored = loaded[bucket].sketch
    assert stored is not None and unpack_last(stored) == (newer, 42.0)
    sketch = totals[0].sketch
    assert sketch is not None and unpack_last(sketch)[1] == 42.0
