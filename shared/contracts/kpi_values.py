"""The KPI value message scoring publishes and alerts consumes (schema v1)."""

from __future__ import annotations

from datetime import date
from typing import Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

KPI_VALUE_SCHEMA_VERSION: Final = 1

KpiStatus = Literal["breach", "below_target", "on_target", "no_data"]
Direction = Literal["higher_is_better", "lower_is_better", "target_band"]


class Owner(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    email: str | None = None
    webhook_url: str | None = None
    slack_webhook_url: str | None = None


class KpiValueMessage(BaseModel):
    """A KPI's value as of an event time, with the thresholds in force when computed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    kpi_key: str
    name: str
    value: float | None
    numerator: float | None = None
    denominator: float | None = None
    window_s: int = Field(gt=0)
    as_of: AwareDatetime
    computed_at: AwareDatetime
    status: KpiStatus
    score: float | None = Field(default=None, ge=0, le=100)
    minimum: float
    target: float
    direction: Direction
    owners: list[Owner] = Field(default_factory=list)
    expires_on: date | None = None
    update_every_s: int = Field(gt=0)
    leading_indicators_in_breach: list[str] = Field(default_factory=list)
    # The KPI left the catalog: the last message about it. Its fields are its last known
    # definition (value None, status no_data); consumers stop watching it. Added within
    # v1 with a default: deploy alerts before scoring (they refuse unknown fields).
    retired: bool = False
    # Share of the window that has data (the KPI or its data began inside it): below 1
    # the value is partial. Below-minimum alerts wait for a full window unless the KPI
    # sets ``require_full_window: false``. Added within v1 with defaults, as above.
    coverage: float = Field(default=1.0, ge=0, le=1)
    require_full_window: bool = True

    @property
    def partial(self) -> bool:
        return self.coverage < 1.0

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> KpiValueMessage:
        return cls.model_validate_json(raw)
