"""When is a KPI in trouble, and when has it really recovered?

Direction-aware: for ``higher_is_better`` worse means below the minimum, for
``lower_is_better`` (churn, response time) worse means above it. Recovery needs the
value to be better than the minimum by a relative margin, so a KPI hovering around its
minimum does not flap between firing and resolved.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Literal

Direction = Literal["higher_is_better", "lower_is_better", "target_band"]


class Condition(StrEnum):
    BELOW_MINIMUM = "below_minimum"
    EARLY_WARNING = "early_warning"
    STALE = "stale"
    EXPIRING_SOON = "expiring_soon"
    EXPIRED = "expired"


# Expiry is a date on the calendar, not a measurement: one notice per episode, no repeats
# and no "resolved" notice when the KPI is renewed (the owner renewed it themselves).
ONE_SHOT = frozenset({Condition.EXPIRING_SOON, Condition.EXPIRED})

SEVERITY: dict[Condition, str] = {
    Condition.BELOW_MINIMUM: "critical",
    Condition.EARLY_WARNING: "warning",
    Condition.STALE: "warning",
    Condition.EXPIRING_SOON: "info",
    Condition.EXPIRED: "warning",
}


def is_worse(value: float, minimum: float, direction: Direction, *, status: str) -> bool:
    """Whether ``value`` crossed the minimum on the bad side."""
    if direction == "higher_is_better":
        return value < minimum
    if direction == "lower_is_better":
        return value > minimum
    # A target band has two edges the message does not carry; scoring decided.
    return status == "breach"


def has_recovered(
    value: float, minimum: float, direction: Direction, *, status: str, margin: float
) -> bool:
    """Better than the minimum by ``margin`` (relative to |minimum|): the hysteresis."""
    slack = abs(minimum) * margin
    if direction == "higher_is_better":
        return value >= minimum + slack
    if direction == "lower_is_better":
        return value <= minimum - slack
    return status in ("on_target", "below_target")


def expiry_condition(expires_on: date | None, today: date, warning_days: int) -> Condition | None:
    """``expired`` once the date has passed, ``expiring_soon`` within the warning window."""
    if expires_on is None:
        return None
    if today > expires_on:
        return Condition.EXPIRED
    if (expires_on - today).days <= warning_days:
        return Condition.EXPIRING_SOON
    return None


def is_stale(last_value_at: datetime | None, update_every_s: int, now: datetime) -> bool:
    """No fresh value for two update periods (one late refresh is not an incident)."""
    if last_value_at is None:
        return False
    return now - last_value_at > timedelta(seconds=2 * update_every_s)


def dedupe_key(kpi_key: str, condition: Condition, episode: str) -> str:
    """One key per episode; ``episode`` is its start time or, for expiry, the date."""
    return f"{kpi_key}:{condition.value}:{episode}"


def open_key(kpi_key: str, condition: Condition) -> str:
    """At most one open (pending/firing) alert per KPI and condition."""
    return f"{kpi_key}:{condition.value}"
