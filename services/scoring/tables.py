"""Scoring's tables, declared on the shared metadata (the migrations mirror them)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Table,
)

from shared.db.metadata import metadata

# The catalog as applied: one row per KPI, the definition as JSON, retired KPIs kept.
# ``version`` grows with every write (the API's ETag); ``managed_by`` is the one owner of
# the definition: a catalog file's path, or "api". NULL marks rows written before owners
# were recorded: the first file that names such a KPI adopts it.
kpi_definitions = Table(
    "kpi_definitions",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("definition", JSON, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("retired_at", DateTime(timezone=True)),
    Column("managed_by", String(1000)),
)

# Every catalog change: what changed, when, and by whom (key name or "cli").
kpi_changes = Table(
    "kpi_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kpi_key", String(64), nullable=False, index=True),
    Column("action", String(16), nullable=False),
    Column("changes", JSON, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

# Additive partial aggregates per KPI term, bucket and partition. A fold writes its
# batch's buckets under the lowest Kafka partition of the batch, whose stored offset it
# holds locked until it commits: one writer at a time per row, so instances never merge
# into the same stored sketch at once. Readers add up every partition's rows.
kpi_buckets = Table(
    "kpi_buckets",
    metadata,
    Column("kpi_key", String(64), primary_key=True),
    Column("term", Integer, primary_key=True),
    Column("bucket_start", DateTime(timezone=True), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("count", BigInteger, nullable=False),
    # Sums are kept in integer micro-units: exact under any order of merges. SQLite's
    # driver would round a NUMERIC through float, so there it is a 64-bit integer
    # (exact up to 9.2e12 units, plenty for the embedded mode).
    Column("sum_micros", Numeric(38, 0).with_variant(BigInteger, "sqlite"), nullable=False),
    Column("min", Float),
    Column("max", Float),
    Column("sketch", LargeBinary),
    Column("sketch_kind", String(8)),
)

# Events counted recently: the same (source, event id) within the dedupe horizon counts
# once. Ids are unique per source, so the source is part of the key.
seen_events = Table(
    "seen_events",
    metadata,
    Column("source", String(16), primary_key=True),
    Column("event_id", String(128), primary_key=True),
    Column("seen_at", DateTime(timezone=True), nullable=False, index=True),
)

# The latest evaluated value per KPI (read API, and the claim that rate-limits publishing).
kpi_current = Table(
    "kpi_current",
    metadata,
    Column("kpi_key", String(64), primary_key=True),
    Column("value", Float),
    Column("numerator", Float),
    Column("denominator", Float),
    Column("status", String(16), nullable=False),
    Column("score", Float),
    Column("as_of", DateTime(timezone=True), nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=False),
)

# Published values over time (sparklines; the exact history is recomputed from buckets).
kpi_history = Table(
    "kpi_history",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("kpi_key", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("value", Float),
    Column("status", String(16), nullable=False),
    Column("score", Float),
)
