"""Every SQL statement of the scoring service. Runs on PostgreSQL and on SQLite."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    DateTime,
    RowMapping,
    bindparam,
    case,
    delete,
    func,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.domain.aggregates import BucketKey, TermAggregate, merge, merge_all
from services.scoring.domain.formulas import SketchKind
from services.scoring.tables import (
    kpi_buckets,
    kpi_changes,
    kpi_current,
    kpi_definitions,
    kpi_history,
    processed_events,
)
from shared.db.dialect import is_postgres, utc
from shared.db.upsert import insert_for, upsert

# Postgres caps a statement at 32767 parameters; stay well below for multi-row VALUES.
_CHUNK = 4000

# Batches travel as one JSON document rather than as array parameters: asyncpg checks
# every element of an array in Python (several isinstance calls against ABCs each), which
# cost more per event than the rest of the statement. One constant statement each.

# Returns the ids already seen (usually none) rather than the thousands just claimed:
# every row sent back costs the scorer CPU, and duplicates are the exception.
_CLAIM_EVENTS_PG = text(
    "WITH ids AS (SELECT jsonb_array_elements_text(CAST(CAST(:ids AS text) AS jsonb)) AS id),"
    " claimed AS ("
    " INSERT INTO processed_events (event_id, seen_at) SELECT id, :seen_at FROM ids"
    " ON CONFLICT (event_id) DO NOTHING RETURNING event_id)"
    " SELECT id FROM ids EXCEPT SELECT event_id FROM claimed"
).bindparams(bindparam("seen_at", type_=DateTime(timezone=True)))

# Adds deltas to the stored buckets in the database: counts and sums add, min and max
# keep the extreme (NULLs ignored). Sketches cannot be merged in SQL, so the caller sends
# them already merged with the stored one (base64). Sums travel as strings: exact beyond
# 64 bits.
_ADD_BUCKETS_PG = text(
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

_LOAD_BUCKETS_PG = text(
    "SELECT b.kpi_key, b.term, b.bucket_start, b.partition, b.count, b.sum_micros, b.min,"
    " b.max, b.sketch, b.sketch_kind"
    " FROM kpi_buckets AS b"
    " JOIN jsonb_to_recordset(CAST(CAST(:keys AS text) AS jsonb)) AS k(kpi_key varchar,"
    " term integer, bucket_start timestamptz, partition integer)"
    " ON b.kpi_key = k.kpi_key AND b.term = k.term AND b.bucket_start = k.bucket_start"
    " AND b.partition = k.partition"
)

# The evaluator's windows, one per KPI: summed by the database.
# (Whole literals, not assembled: no SQL is built from strings in this code base.)
_WINDOWS_TOTALS_PG = text(
    "SELECT b.kpi_key, b.term, sum(b.count), sum(b.sum_micros), min(b.min), max(b.max),"
    " max(b.sketch_kind)"
    " FROM kpi_buckets AS b"
    " JOIN unnest(CAST(:keys AS varchar[]), CAST(:since AS timestamptz[]),"
    " CAST(:until AS timestamptz[])) AS w(kpi_key, since, until)"
    " ON b.kpi_key = w.kpi_key AND b.bucket_start > w.since AND b.bucket_start <= w.until"
    " GROUP BY b.kpi_key, b.term"
)
_WINDOWS_SKETCHES_PG = text(
    "SELECT b.kpi_key, b.term, b.sketch"
    " FROM kpi_buckets AS b"
    " JOIN unnest(CAST(:keys AS varchar[]), CAST(:since AS timestamptz[]),"
    " CAST(:until AS timestamptz[])) AS w(kpi_key, since, until)"
    " ON b.kpi_key = w.kpi_key AND b.bucket_start > w.since AND b.bucket_start <= w.until"
    " AND b.sketch IS NOT NULL"
)

# The evaluator's claims of a tick, one statement for all its KPIs (one per KPI cost the
# evaluator about 1 ms of CPU each, on the loop the fold shares). Rows are locked in key
# order first, so two instances claiming the same KPIs cannot deadlock.
_LOCK_CURRENT_PG = text(
    "SELECT c.kpi_key FROM kpi_current AS c"
    " JOIN jsonb_array_elements_text(CAST(CAST(:keys AS text) AS jsonb)) AS k(kpi_key)"
    " ON c.kpi_key = k.kpi_key ORDER BY c.kpi_key FOR UPDATE OF c"
)
_CLAIM_CURRENT_PG = text(
    "WITH v AS (SELECT * FROM jsonb_to_recordset(CAST(CAST(:rows AS text) AS jsonb)) AS v("
    " kpi_key text, value float8, numerator float8, denominator float8, status text,"
    " score float8, as_of timestamptz, published_at timestamptz, not_since timestamptz)),"
    " updated AS ("
    " UPDATE kpi_current AS c SET value = v.value, numerator = v.numerator,"
    " denominator = v.denominator, status = v.status, score = v.score, as_of = v.as_of,"
    # SET expressions see the row as it was: the claim compares old and new.
    " published_at = CASE WHEN c.status <> v.status OR c.published_at <= v.not_since"
    " THEN v.published_at ELSE c.published_at END"
    " FROM v WHERE c.kpi_key = v.kpi_key"
    " RETURNING c.kpi_key, c.published_at = v.published_at AS claimed),"
    " inserted AS ("
    " INSERT INTO kpi_current"
    " (kpi_key, value, numerator, denominator, status, score, as_of, published_at)"
    " SELECT v.kpi_key, v.value, v.numerator, v.denominator, v.status, v.score, v.as_of,"
    " v.published_at FROM v WHERE v.kpi_key NOT IN (SELECT kpi_key FROM updated)"
    " ON CONFLICT (kpi_key) DO NOTHING RETURNING kpi_key),"
    " claims AS (SELECT kpi_key FROM updated WHERE claimed"
    " UNION ALL SELECT kpi_key FROM inserted),"
    " history AS (INSERT INTO kpi_history (kpi_key, at, value, status, score)"
    " SELECT v.kpi_key, v.as_of, v.value, v.status, v.score FROM v JOIN claims USING (kpi_key))"
    " SELECT kpi_key FROM claims"
)


@dataclass(frozen=True, slots=True)
class PartitionBucket:
    """A bucket's row written under ``partition`` (see ``kpi_buckets``)."""

    key: BucketKey
    partition: int


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class BucketRepository:
    """Buckets of partial aggregates and the ids of events already counted."""

    async def claim_new_events(
        self, session: AsyncSession, event_ids: Sequence[str], seen_at: datetime
    ) -> set[str]:
        """Record ``event_ids``; return those not seen before (the ones to count)."""
        if not event_ids:
            return set()
        if is_postgres(session):
            # One constant statement whatever the batch size: compiled and prepared once.
            ids = orjson.dumps(list(event_ids)).decode()
            result = await session.execute(_CLAIM_EVENTS_PG, {"ids": ids, "seen_at": seen_at})
            return set(event_ids).difference(result.scalars())
        fresh: set[str] = set()
        for chunk in _chunks(list(event_ids)):
            stmt = (
                insert_for(session, processed_events)
                .values([{"event_id": eid, "seen_at": seen_at} for eid in chunk])
                .on_conflict_do_nothing(index_elements=["event_id"])
                .returning(processed_events.c.event_id)
            )
            fresh.update((await session.execute(stmt)).scalars())
        return fresh

    async def add(
        self, session: AsyncSession, deltas: Mapping[PartitionBucket, TermAggregate]
    ) -> None:
        """Merge ``deltas`` into the stored buckets, creating the missing ones."""
        if not deltas:
            return
        sketched = [key for key, delta in deltas.items() if delta.sketch is not None]
        if not is_postgres(session):
            existing = await self.load(session, list(deltas))
            await self.save(
                session,
                {
                    key: merge(existing[key], delta) if key in existing else delta
                    for key, delta in deltas.items()
                },
            )
            return
        stored = await self.load(session, sketched) if sketched else {}
        rows = []
        for key, delta in sorted(deltas.items(), key=lambda item: _order(item[0])):
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
        await session.execute(_ADD_BUCKETS_PG, {"rows": orjson.dumps(rows).decode()})

    async def load(
        self, session: AsyncSession, keys: Sequence[PartitionBucket]
    ) -> dict[PartitionBucket, TermAggregate]:
        found: dict[PartitionBucket, TermAggregate] = {}
        if is_postgres(session):
            # One constant statement (prepared once) whatever the number of keys.
            wanted = [
                {
                    "kpi_key": k.key.kpi_key,
                    "term": k.key.term,
                    "bucket_start": k.key.bucket_start,
                    "partition": k.partition,
                }
                for k in keys
            ]
            rows = await session.execute(_LOAD_BUCKETS_PG, {"keys": orjson.dumps(wanted).decode()})
            for row in rows.mappings():
                key = BucketKey(row["kpi_key"], row["term"], utc(row["bucket_start"]))
                found[PartitionBucket(key, row["partition"])] = _aggregate(row)
            return found
        c = kpi_buckets.c
        for chunk in _chunks(list(keys), 1000):
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
            for row in rows.mappings():
                key = BucketKey(row["kpi_key"], row["term"], utc(row["bucket_start"]))
                found[PartitionBucket(key, row["partition"])] = _aggregate(row)
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
            for k, agg in sorted(buckets.items(), key=lambda item: _order(item[0]))
        ]
        for chunk in _chunks(rows, 2000):
            await upsert(
                session,
                kpi_buckets,
                chunk,
                key=("kpi_key", "term", "bucket_start", "partition"),
                update=("count", "sum_micros", "min", "max", "sketch", "sketch_kind"),
            )

    async def window(
        self, session: AsyncSession, kpi_key: str, since: datetime, until: datetime
    ) -> list[tuple[BucketKey, TermAggregate]]:
        """Every partition's buckets of a KPI with start in (since, until]."""
        c = kpi_buckets.c
        rows = await session.execute(
            select(kpi_buckets).where(
                c.kpi_key == kpi_key, c.bucket_start > since, c.bucket_start <= until
            )
        )
        return [
            (BucketKey(r["kpi_key"], r["term"], utc(r["bucket_start"])), _aggregate(r))
            for r in rows.mappings()
        ]

    async def windows_totals(
        self, session: AsyncSession, windows: Mapping[str, tuple[datetime, datetime]]
    ) -> dict[str, dict[int, TermAggregate]]:
        """``window_totals`` of several KPIs, each (since, until], in one statement."""
        if not is_postgres(session) or not windows:
            return {
                key: await self.window_totals(session, key, since, until)
                for key, (since, until) in windows.items()
            }
        keys = list(windows)
        params = {
            "keys": keys,
            "since": [windows[k][0] for k in keys],
            "until": [windows[k][1] for k in keys],
        }
        merged: dict[str, dict[int, TermAggregate]] = {key: {} for key in keys}
        kinds: dict[tuple[str, int], SketchKind] = {}
        for key, term, count, sum_micros, low, high, kind in await session.execute(
            _WINDOWS_TOTALS_PG, params
        ):
            merged[key][term] = TermAggregate(int(count), int(sum_micros), low, high)
            if kind is not None:
                kinds[key, term] = kind
        if kinds:
            sketches: dict[tuple[str, int], list[TermAggregate]] = {k: [] for k in kinds}
            sketch_keys = sorted({key for key, _ in kinds})
            for key, term, sketch in await session.execute(
                _WINDOWS_SKETCHES_PG,
                {
                    "keys": sketch_keys,
                    "since": [windows[k][0] for k in sketch_keys],
                    "until": [windows[k][1] for k in sketch_keys],
                },
            ):
                if (key, term) in sketches:
                    kind = kinds[key, term]
                    sketches[key, term].append(TermAggregate(sketch=sketch, sketch_kind=kind))
            for (key, term), parts in sketches.items():
                combined = merge_all([merged[key][term], *parts])
                if combined is not None:
                    merged[key][term] = combined
        return merged

    async def window_totals(
        self, session: AsyncSession, kpi_key: str, since: datetime, until: datetime
    ) -> dict[int, TermAggregate]:
        """Per term, the merge of every partition's buckets with start in (since, until].

        Counts, sums and extremes are added up by the database, so only one row per term
        travels (the evaluator asks this for every busy KPI several times a second);
        sketches are merged here, the only rows fetched one by one.
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
            sketches: dict[int, list[TermAggregate]] = {term: [] for term in kinds}
            rows = await session.execute(
                select(c.term, c.sketch).where(*in_window, c.sketch.is_not(None))
            )
            for term, sketch in rows:
                if term in sketches:
                    sketches[term].append(TermAggregate(sketch=sketch, sketch_kind=kinds[term]))
            for term, parts in sketches.items():
                combined = merge_all([merged[term], *parts])
                if combined is not None:
                    merged[term] = combined
        return merged

    async def forget_kpi(self, session: AsyncSession, kpi_key: str) -> None:
        await session.execute(delete(kpi_buckets).where(kpi_buckets.c.kpi_key == kpi_key))

    async def prune_seen(self, session: AsyncSession, before: datetime) -> int:
        result = await session.execute(
            delete(processed_events).where(processed_events.c.seen_at < before)
        )
        return int(getattr(result, "rowcount", 0) or 0)


def _order(key: PartitionBucket) -> tuple[str, int, datetime, int]:
    # A fixed write order keeps concurrent transactions from deadlocking.
    return (key.key.kpi_key, key.key.term, key.key.bucket_start, key.partition)


def _aggregate(row: RowMapping) -> TermAggregate:
    return TermAggregate(
        count=int(row["count"]),
        sum_micros=int(row["sum_micros"]),
        min=row["min"],
        max=row["max"],
        sketch=row["sketch"],
        sketch_kind=row["sketch_kind"],
    )


class CatalogRepository:
    """The applied catalog and its change history."""

    async def active(self, session: AsyncSession) -> list[dict[str, Any]]:
        rows = await session.execute(
            select(kpi_definitions.c.definition)
            .where(kpi_definitions.c.retired_at.is_(None))
            .order_by(kpi_definitions.c.key)
        )
        return [dict(d) for d in rows.scalars()]

    async def definitions(self, session: AsyncSession, keys: Sequence[str]) -> list[dict[str, Any]]:
        """The stored definitions of ``keys``, retired ones included."""
        rows = await session.execute(
            select(kpi_definitions.c.definition).where(kpi_definitions.c.key.in_(list(keys)))
        )
        return [dict(d) for d in rows.scalars()]

    async def stamp(self, session: AsyncSession) -> tuple[int, datetime | None]:
        """Changes whenever the catalog does: cheap to poll."""
        row = (
            await session.execute(
                select(func.count(), func.max(kpi_definitions.c.updated_at)).select_from(
                    kpi_definitions
                )
            )
        ).one()
        return int(row[0]), (utc(row[1]) if row[1] is not None else None)

    async def upsert_definition(
        self, session: AsyncSession, key: str, definition: dict[str, Any], at: datetime
    ) -> None:
        existing = (
            await session.execute(
                select(kpi_definitions.c.version).where(kpi_definitions.c.key == key)
            )
        ).scalar_one_or_none()
        await upsert(
            session,
            kpi_definitions,
            [
                {
                    "key": key,
                    "definition": definition,
                    "version": (existing or 0) + 1,
                    "updated_at": at,
                    "retired_at": None,
                }
            ],
            key=("key",),
            update=("definition", "version", "updated_at", "retired_at"),
        )

    async def retire(self, session: AsyncSession, key: str, at: datetime) -> bool:
        result = await session.execute(
            update(kpi_definitions)
            .where(kpi_definitions.c.key == key, kpi_definitions.c.retired_at.is_(None))
            .values(retired_at=at, updated_at=at)
        )
        return bool(getattr(result, "rowcount", 0))

    async def record_change(
        self,
        session: AsyncSession,
        *,
        kpi_key: str,
        action: str,
        changes: list[dict[str, Any]],
        actor: str,
        at: datetime,
    ) -> None:
        await session.execute(
            kpi_changes.insert().values(
                kpi_key=kpi_key, action=action, changes=changes, actor=actor, at=at
            )
        )

    async def history(self, session: AsyncSession, kpi_key: str) -> list[dict[str, Any]]:
        rows = await session.execute(
            select(kpi_changes).where(kpi_changes.c.kpi_key == kpi_key).order_by(kpi_changes.c.id)
        )
        return [{**r, "at": utc(r["at"])} for r in rows.mappings()]


@dataclass(frozen=True, slots=True)
class CurrentValue:
    kpi_key: str
    value: float | None
    numerator: float | None
    denominator: float | None
    status: str
    score: float | None
    as_of: datetime
    published_at: datetime


@dataclass(frozen=True, slots=True)
class Claim:
    """A KPI's new current value, to be published if nothing was since ``not_since``."""

    value: CurrentValue
    not_since: datetime


