"""Everything a notification says about an alert, gathered before rendering."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from services.alerts.domain.conditions import Condition


@dataclass(frozen=True, slots=True)
class TrendPoint:
    as_of: datetime
    value: float | None


@dataclass(frozen=True, slots=True)
class AlertFacts:
    alert_id: int
    dedupe_key: str
    kpi_key: str
    kpi_name: str
    condition: Condition
    severity: str
    # "firing", "resolved" or "repeat" (a firing alert nobody acknowledged yet).
    kind: str
    value: float | None
    minimum: float
    target: float
    direction: str
    started_at: datetime
    ended_at: datetime | None
    scorecard_url: str
    owners: tuple[str, ...] = ()
    trend: tuple[TrendPoint, ...] = ()
    expires_on: date | None = None
    last_value_at: datetime | None = None
    leading_in_breach: tuple[str, ...] = field(default=())

    @property
    def status(self) -> str:
        return "resolved" if self.kind == "resolved" else "firing"
