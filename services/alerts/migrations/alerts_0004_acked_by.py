"""Alerts: who acknowledged an alert.

Revision ID: alerts_acked_by
Revises: alerts_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "alerts_acked_by"
down_revision = "alerts_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("acked_by", sa.String(320), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("acked_by")
