"""Scoring: catalog, change history, buckets, dedupe ids, current values, history.

Revision ID: scoring_0001
Revises: 0001_foundation
"""

import sqlalchemy as sa
from alembic import op

revision = "scoring_0001"
down_revision = "0001_foundation"
branch_labels = ("scoring",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "kpi_definitions",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("retired_at", TS),
    )
    op.create_table(
        "kpi_changes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kpi_key", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_kpi_changes_kpi_key", "kpi_changes", ["kpi_key"])
    op.create_table(
        "kpi_buckets",
        sa.Column("kpi_key", sa.String(64), nullable=False),
        sa.Column("term", sa.Integer(), nullable=False),
        sa.Column("bucket_start", TS, nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column(
            "sum_micros",
            sa.Numeric(38, 0).with_variant(sa.BigInteger(), "sqlite"),
            nullable=False,
        ),
        sa.Column("min", sa.Float()),
        sa.Column("max", sa.Float()),
        sa.Column("sketch", sa.LargeBinary()),
        sa.Column("sketch_kind", sa.String(8)),
        sa.PrimaryKeyConstraint(
            "kpi_key", "term", "bucket_start", "partition", name="pk_kpi_buckets"
        ),
    )
    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.String(128), primary_key=True),
        sa.Column("seen_at", TS, nullable=False),
    )
    op.create_index("ix_processed_events_seen_at", "processed_events", ["seen_at"])
    op.create_table(
        "kpi_current",
        sa.Column("kpi_key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Float()),
        sa.Column("numerator", sa.Float()),
        sa.Column("denominator", sa.Float()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("score", sa.Float()),
        sa.Column("as_of", TS, nullable=False),
        sa.Column("published_at", TS, nullable=False),
    )
    op.create_table(
        "kpi_history",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("kpi_key", sa.String(64), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("value", sa.Float()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("score", sa.Float()),
    )
    op.create_index("ix_kpi_history_at", "kpi_history", ["at"])
    op.create_index("ix_kpi_history_kpi_key_at", "kpi_history", ["kpi_key", "at"])


def downgrade() -> None:
    op.drop_table("kpi_history")
    op.drop_table("kpi_current")
    op.drop_table("processed_events")
    op.drop_table("kpi_buckets")
    op.drop_table("kpi_changes")
    op.drop_table("kpi_definitions")
