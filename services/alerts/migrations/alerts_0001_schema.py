"""Alerts: alert lifecycle, transitions, observations, latest KPI facts, silences, outbox.

Revision ID: alerts_0001
Revises: 0001_foundation
"""

import sqlalchemy as sa
from alembic import op

revision = "alerts_0001"
down_revision = "0001_foundation"
branch_labels = ("alerts",)
depends_on = None

# Frozen copies of the column types: a migration must not change when tables.py does.
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("kpi_key", sa.String(200), nullable=False),
        sa.Column("condition", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("dedupe_key", sa.String(400), nullable=False),
        sa.Column("open_key", sa.String(300), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("fired_at", _TS, nullable=True),
        sa.Column("resolved_at", _TS, nullable=True),
        sa.Column("acked_at", _TS, nullable=True),
        sa.Column("ack_note", sa.Text(), nullable=True),
        sa.Column("last_notified_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
        sa.UniqueConstraint("dedupe_key", name="uq_alerts_dedupe_key"),
        sa.UniqueConstraint("open_key", name="uq_alerts_open_key"),
    )
    op.create_index("ix_alerts_state", "alerts", ["state"])
    op.create_index("ix_alerts_kpi_key", "alerts", ["kpi_key"])
    op.create_table(
        "alert_transitions",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("alert_id", _ID, nullable=False),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alert_transitions"),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name="fk_alert_transitions_alert_id_alerts",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_alert_transitions_alert_id", "alert_transitions", ["alert_id"])
    op.create_table(
        "kpi_observations",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("kpi_key", sa.String(200), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("as_of", _TS, nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_kpi_observations"),
    )
    op.create_index("ix_kpi_observations_kpi_as_of", "kpi_observations", ["kpi_key", "as_of"])
    op.create_table(
        "kpi_latest",
        sa.Column("kpi_key", sa.String(200), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("minimum", sa.Float(), nullable=False),
        sa.Column("target", sa.Float(), nullable=False),
        sa.Column("direction", sa.String(32), nullable=False),
        sa.Column("owners", sa.JSON(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("update_every_s", sa.Integer(), nullable=False),
        sa.Column("leading_in_breach", sa.JSON(), nullable=False),
        sa.Column("as_of", _TS, nullable=False),
        sa.Column("last_seen_at", _TS, nullable=False),
        sa.Column("last_value_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("kpi_key", name="pk_kpi_latest"),
    )
    op.create_table(
        "silences",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("kpi_key", sa.String(200), nullable=False),
        sa.Column("starts_at", _TS, nullable=False),
        sa.Column("ends_at", _TS, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_silences"),
    )
    op.create_index("ix_silences_kpi_key", "silences", ["kpi_key"])
    op.create_table(
        "outbox",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("alert_id", _ID, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("target", sa.String(1000), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _TS, nullable=False),
        sa.Column("lease_until", _TS, nullable=True),
        sa.Column("claim_token", sa.String(64), nullable=True),
        sa.Column("uncertain_resends", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("sent_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name="fk_outbox_alert_id_alerts", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_outbox_status_next_attempt_at", "outbox", ["status", "next_attempt_at"])
    op.create_index("ix_outbox_alert_id", "outbox", ["alert_id"])


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("silences")
    op.drop_table("kpi_latest")
    op.drop_index("ix_kpi_observations_kpi_as_of", table_name="kpi_observations")
    op.drop_table("kpi_observations")
    op.drop_table("alert_transitions")
    op.drop_index("ix_alerts_kpi_key", table_name="alerts")
    op.drop_index("ix_alerts_state", table_name="alerts")
    op.drop_table("alerts")
