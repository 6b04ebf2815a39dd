"""Buckets of partial aggregates per KPI term, bucket start and partition.

The portable implementation (SQLite and PostgreSQL); ``buckets_pg`` replaces the
statements of the fold's and the evaluator's hot paths on PostgreSQL.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy import RowMapping, delete, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.domain.aggregates import BucketKey, TermAggregate, merge, merge_all
from services.scoring.domain.formulas import SketchKind
from services.scoring.repository.chunks import chunks
from services.scoring.tables import kpi_buckets
from shared.db.dialect import utc
from shared.db.upsert import upsert


@dataclass(frozen=True, slots=True)
class PartitionBucket:
    """A bucket's row written under ``partition`` (see ``kpi_buckets``)."""

    key: BucketKey
    partition: int


K = TypeVar("K")

#: Per KPI, per formula term: the merge of a window's buckets.
WindowTotals = dict[str, dict[int, TermAggregate]]


class BucketRepository:
    async def add(
        self, session: AsyncSession, deltas: Mapping[PartitionBucket, TermAggregate]
    ) -> None:
        """Merge ``deltas`` into the stored buckets, creating the missing ones."""
        if not deltas:
            return
        existing = await self.load(session, list(deltas))
        await self.save(
            session,
            {
                key: merge(existing[key], delta) if key in existing else delta
                for key, delta in deltas.items()
            },
        )

    async def load(
        self, session: AsyncSession, keys: Sequence[PartitionBucket]
    ) -> dict[PartitionBucket, TermAggregate]:
        found: dict[PartitionBucket, TermAggregate] = {}
        c = kpi_buckets.c
        for chunk in chunks(list(keys), 1000):
            rows = await session.execute(
                select(kpi_buckets).where(
                    tuple_(c.kpi_key, c.term, c.bucket_start, c.partition).in_(
                        [
                            (k.key.kpi_key, k.key.term, k.key.bucket_start, k.partition)
                            for k in chunk
                        ]
                    )
                )
            )
            found.update(partition_rows(rows.mappings()))
        return found

    async def save(
        self, session: AsyncSession, buckets: Mapping[PartitionBucket, TermAggregate]
    ) -> None:
        rows = [
            {
                "kpi_key": k.key.kpi_key,
                "term": k.key.term,
                "bucket_start": k.key.bucket_start,
                "partition": k.partition,
                "count": agg.count,
                "sum_micros": agg.sum_micros,
                "min": agg.min,
                "max": agg.max,
                "sketch": agg.sketch,
                "sketch_kind": agg.sketch_kind,
            }
            for k, agg in sorted(buckets.items(), key=lambda item: write_order(item[0]))
        ]
        for chunk in chunks(rows, 2000):
            await upsert(
                session,
                kpi_buckets,
                chunk,
                key=("kpi_key", "term", "bucket_start", "partition"),
                update=("count", "sum_micros", "min", "max", "sketch", "sketch_kind"),
            )

    async def buckets(
        self, session: AsyncSession, kpi_key: str, since: datetime, until: datetime
    ) -> dict[BucketKey, TermAggregate]:
        """A KPI's buckets with start in (since, until], every partition's rows merged."""
        c = kpi_buckets.c
        rows = await session.execute(
            select(kpi_buckets).where(
                c.kpi_key == kpi_key, c.bucket_start > since, c.bucket_start <= until
            )
        )
        grouped: dict[BucketKey, list[TermAggregate]] = defaultdict(list)
        for row in rows.mappings():
            grouped[_bucket_key(row)].append(_aggregate(row))
        merged: dict[BucketKey, TermAggregate] = {}
        for key, parts in grouped.items():
            combined = merge_all(parts)
            if combined is not None:
                merged[key] = combined
        return merged

    async def windows_totals(
        self, session: AsyncSession, windows: Mapping[str, tuple[datetime, datetime]]
    ) -> WindowTotals:
        """``window_totals`` of several KPIs, each over its own (since, until]."""
        return {
            key: await self.window_totals(session, key, since, until)
            for key, (since, until) in windows.items()
        }

    async def window_totals(
        self, session: AsyncSession, kpi_key: str, since: datetime, until: datetime
    ) -> dict[int, TermAggregate]:
        """Per term, the merge of every partition's buckets with start in (since, until].

        Counts, sums and extremes are added up by the database, so only one row per term
        travels; sketches are merged here, the only rows fetched one by one.
        """
        c = kpi_buckets.c
        in_window = (c.kpi_key == kpi_key, c.bucket_start > since, c.bucket_start <= until)
        totals = await session.execute(
            select(
                c.term,
                func.sum(c.count),
                func.sum(c.sum_micros),
                func.min(c.min),
                func.max(c.max),
                func.max(c.sketch_kind),
            )
            .where(*in_window)
            .group_by(c.term)
        )
        merged: dict[int, TermAggregate] = {}
        kinds: dict[int, SketchKind] = {}
        for term, count, sum_micros, low, high, kind in totals:
            merged[term] = TermAggregate(int(count), int(sum_micros), low, high)
            if kind is not None:
                kinds[term] = kind
        if kinds:
            rows = await session.execute(
                select(c.term, c.sketch).where(*in_window, c.sketch.is_not(None))
            )
            merged.update(merge_sketches(((t, s) for t, s in rows), kinds, merged))
        return merged

    async def first_bucket_starts(
        self, session: AsyncSession, kpi_keys: Sequence[str]
    ) -> dict[str, datetime]:
        """Per KPI, the start of its first stored bucket: when its data began."""
        if not kpi_keys:
            return {}
        c = kpi_buckets.c
        rows = await session.execute(
            select(c.kpi_key, func.min(c.bucket_start))
            .where(c.kpi_key.in_(list(kpi_keys)))
            .group_by(c.kpi_key)
        )
        return {key: utc(first) for key, first in rows}

    async def forget_kpi(self, session: AsyncSession, kpi_key: str) -> None:
        await session.execute(delete(kpi_buckets).where(kpi_buckets.c.kpi_key == kpi_key))


def merge_sketches(
    rows: Iterable[tuple[K, bytes]],
    kinds: Mapping[K, SketchKind],
    totals: Mapping[K, TermAggregate],
) -> dict[K, TermAggregate]:
    """``totals`` with the sketches of ``rows`` ((key, sketch) pairs) merged in."""
    parts: dict[K, list[TermAggregate]] = {key: [] for key in kinds}
    for key, sketch in rows:
        if key in parts:
            parts[key].append(TermAggregate(sketch=sketch, sketch_kind=kinds[key]))
    merged: dict[K, TermAggregate] = {}
    for key, sketches in parts.items():
        combined = merge_all([totals[key], *sketches])
        if combined is not None:
            merged[key] = combined
    return merged


def write_order(key: PartitionBucket) -> tuple[str, int, datetime, int]:
    # A fixed write order keeps concurrent transactions from deadlocking.
    return (key.key.kpi_key, key.key.term, key.key.bucket_start, key.partition)


def _bucket_key(row: RowMapping) -> BucketKey:
    return BucketKey(row["kpi_key"], row["term"], utc(row["bucket_start"]))


def partition_rows(rows: Iterable[RowMapping]) -> dict[PartitionBucket, TermAggregate]:
    return {PartitionBucket(_bucket_key(row), row["partition"]): _aggregate(row) for row in rows}


def _aggregate(row: RowMapping) -> TermAggregate:
    return TermAggregate(
        count=int(row["count"]),
        sum_micros=int(row["sum_micros"]),
        min=row["min"],
        max=row["max"],
        sketch=row["sketch"],
        sketch_kind=row["sketch_kind"],
    )
