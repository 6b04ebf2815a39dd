"""When a KPI has recovered from a breach: one definition for both services.

Alerts resolves a below-minimum alert only once the value is better than the minimum by
a relative margin (the hysteresis that keeps a KPI hovering at its minimum from
flapping). Scoring publishes a value at once when it crosses that level, as it does when
the status changes; otherwise the alert would stay open until the next periodic
publication, up to one update period after the value recovered.
"""

from __future__ import annotations

from shared.contracts.kpi_values import Direction


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

