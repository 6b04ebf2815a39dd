"""Ingest: write keys (hashes only) and webhook delivery ids for replay protection.

Revision ID: ingest_0001
Revises: 0001_foundation
"""

import sqlalchemy as sa
from alembic import op

revision = "ingest_0001"
down_revision = "0001_foundation"
branch_labels = ("ingest",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_write_keys",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_ingest_write_keys"),
        sa.UniqueConstraint("key_hash", name="uq_ingest_write_keys_key_hash"),
    )
    op.create_table(
        "ingest_webhook_deliveries",
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("delivery_id", sa.String(200), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "delivery_id", name="pk_ingest_webhook_deliveries"),
    )
    op.create_index(
        "ix_ingest_webhook_deliveries_seen_at", "ingest_webhook_deliveries", ["seen_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_ingest_webhook_deliveries_seen_at", "ingest_webhook_deliveries")
    op.drop_table("ingest_webhook_deliveries")
    op.drop_table("ingest_write_keys")
