"""Scoring: dedupe ids keyed by (source, event id) instead of the event id alone.

An id one source sent must never make another source's event uncounted. The ids seen
before this migration do not record their source: each is carried over under every
source, so until the dedupe horizon passes they suppress exactly what they did before
(nothing counted twice across the upgrade), and from then on only per source.

Revision ID: scoring_0003
Revises: scoring_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "scoring_0003"
down_revision = "scoring_0002"
branch_labels = None
depends_on = None

SOURCES = ("web", "crm", "email", "support")


def upgrade() -> None:
    seen = op.create_table(
        "seen_events",
        sa.Column("source", sa.String(16), primary_key=True),
        sa.Column("event_id", sa.String(128), primary_key=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_seen_events_seen_at", "seen_events", ["seen_at"])
    processed = sa.table(
        "processed_events",
        sa.column("event_id", sa.String(128)),
        sa.column("seen_at", sa.DateTime(timezone=True)),
    )
    for source in SOURCES:
        op.execute(
            seen.insert().from_select(
                ["source", "event_id", "seen_at"],
                sa.select(sa.literal(source), processed.c.event_id, processed.c.seen_at),
            )
        )
    op.drop_table("processed_events")


def downgrade() -> None:
    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.String(128), primary_key=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_processed_events_seen_at", "processed_events", ["seen_at"])
    op.execute(
        "INSERT INTO processed_events (event_id, seen_at)"
        " SELECT event_id, max(seen_at) FROM seen_events GROUP BY event_id"
    )
    op.drop_table("seen_events")
