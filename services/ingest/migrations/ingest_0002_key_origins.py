"""Ingest: the origins a write key may be used from in a browser (NULL allows any).

Revision ID: ingest_0002_key_origins
Revises: ingest_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "ingest_0002_key_origins"
down_revision = "ingest_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch_alter_table: SQLite (the dev mode's database) cannot alter tables in place.
    with op.batch_alter_table("ingest_write_keys") as table:
        table.add_column(sa.Column("allowed_origins", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ingest_write_keys") as table:
        table.drop_column("allowed_origins")
