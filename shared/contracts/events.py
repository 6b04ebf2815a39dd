"""The canonical event envelope every source is normalised into (schema v1)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

EVENT_SCHEMA_VERSION: Final = 1

Source = Literal["web", "crm", "email", "support"]
SOURCES: Final[tuple[str, ...]] = ("web", "crm", "email", "support")

EventType = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$", strip_whitespace=True)
]
# No NUL: PostgreSQL text refuses it, and scoring stores event ids to deduplicate them.
EventId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00]+$")]


class EventEnvelope(BaseModel):
    """One business event. ``event_id`` is the idempotency key across retries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    event_id: EventId
    source: Source
    type: EventType
    occurred_at: AwareDatetime
    received_at: AwareDatetime
    subject_id: Annotated[str, StringConstraints(max_length=256)] | None = None
    value: float | None = Field(default=None, allow_inf_nan=False)
    properties: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> EventEnvelope:
        return cls.model_validate_json(raw)


def ms(when: datetime) -> int:
    """Milliseconds since the epoch, the unit Kafka timestamps use."""
    return int(when.timestamp() * 1000)
