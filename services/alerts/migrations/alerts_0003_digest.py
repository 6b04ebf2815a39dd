"""Alerts: the weekly digest's outbox and snapshots; department, unit and score per KPI.

Revision ID: alerts_0003
Revises: alerts_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "alerts_0003"
down_revision = "alerts_0002"
branch_labels = None
depends_on = None

# Frozen copies of the column types: a migration must not change when tables.py does.
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("kpi_latest") as batch:
        batch.add_column(sa.Column("department", sa.Text(), nullable=True))
        batch.add_column(sa.Column("unit", sa.Text(), nullable=True))
        batch.add_column(sa.Column("score", sa.Float(), nullable=True))
    op.create_table(
        "digest_outbox",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("scope_id", sa.String(320), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("target", sa.String(1000), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _TS, nullable=False),
        sa.Column("lease_until", _TS, nullable=True),
        sa.Column("claim_token", sa.String(64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("sent_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_digest_outbox"),
        sa.UniqueConstraint(
            "period_start",
            "scope",
            "scope_id",
            "channel",
            "target",
            name="uq_digest_outbox_period_start",
        ),
    )
    op.create_index(
        "ix_digest_outbox_status_next_attempt_at", "digest_outbox", ["status", "next_attempt_at"]
    )
    op.create_table(
        "digest_snapshots",
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("kpi_key", sa.String(200), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("period_start", "kpi_key", name="pk_digest_snapshots"),
    )


def downgrade() -> None:
    op.drop_table("digest_snapshots")
    op.drop_index("ix_digest_outbox_status_next_attempt_at", table_name="digest_outbox")
    op.drop_table("digest_outbox")
    with op.batch_alter_table("kpi_latest") as batch:
        batch.drop_column("score")
        batch.drop_column("unit")
        batch.drop_column("department")
