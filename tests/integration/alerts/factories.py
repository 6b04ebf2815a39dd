"""Plain factory functions for the alerts tests."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from shared.contracts.kpi_values import Direction, KpiStatus, KpiValueMessage, Owner


class Clock:
    """Wall-clock time plus an offset the test can move forward (repeats, expiry)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def status_of(value: float | None, minimum: float, target: float, direction: str) -> KpiStatus:
    if value is None:
        return "no_data"
    if direction == "lower_is_better":
        return "breach" if value > minimum else "on_target" if value <= target else "below_target"
    return "breach" if value < minimum else "on_target" if value >= target else "below_target"


def kpi_value(
    kpi_key: str,
    value: float | None,
    *,
    owners: list[Owner] | None = None,
    minimum: float = 0.10,
    target: float = 0.18,
    direction: Direction = "higher_is_better",
    expires_on: date | None = None,
    as_of: datetime | None = None,
    update_every_s: int = 86_400,
    leading_in_breach: list[str] | None = None,
) -> KpiValueMessage:
    now = datetime.now(UTC)
    return KpiValueMessage(
        kpi_key=kpi_key,
        name=f"KPI {kpi_key}",
        value=value,
        window_s=30 * 86_400,
        as_of=as_of or now,
        computed_at=now,
        status=status_of(value, minimum, target, direction),
        score=None,
        minimum=minimum,
        target=target,
        direction=direction,
        owners=owners or [],
        expires_on=expires_on,
        update_every_s=update_every_s,
        leading_indicators_in_breach=leading_in_breach or [],
    )


def series(kpi_key: str, values: list[float], **kwargs: object) -> list[KpiValueMessage]:
    """Messages one second apart in event time, in order."""
    start = datetime.now(UTC) - timedelta(seconds=len(values))
    return [
        kpi_value(kpi_key, v, as_of=start + timedelta(seconds=i), **kwargs)  # type: ignore[arg-type]
        for i, v in enumerate(values)
    ]
