"""When is a KPI in trouble, and when has it really recovered?

Whether a value breaches is decided once, by scoring, with the thresholds and direction
in force, and carried on the KPI value message as its status. Recovery is alerts' own
question: the value must be better than the minimum by a relative margin
(direction-aware: for ``lower_is_better``, such as churn, better means below), so a KPI
hovering around its minimum does not flap between firing and resolved.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum

from shared.contracts.kpi_values import KpiStatus
from shared.contracts.recovery import has_recovered

__all__ = [
    "ONE_SHOT",
    "SEVERITY",
    "Condition",
    "dedupe_key",
    "expiry_condition",
    "has_recovered",
    "is_stale",
    "is_worse",
    "open_key",
]


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


def is_worse(status: KpiStatus) -> bool:
    """Whether the KPI is below its minimum: the breach scoring decided."""
    return status == "breach"


def expiry_condition(expires_on: date | None, today: date, warning_days: int) -> Condition | None:
    """``expired`` once the date has passed, ``expiring_soon`` within the warning window."""
    if expires_on is None:
        return None
    if today > expires_on:
        return Condition.EXPIRED
    if (expires_on - today).days <= warning_days:
        return Condition.EXPIRING_SOON
    return None


def is_stale(fresh_since: datetime | None, update_every_s: int, now: datetime) -> bool:
    """No fresh value for two update periods (one late refresh is not an incident).

    ``fresh_since`` is the last fresh value's time or, for a KPI that never had one,
    when the KPI was first heard of: a KPI whose data never came goes stale too.
    """
    if fresh_since is None:
        return False
    return now - fresh_since > timedelta(seconds=2 * update_every_s)


def dedupe_key(kpi_key: str, condition: Condition, episode: str) -> str:
    """One key per episode; ``episode`` is its start time or, for expiry, the date."""
    return f"{kpi_key}:{condition.value}:{episode}"


def open_key(kpi_key: str, condition: Condition) -> str:
    """At most one open (pending/firing) alert per KPI and condition."""
    return f"{kpi_key}:{condition.value}"
