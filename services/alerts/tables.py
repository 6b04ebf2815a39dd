"""The alerts service's tables, declared on the shared metadata (schema: migrations/)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from shared.db.metadata import metadata

# SQLite only auto-increments an INTEGER PRIMARY KEY; Postgres gets a 64-bit id.
Id = BigInteger().with_variant(Integer(), "sqlite")
Ts = DateTime(timezone=True)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kpi_key", String(200), nullable=False),
    Column("condition", String(32), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("dedupe_key", String(400), nullable=False, unique=True),
    # "<kpi>:<condition>" while pending/firing, NULL once resolved: NULLs never collide,
    # so the unique constraint allows one open alert per KPI and condition on both dialects.
    Column("open_key", String(300), nullable=True, unique=True),
    Column("value", Float, nullable=True),
    Column("started_at", Ts, nullable=False),
    Column("fired_at", Ts, nullable=True),
    Column("resolved_at", Ts, nullable=True),
    Column("acked_at", Ts, nullable=True),
    Column("ack_note", Text, nullable=True),
    # Who acknowledged: the user's email, or "admin-token" for automation.
    Column("acked_by", String(320), nullable=True),
    Column("last_notified_at", Ts, nullable=True),
    Index("ix_alerts_state", "state"),
    Index("ix_alerts_kpi_key", "kpi_key"),
)

alert_transitions = Table(
    "alert_transitions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("alert_id", Id, ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False),
    Column("from_state", String(16), nullable=True),
    Column("to_state", String(16), nullable=False),
    Column("value", Float, nullable=True),
    Column("at", Ts, nullable=False),
    Index("ix_alert_transitions_alert_id", "alert_id"),
)

kpi_observations = Table(
    "kpi_observations",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kpi_key", String(200), nullable=False),
    Column("value", Float, nullable=True),
    Column("status", String(16), nullable=False),
    Column("as_of", Ts, nullable=False),
    Column("received_at", Ts, nullable=False),
    Index("ix_kpi_observations_kpi_as_of", "kpi_key", "as_of"),
)

# The latest catalog facts per KPI, as carried by its newest value message: what the
# scheduler needs for expiry, staleness and repeats without any event arriving.
kpi_latest = Table(
    "kpi_latest",
    metadata,
    Column("kpi_key", String(200), primary_key=True),
    Column("name", String(300), nullable=False),
    Column("value", Float, nullable=True),
    Column("status", String(16), nullable=False),
    Column("minimum", Float, nullable=False),
    Column("target", Float, nullable=False),
    Column("direction", String(32), nullable=False),
    Column("owners", JSON, nullable=False),
    Column("expires_on", Date, nullable=True),
    Column("update_every_s", Integer, nullable=False),
    Column("leading_in_breach", JSON, nullable=False),
    Column("as_of", Ts, nullable=False),
    Column("last_seen_at", Ts, nullable=False),
    Column("last_value_at", Ts, nullable=True),
    Column("department", Text, nullable=True),
    Column("unit", Text, nullable=True),
    Column("score", Float, nullable=True),
    # When alerts first heard of the KPI: staleness counts from here until a value comes.
    Column("first_seen_at", Ts, nullable=True),
)

silences = Table(
    "silences",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kpi_key", String(200), nullable=False),
    Column("starts_at", Ts, nullable=False),
    Column("ends_at", Ts, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Index("ix_silences_kpi_key", "kpi_key"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("alert_id", Id, ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("target", String(1000), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("payload", JSON, nullable=False),
    # pending → sending → sent | failed; suppressed when a silence covered it;
    # undeliverable when nobody could receive it (last_error says why).
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Ts, nullable=False),
    Column("lease_until", Ts, nullable=True),
    Column("claim_token", String(64), nullable=True),
    Column("uncertain_resends", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    Column("created_at", Ts, nullable=False),
    Column("sent_at", Ts, nullable=True),
    Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
    Index("ix_outbox_alert_id", "alert_id"),
)

# The weekly digest: one row per period, scope (a department or an owner) and route, unique,
# so that instances and restarts never send a period twice; delivered like the outbox.
digest_outbox = Table(
    "digest_outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("period_start", Date, nullable=False),
    Column("scope", String(16), nullable=False),
    Column("scope_id", String(320), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("target", String(1000), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Ts, nullable=False),
    Column("lease_until", Ts, nullable=True),
    Column("claim_token", String(64), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", Ts, nullable=False),
    Column("sent_at", Ts, nullable=True),
    UniqueConstraint("period_start", "scope", "scope_id", "channel", "target"),
    Index("ix_digest_outbox_status_next_attempt_at", "status", "next_attempt_at"),
)

# Each KPI's value when a period's digest was built: next week's "what moved most".
digest_snapshots = Table(
    "digest_snapshots",
    metadata,
    Column("period_start", Date, nullable=False),
    Column("kpi_key", String(200), nullable=False),
    Column("value", Float, nullable=True),
    PrimaryKeyConstraint("period_start", "kpi_key"),
)
