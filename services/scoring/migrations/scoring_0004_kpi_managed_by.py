"""Scoring: each KPI records who manages its definition (a catalog file's path, or "api").

Rows that exist before this migration get NULL: nobody is recorded as their owner, and
the first catalog file that names one of them adopts it, so upgrading does not turn the
KPIs of the start-up catalog into conflicts.

Revision ID: scoring_0004
Revises: scoring_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "scoring_0004"
down_revision = "scoring_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("kpi_definitions", sa.Column("managed_by", sa.String(1000)))


def downgrade() -> None:
    with op.batch_alter_table("kpi_definitions") as batch:
        batch.drop_column("managed_by")
