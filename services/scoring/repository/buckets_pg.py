"""PostgreSQL's bucket statements: one constant statement per call, whatever its size.

Batches travel as one JSON document rather than as array parameters: asyncpg checks
every element of an array in Python, which cost more per event than the rest of the
statement. Constant statements are compiled and prepared once.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from datetime import datetime

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.domain.aggregates import TermAggregate, merge
from services.scoring.domain.formulas import SketchKind
from services.scoring.repository.buckets import (
    BucketRepository,
    PartitionBucket,
    WindowTotals,
    merge_sketches,
    partition_rows,
    write_order,
)

# Adds deltas to the stored buckets in the database: counts and sums add, min and max
# keep the extreme (NULLs ignored). Sketches cannot be merged in SQL, so the caller sends
# them already merged with the stored one (base64). Sums travel as strings: exact beyond
# 64 bits.
_ADD = text(
    "INSERT INTO kpi_buckets AS b"
    " (kpi_key, term, bucket_start, partition, count, sum_micros, min, max, sketch,"
    " sketch_kind)"
    " SELECT r.kpi_key, r.term, r.bucket_start, r.partition, r.count, r.sum_micros,"
    " r.min, r.max, decode(r.sketch, 'base64'), r.sketch_kind"
    " FROM jsonb_to_recordset(CAST(CAST(:rows AS text) AS jsonb)) AS r(kpi_key varchar,"
    " term integer, bucket_start timestamptz, partition integer, count bigint,"
    " sum_micros numeric, min double precision, max double precision, sketch text,"
    " sketch_kind varchar)"
    " ON CONFLICT (kpi_key, term, bucket_start, partition) DO UPDATE SET"
    " count = b.count + excluded.count,"
    " sum_micros = b.sum_micros + excluded.sum_micros,"
    " min = least(b.min, excluded.min),"
    " max = greatest(b.max, excluded.max),"
    " sketch = coalesce(excluded.sketch, b.sketch),"
    " sketch_kind = coalesce(excluded.sketch_kind, b.sketch_kind)"
)

_LOAD = text(
    "SELECT b.kpi_key, b.term, b.bucket_start, b.partition, b.count, b.sum_micros, b.min,"
    " b.max, b.sketch, b.sketch_kind"
    " FROM kpi_buckets AS b"
    " JOIN jsonb_to_recordset(CAST(CAST(:keys AS text) AS jsonb)) AS k(kpi_key varchar,"
    " term integer, bucket_start timestamptz, partition integer)"
    " ON b.kpi_key = k.kpi_key AND b.term = k.term AND b.bucket_start = k.bucket_start"
    " AND b.partition = k.partition"
)

# The evaluator's windows, one per KPI, summed by the database.
# (Whole literals, not assembled: no SQL is built from strings in this code base.)
_WINDOWS_TOTALS = text(
    "SELECT b.kpi_key, b.term, sum(b.count), sum(b.sum_micros), min(b.min), max(b.max),"
    " max(b.sketch_kind)"
    " FROM kpi_buckets AS b"
    " JOIN unnest(CAST(:keys AS varchar[]), CAST(:since AS timestamptz[]),"
    " CAST(:until AS timestamptz[])) AS w(kpi_key, since, until)"
    " ON b.kpi_key = w.kpi_key AND b.bucket_start > w.since AND b.bucket_start <= w.until"
    " GROUP BY b.kpi_key, b.term"
)
_WINDOWS_SKETCHES = text(
    "SELECT b.kpi_key, b.term, b.sketch"
    " FROM kpi_buckets AS b"
    " JOIN unnest(CAST(:keys AS varchar[]), CAST(:since AS timestamptz[]),"
    " CAST(:until AS timestamptz[])) AS w(kpi_key, since, until)"
    " ON b.kpi_key = w.kpi_key AND b.bucket_start > w.since AND b.bucket_start <= w.until"
    " AND b.sketch IS NOT NULL"
)


class PostgresBucketRepository(BucketRepository):
    async def add(
        self, session: AsyncSession, deltas: Mapping[PartitionBucket, TermAggregate]
    ) -> None:
        if not deltas:
            return
        sketched = [key for key, delta in deltas.items() if delta.sketch is not None]
        stored = await self.load(session, sketched) if sketched else {}
        rows = []
        for key, delta in sorted(deltas.items(), key=lambda item: write_order(item[0])):
            sketch = merge(stored[key], delta).sketch if key in stored else delta.sketch
            rows.append(
                {
                    "kpi_key": key.key.kpi_key,
                    "term": key.key.term,
                    "bucket_start": key.key.bucket_start,
                    "partition": key.partition,
                    "count": delta.count,
                    "sum_micros": str(delta.sum_micros),
                    "min": delta.min,
                    "max": delta.max,
                    "sketch": None if sketch is None else base64.b64encode(sketch).decode(),
                    "sketch_kind": delta.sketch_kind,
                }
            )
        await session.execute(_ADD, {"rows": orjson.dumps(rows).decode()})

    async def load(
        self, session: AsyncSession, keys: Sequence[PartitionBucket]
    ) -> dict[PartitionBucket, TermAggregate]:
        wanted = [
            {
                "kpi_key": k.key.kpi_key,
                "term": k.key.term,
                "bucket_start": k.key.bucket_start,
                "partition": k.partition,
            }
            for k in keys
        ]
        rows = await session.execute(_LOAD, {"keys": orjson.dumps(wanted).decode()})
        return partition_rows(rows.mappings())

    async def windows_totals(
        self, session: AsyncSession, windows: Mapping[str, tuple[datetime, datetime]]
    ) -> WindowTotals:
        if not windows:
            return {}
        keys = list(windows)
        merged: WindowTotals = {key: {} for key in keys}
        kinds: dict[tuple[str, int], SketchKind] = {}
        for key, term, count, sum_micros, low, high, kind in await session.execute(
            _WINDOWS_TOTALS, _window_params(windows, keys)
        ):
            merged[key][term] = TermAggregate(int(count), int(sum_micros), low, high)
            if kind is not None:
                kinds[key, term] = kind
        if kinds:
            sketch_keys = sorted({key for key, _ in kinds})
            rows = await session.execute(_WINDOWS_SKETCHES, _window_params(windows, sketch_keys))
            totals = {(key, term): merged[key][term] for key, term in kinds}
            for (key, term), combined in merge_sketches(
                (((key, term), sketch) for key, term, sketch in rows), kinds, totals
            ).items():
                merged[key][term] = combined
        return merged


def _window_params(
    windows: Mapping[str, tuple[datetime, datetime]], keys: list[str]
) -> dict[str, list[str] | list[datetime]]:
    return {
        "keys": keys,
        "since": [windows[k][0] for k in keys],
        "until": [windows[k][1] for k in keys],
    }
