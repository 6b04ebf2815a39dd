"""The evaluator's window totals: the settled part remembered, the value always the window's.

Each value read through ``WindowTotals`` is compared with the whole window read at once
(``BucketRepository.windows_totals``), on PostgreSQL and on SQLite.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from datasketches import hll_sketch
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scoring.domain.aggregates import HLL_LG_K, BucketKey, TermAggregate
from services.scoring.domain.catalog import KpiDefinition
from services.scoring.repository import BucketRepository, PartitionBucket
from services.scoring.windows import WindowTotals
from shared.db.engine import transaction
from tests.integration.contracts.conftest import scoring_repositories
from tests.unit.scoring.factories import make_kpi

Sessions = async_sessionmaker[AsyncSession]
# 1-day windows have 15-minute buckets; T0 is 4 minutes into one.
T0 = datetime(2026, 11, 2, 10, 4, tzinfo=UTC)
QUARTER = timedelta(minutes=15)
DAY_KPI = make_kpi(key="day", window="1d")
WEEK_KPI = make_kpi(key="week", window="7d")  # hourly buckets


class _Recording(BucketRepository):
    """Remembers the windows asked for; can run a step right after a read (a fold)."""

    def __init__(self, sessions: Sessions) -> None:
        super().__init__()
        self.inner = scoring_repositories(sessions).buckets
        self.asked: list[dict[str, tuple[datetime, datetime]]] = []
        self.after_read: Any = None

    async def windows_totals(
        self, session: AsyncSession, windows: Mapping[str, tuple[datetime, datetime]]
    ) -> dict[str, dict[int, TermAggregate]]:
        self.asked.append(dict(windows))
        read = await self.inner.windows_totals(session, windows)
        if self.after_read is not None:
            step, self.after_read = self.after_read, None
            await step()
        return read


def _hll(item: str) -> bytes:
    sketch = hll_sketch(HLL_LG_K)
    sketch.update(item)
    raw: bytes = sketch.serialize_compact()
    return raw


async def _add(sessions: Sessions, deltas: dict[PartitionBucket, TermAggregate]) -> None:
    async with transaction(sessions) as session:
        await scoring_repositories(sessions).buckets.add(session, deltas)


async def _fill(sessions: Sessions) -> None:
    """Buckets every 15 minutes (hourly for the week KPI) over 8 days, in two partitions."""
    deltas: dict[PartitionBucket, TermAggregate] = {}
    start = T0.replace(minute=0) - timedelta(days=8)
    for step in range(8 * 24 * 4 + 8):
        at = start + step * QUARTER
        for partition in (0, 1):
            value = step * 1_000 + partition
            deltas[PartitionBucket(BucketKey("day", 0, at), partition)] = TermAggregate(
                1 + partition, value, float(value), float(value + 1)
            )
            if at.minute == 0:
                deltas[PartitionBucket(BucketKey("week", 0, at), partition)] = TermAggregate(
                    1, sketch=_hll(f"user-{step % 500}"), sketch_kind="hll"
                )
    await _add(sessions, deltas)


async def _whole(
    sessions: Sessions, kpi: KpiDefinition, as_of: datetime
) -> dict[int, TermAggregate]:
    async with sessions() as session:
        read = await scoring_repositories(sessions).buckets.windows_totals(
            session, {kpi.key: (as_of - kpi.window, as_of)}
        )
    return read[kpi.key]


async def _read(
    windows: WindowTotals, sessions: Sessions, kpis: list[KpiDefinition], as_of: datetime
) -> dict[str, dict[int, TermAggregate]]:
    async with sessions() as session:
        return await windows.read(session, kpis, as_of)


def _plain(totals: dict[int, TermAggregate]) -> dict[int, tuple[int, int, Any, Any]]:
    return {term: (a.count, a.sum_micros, a.min, a.max) for term, a in totals.items()}


def _estimate(totals: dict[int, TermAggregate]) -> float:
    sketch = totals[0].sketch
    assert sketch is not None
    return float(hll_sketch.deserialize(sketch).get_estimate())


async def test_values_equal_the_whole_window_as_it_slides(sessions: Sessions) -> None:
    await _fill(sessions)
    repo = _Recording(sessions)
    windows = WindowTotals(repo, UTC, refresh_s=3600)
    moments = [
        T0, T0 + timedelta(seconds=5), T0 + timedelta(minutes=10, seconds=59),
        T0 + timedelta(minutes=11), T0 + timedelta(minutes=11, seconds=1),
        T0 + timedelta(minutes=56), T0 + timedelta(hours=3, minutes=7),
    ]
    for as_of in moments:
        read = await _read(windows, sessions, [DAY_KPI, WEEK_KPI], as_of)
        assert _plain(read["day"]) == _plain(await _whole(sessions, DAY_KPI, as_of)), as_of
        whole_week = await _whole(sessions, WEEK_KPI, as_of)
        assert read["week"][0].count == whole_week[0].count
        assert _estimate(read["week"]) == _estimate(whole_week)
    assert read["day"][0].count > 90  # about a day of buckets, in two partitions


async def test_the_settled_part_is_read_once_until_the_window_moves_a_bucket(
    sessions: Sessions,
) -> None:
    await _fill(sessions)
    repo = _Recording(sessions)
    windows = WindowTotals(repo, UTC, refresh_s=3600)
    await _read(windows, sessions, [DAY_KPI], T0)
    assert len(repo.asked) == 2  # the settled part, then the open one
    settled_until = repo.asked[0]["day"][1]
    assert settled_until == T0.replace(minute=0) - QUARTER  # 10:04 - 10 s is in 10:00's
    repo.asked.clear()
    await _read(windows, sessions, [DAY_KPI], T0 + timedelta(minutes=5))
    assert repo.asked == [{"day": (settled_until, T0 + timedelta(minutes=5))}]
    repo.asked.clear()
    await _read(windows, sessions, [DAY_KPI], T0 + timedelta(minutes=11, seconds=5))
    assert len(repo.asked) == 2  # the window's first bucket (yesterday 10:00) left it


async def test_a_late_event_folded_here_shows_at_once(sessions: Sessions) -> None:
    await _fill(sessions)
    windows = WindowTotals(_Recording(sessions), UTC, refresh_s=3600)
    before = await _read(windows, sessions, [DAY_KPI], T0)
    late = T0.replace(minute=0) - timedelta(hours=5)
    await _add(sessions, {PartitionBucket(BucketKey("day", 0, late), 3): TermAggregate(7)})
    windows.changed({"day": late})
    after = await _read(windows, sessions, [DAY_KPI], T0)
    assert after["day"][0].count == before["day"][0].count + 7
    assert _plain(after["day"]) == _plain(await _whole(sessions, DAY_KPI, T0))


async def test_a_fold_during_a_read_is_not_lost(sessions: Sessions) -> None:
    await _fill(sessions)
    repo = _Recording(sessions)
    windows = WindowTotals(repo, UTC, refresh_s=3600)
    late = T0.replace(minute=0) - timedelta(hours=5)

    async def fold() -> None:  # commits after the settled part was read
        await _add(sessions, {PartitionBucket(BucketKey("day", 0, late), 3): TermAggregate(7)})
        windows.changed({"day": late})

    repo.after_read = fold
    first = await _read(windows, sessions, [DAY_KPI], T0)
    second = await _read(windows, sessions, [DAY_KPI], T0)
    assert second["day"][0].count == first["day"][0].count + 7
    assert _plain(second["day"]) == _plain(await _whole(sessions, DAY_KPI, T0))


async def test_another_instances_late_event_shows_within_the_refresh(
    sessions: Sessions,
) -> None:
    await _fill(sessions)
    clock = [100.0]
    windows = WindowTotals(_Recording(sessions), UTC, refresh_s=10, monotonic=lambda: clock[0])
    before = await _read(windows, sessions, [DAY_KPI], T0)
    late = T0.replace(minute=0) - timedelta(hours=5)
    # Folded by another scorer instance: this one is not told.
    await _add(sessions, {PartitionBucket(BucketKey("day", 0, late), 4): TermAggregate(7)})
    clock[0] += 9
    assert (await _read(windows, sessions, [DAY_KPI], T0))["day"] == before["day"]
    clock[0] += 1
    after = await _read(windows, sessions, [DAY_KPI], T0)
    assert after["day"][0].count == before["day"][0].count + 7


async def test_a_changed_definition_reads_its_window_again(sessions: Sessions) -> None:
    await _fill(sessions)
    repo = _Recording(sessions)
    windows = WindowTotals(repo, UTC, refresh_s=3600)
    await _read(windows, sessions, [DAY_KPI], T0)
    repo.asked.clear()
    # Same key and window, another formula: its buckets were rebuilt, nothing is reused.
    changed = make_kpi(key="day", window="1d", formula={"count": {"source": "crm"}})
    await _read(windows, sessions, [changed], T0)
    assert len(repo.asked) == 2
