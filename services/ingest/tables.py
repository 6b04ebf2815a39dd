"""Ingest's tables, declared on the shared metadata (schema: migrations/)."""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, Index, String, Table

from shared.db.metadata import metadata

write_keys = Table(
    "ingest_write_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("source", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    # Origins browsers may use the key from (a JSON list); NULL or empty allows any.
    Column("allowed_origins", JSON, nullable=True),
)

#: The column's width; longer delivery ids are stored as their hash (repository).
DELIVERY_ID_WIDTH = 200

webhook_deliveries = Table(
    "ingest_webhook_deliveries",
    metadata,
    Column("source", String(32), primary_key=True),
    Column("delivery_id", String(DELIVERY_ID_WIDTH), primary_key=True),
    Column("seen_at", DateTime(timezone=True), nullable=False),
    Index("ix_ingest_webhook_deliveries_seen_at", "seen_at"),
)
