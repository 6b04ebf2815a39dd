"""Alerts: when each KPI was first heard of, so one that never receives data goes stale.

A KPI's staleness counted from its last fresh value; a KPI that never had one was never
stale. ``first_seen_at`` is when alerts first received a value message for the KPI
(scoring announces a new KPI at once, with status ``no_data``). Rows that exist already
get their ``last_seen_at``: watched from the upgrade on.

Revision ID: alerts_0002
Revises: alerts_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "alerts_0002"
down_revision = "alerts_0001"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("kpi_latest", sa.Column("first_seen_at", _TS, nullable=True))
    op.execute("UPDATE kpi_latest SET first_seen_at = last_seen_at")


def downgrade() -> None:
    with op.batch_alter_table("kpi_latest") as batch:
        batch.drop_column("first_seen_at")
