"""Which bucket an instant falls in, per KPI: the bucket width rule and calendar days.

Bucket width (``bucket_width``): the largest of 1s, 10s, 1m, 5m, 15m, 1h, 1d not exceeding
window/60 (so a window spans >= 60 buckets), stepped up to the next width while the
window would span more than 400 buckets. Examples: 1m→1s (60), 1h→1m (60), 1d→15m (96),
7d→1h (168), 30d→1d (30), 365d→1d (365). Sub-day buckets are aligned on the Unix epoch
(UTC); 1d buckets start at local midnight in the configured time zone (23 or 25 hours
long on DST change days), so they line up with calendar review periods.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Final

from services.scoring.domain.catalog import KpiDefinition

DAY_S: Final = 86_400
WIDTHS_S: Final[tuple[int, ...]] = (1, 10, 60, 300, 900, 3600, DAY_S)
MIN_BUCKETS_PER_WINDOW: Final = 60
MAX_BUCKETS_PER_WINDOW: Final = 400


def bucket_width(kpi: KpiDefinition) -> timedelta:
    """The bucket width for ``kpi``'s window (rule in the module docstring)."""
    return timedelta(seconds=width_s(kpi.window))


def width_s(window: timedelta) -> int:
    window_s = window.total_seconds()
    index = 0
    for i, width in enumerate(WIDTHS_S):
        if width * MIN_BUCKETS_PER_WINDOW <= window_s:
            index = i
    while index < len(WIDTHS_S) - 1 and window_s / WIDTHS_S[index] > MAX_BUCKETS_PER_WINDOW:
        index += 1
    return WIDTHS_S[index]


def bucket_start(kpi: KpiDefinition, ts: datetime, tz: tzinfo) -> datetime:
    """Start (UTC) of the bucket of ``kpi`` containing the aware instant ``ts``."""
    width = width_s(kpi.window)
    seconds = ts.timestamp()
    start = local_midnight(seconds, tz) if width == DAY_S else int(seconds // width) * width
    return datetime.fromtimestamp(start, UTC)


def local_midnight(seconds: float, tz: tzinfo) -> int:
    """Epoch seconds of the start of the local calendar day containing ``seconds``.

    A midnight skipped by DST resolves (fold=0) to the first instant of that day.
    """
    local = datetime.fromtimestamp(seconds, tz)
    return int(datetime(local.year, local.month, local.day, tzinfo=tz).timestamp())
