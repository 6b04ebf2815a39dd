"""How much of a KPI's window has data: a window still filling is not yet a verdict.

A KPI that is new, or whose data began inside its window, looks below its minimum until
the window is covered (a count over 7 days after one day is a seventh of its usual
value). Coverage is the share of the window since the KPI's data began, its first
bucket: 1 once the window lies wholly after it. A backfill of history moves the first
bucket back and so makes the window full.
"""

from __future__ import annotations

from datetime import datetime, timedelta


def window_coverage(window: timedelta, data_since: datetime | None, as_of: datetime) -> float:
    """The share (0 to 1) of the window ending at ``as_of`` that has data."""
    if data_since is None:
        return 0.0
    covered = (as_of - data_since) / window
    return min(1.0, max(0.0, covered))


def is_partial(coverage: float) -> bool:
    return coverage < 1.0