class CurrentRepository:
    """The latest published value per KPI, and the claim that rate-limits publishing."""

    async def forget(self, session: AsyncSession, keys: Sequence[str]) -> list[str]:
        """Drop the current values of ``keys``; the keys this call dropped (a claim: of
        several instances retiring a KPI at once, one gets it)."""
        rows = await session.execute(
            delete(kpi_current)
            .where(kpi_current.c.kpi_key.in_(list(keys)))
            .returning(kpi_current.c.kpi_key)
        )
        return list(rows.scalars())

    async def claim_publications(
        self, session: AsyncSession, claims: Sequence[Claim]
    ) -> set[str]:
        """Store each value as its KPI's current value (always), and claim its publication
        if the status changed or nothing was published since ``not_since``: the keys
        this caller should publish. Atomic across instances."""
        if not claims:
            return set()
        if not is_postgres(session):
            return {c.value.kpi_key for c in claims if await self._claim_one(session, c)}
        keys = sorted(c.value.kpi_key for c in claims)
        await session.execute(_LOCK_CURRENT_PG, {"keys": orjson.dumps(keys).decode()})
        rows = orjson.dumps(
            [
                {
                    "kpi_key": c.value.kpi_key,
                    "value": c.value.value,
                    "numerator": c.value.numerator,
                    "denominator": c.value.denominator,
                    "status": c.value.status,
                    "score": c.value.score,
                    "as_of": c.value.as_of,
                    "published_at": c.value.published_at,
                    "not_since": c.not_since,
                }
                for c in claims
            ]
        )
        result = await session.execute(_CLAIM_CURRENT_PG, {"rows": rows.decode()})
        return set(result.scalars())

    async def _claim_one(self, session: AsyncSession, claim: Claim) -> bool:
        value, c = claim.value, kpi_current.c
        fields = {
            "value": value.value,
            "numerator": value.numerator,
            "denominator": value.denominator,
            "status": value.status,
            "score": value.score,
            "as_of": value.as_of,
        }
        due = (c.status != value.status) | (c.published_at <= claim.not_since)
        updated = await session.execute(
            update(kpi_current)
            .where(c.kpi_key == value.kpi_key)
            # SET expressions see the row as it was: the claim compares old and new.
            .values(**fields, published_at=case((due, value.published_at), else_=c.published_at))
            .returning(c.published_at)
        )
        row = updated.first()
        if row is not None:
            published_at: datetime = row[0]
            claimed = utc(published_at) == value.published_at
        else:
            inserted = await session.execute(
                insert_for(session, kpi_current)
                .values(kpi_key=value.kpi_key, published_at=value.published_at, **fields)
                .on_conflict_do_nothing(index_elements=["kpi_key"])
            )
            claimed = bool(getattr(inserted, "rowcount", 0))
        if claimed:
            await session.execute(
                kpi_history.insert().values(
                    kpi_key=value.kpi_key,
                    at=value.as_of,
                    value=value.value,
                    status=value.status,
                    score=value.score,
                )
            )
        return claimed

    async def all(self, session: AsyncSession) -> dict[str, CurrentValue]:
        rows = await session.execute(select(kpi_current))
        return {
            r["kpi_key"]: CurrentValue(
                kpi_key=r["kpi_key"],
                value=r["value"],
                numerator=r["numerator"],
                denominator=r["denominator"],
                status=r["status"],
                score=r["score"],
                as_of=utc(r["as_of"]),
                published_at=utc(r["published_at"]),
            )
            for r in rows.mappings()
        }

    async def recent(
        self, session: AsyncSession, kpi_key: str, since: datetime, limit: int = 500
    ) -> list[tuple[datetime, float | None, str]]:
        c = kpi_history.c
        rows = await session.execute(
            select(c.at, c.value, c.status)
            .where(c.kpi_key == kpi_key, c.at >= since)
            .order_by(c.at.desc())
            .limit(limit)
        )
        return [(utc(at), v, s) for at, v, s in reversed(rows.all())]
