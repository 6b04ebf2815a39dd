"""Request and response bodies of the alerts API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from services.alerts.repository import AlertRow, OutboxRow, SilenceRow
from shared.identity.domain import mask_target

# PostgreSQL text cannot hold NUL: refuse it (422) instead of failing the insert (500).
NO_NUL = r"^[^\x00]*$"
MAX_SILENCE_S = 366 * 86400


class AckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(default="", max_length=2000, pattern=NO_NUL)


class SilenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kpi_key: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    ends_at: AwareDatetime | None = None
    duration_s: int | None = Field(default=None, gt=0, le=MAX_SILENCE_S)
    reason: str = Field(min_length=1, max_length=2000, pattern=NO_NUL)
    created_by: str = Field(default="admin", min_length=1, max_length=200, pattern=NO_NUL)

    @model_validator(mode="after")
    def _one_end(self) -> SilenceIn:
        if (self.ends_at is None) == (self.duration_s is None):
            raise ValueError("give exactly one of ends_at (ISO 8601 with zone) or duration_s")
        return self


class AlertOut(BaseModel):
    id: int
    kpi_key: str
    condition: str
    severity: str
    state: str
    dedupe_key: str
    value: float | None
    started_at: datetime
    fired_at: datetime | None
    resolved_at: datetime | None
    acked_at: datetime | None
    ack_note: str | None
    acked_by: str | None = None
    last_notified_at: datetime | None

    @classmethod
    def of(cls, row: AlertRow) -> AlertOut:
        return cls(
            id=row.id,
            kpi_key=row.kpi_key,
            condition=row.condition.value,
            severity=row.severity,
            state=row.state.value,
            dedupe_key=row.dedupe_key,
            value=row.value,
            started_at=row.started_at,
            fired_at=row.fired_at,
            resolved_at=row.resolved_at,
            acked_at=row.acked_at,
            ack_note=row.ack_note,
            acked_by=row.acked_by,
            last_notified_at=row.last_notified_at,
        )


class SilenceOut(BaseModel):
    id: int
    kpi_key: str
    starts_at: datetime
    ends_at: datetime
    created_by: str
    reason: str

    @classmethod
    def of(cls, row: SilenceRow) -> SilenceOut:
        return cls(
            id=row.id,
            kpi_key=row.kpi_key,
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            created_by=row.created_by,
            reason=row.reason,
        )


class NotificationOut(BaseModel):
    id: int
    alert_id: int
    kpi_key: str
    channel: str
    target: str
    kind: str
    status: str
    attempts: int
    uncertain_resends: int
    last_error: str | None
    next_attempt_at: datetime
    created_at: datetime
    sent_at: datetime | None
    subject: str | None

    @classmethod
    def of(cls, row: OutboxRow, *, admin: bool = False) -> NotificationOut:
        """Webhook URLs are never shown; emails and error texts to admins only (an error
        may quote what a receiver answered)."""
        payload: dict[str, Any] = row.payload
        error = row.last_error
        if error is not None and not admin:
            error = "delivery failed (details for admins)"
        return cls(
            id=row.id,
            alert_id=row.alert_id,
            kpi_key=row.kpi_key,
            channel=row.channel,
            target=mask_target(row.target, admin=admin),
            kind=row.kind,
            status=row.status,
            attempts=row.attempts,
            uncertain_resends=row.uncertain_resends,
            last_error=error,
            next_attempt_at=row.next_attempt_at,
            created_at=row.created_at,
            sent_at=row.sent_at,
            subject=payload.get("subject"),
        )
