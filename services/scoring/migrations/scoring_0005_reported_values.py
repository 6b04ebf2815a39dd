"""Scoring: values entered for reported KPIs, and the history of their corrections.

Revision ID: scoring_0005_reported
Revises: scoring_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "scoring_0005_reported"
down_revision = "scoring_0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "reported_values",
        sa.Column("kpi_key", sa.String(64), primary_key=True),
        sa.Column("period_start", TS, primary_key=True),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("note", sa.String(500)),
        sa.Column("entered_by", sa.String(200), nullable=False),
        sa.Column("entered_at", TS, nullable=False),
    )
    op.create_table(
        "reported_value_changes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("kpi_key", sa.String(64), nullable=False),
        sa.Column("period_start", TS, nullable=False),
        sa.Column("old_value", sa.Float()),
        sa.Column("new_value", sa.Float(), nullable=False),
        sa.Column("old_note", sa.String(500)),
        sa.Column("new_note", sa.String(500)),
        sa.Column("changed_by", sa.String(200), nullable=False),
        sa.Column("changed_at", TS, nullable=False),
    )
    op.create_index(
        "ix_reported_value_changes_kpi_key", "reported_value_changes", ["kpi_key"]
    )


def downgrade() -> None:
    op.drop_index("ix_reported_value_changes_kpi_key", "reported_value_changes")
    op.drop_table("reported_value_changes")
    op.drop_table("reported_values")
