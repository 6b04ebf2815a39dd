"""Calendar review periods and period analysis (expected versus actual, period by period).

Periods are calendar spans in a configurable IANA time zone: ``day`` (local midnight to
midnight: 23 or 25 hours on DST change days), ``week`` (starting Monday), ``month`` and
``quarter`` (Jan/Apr/Jul/Oct). Returned datetimes are aware and in UTC, like bucket
starts: subtracting two of them gives the real elapsed time, which two datetimes sharing
one ZoneInfo do not (Python subtracts their wall clocks: a Berlin DST day would be 24h).

Expected value of a period: the KPI's ``target`` is for its rolling window.
- Additive formulas (count, sum): the target is scaled to the period length and
  pro-rated by elapsed time: ``expected = target * (period_length / window) * elapsed``,
  ``elapsed`` being 1 for past periods, the elapsed fraction for the current one and 0
  for future ones (a 30d window reviewed per 30-day month therefore expects
  ``target * elapsed``; a 1d window reviewed weekly expects 7 times the daily target).
- Non-additive formulas (ratio, average, min, max, distinct, percentile):
  ``expected = target`` whatever the elapsed time.

Gap: signed so that positive means *better* than expected: ``actual - expected`` for
higher_is_better, ``expected - actual`` for lower_is_better; for target_band it is minus
the distance between the actual value and the band (0 inside). None without an actual.

Change versus the previous period: ``change = actual - previous`` and
``change_ratio = change / |previous|`` (None when either value is missing or previous is
0). The current, partial period of an additive KPI is compared with a full previous one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from services.scoring.domain.aggregates import BucketKey, TermAggregate, merge_all
from services.scoring.domain.catalog import KpiDefinition, ReviewPeriod
from services.scoring.domain.evaluate import evaluate
from services.scoring.domain.formulas import ADDITIVE_KINDS


def _local(year: int, month: int, day: int, tz: tzinfo) -> datetime:
    # fold=0 maps a midnight skipped by DST to the day's first real instant.
    return datetime(year, month, day, tzinfo=tz).astimezone(UTC)


def period_start(ts: datetime, period: ReviewPeriod, tz: tzinfo) -> datetime:
    """Start of the calendar period containing the aware instant ``ts``."""
    local = ts.astimezone(tz)
    if period == "day":
        return _local(local.year, local.month, local.day, tz)
    if period == "week":
        monday = local.date() - timedelta(days=local.weekday())
        return _local(monday.year, monday.month, monday.day, tz)
    if period == "month":
        return _local(local.year, local.month, 1, tz)
    if period == "quarter":
        return _local(local.year, 3 * ((local.month - 1) // 3) + 1, 1, tz)
    raise ValueError(f"unknown review period {period!r}")


def next_period_start(start: datetime, period: ReviewPeriod, tz: tzinfo) -> datetime:
    """Start of the period after the one beginning at ``start``."""
    local = period_start(start, period, tz).astimezone(tz)
    if period in ("day", "week"):
        following = local.date() + timedelta(days=1 if period == "day" else 7)
        return _local(following.year, following.month, following.day, tz)
    months = 1 if period == "month" else 3
    index = local.year * 12 + local.month - 1 + months
    return _local(index // 12, index % 12 + 1, 1, tz)


def period_bounds(ts: datetime, period: ReviewPeriod, tz: tzinfo) -> tuple[datetime, datetime]:
    """``[start, end)`` of the calendar period containing ``ts``."""
    start = period_start(ts, period, tz)
    return start, next_period_start(start, period, tz)


def series_span(
    now: datetime, period: ReviewPeriod, tz: tzinfo, periods: int
) -> tuple[datetime, datetime]:
    """``[start, end)`` of the ``periods`` calendar periods ending with the one of ``now``."""
    first = period_start(now, period, tz)
    for _ in range(periods - 1):
        first = period_start(first - timedelta(seconds=1), period, tz)
    return first, next_period_start(period_start(now, period, tz), period, tz)


def period_series(
    kpi: KpiDefinition,
    buckets: Mapping[BucketKey, TermAggregate],
    tz: tzinfo,
    first: datetime,
    last: datetime,
    *,
    period: ReviewPeriod | None = None,
) -> list[tuple[datetime, float | None]]:
    """The KPI's value per period, for the periods containing ``first``..``last``.

    ``period`` defaults to the KPI's review period (lead/lag asks for another one). A
    bucket belongs to the period containing its start: exact for 1d buckets (local
    midnights) and for sub-day buckets whenever the zone's offset is a multiple of them.
    """
    period = period or kpi.review_period
    terms = len(kpi.formula.sides())
    grouped: dict[datetime, list[list[TermAggregate]]] = {}
    for key, aggregate in buckets.items():
        if key.kpi_key != kpi.key or key.term >= terms:
            continue
        start = period_start(key.bucket_start, period, tz)
        grouped.setdefault(start, [[] for _ in range(terms)])[key.term].append(aggregate)
    series: list[tuple[datetime, float | None]] = []
    current = period_start(first, period, tz)
    while current <= last:
        parts = grouped.get(current)
        merged = [merge_all(p) for p in parts] if parts else [None] * terms
        series.append((current, evaluate(kpi.formula, merged).value))
        current = next_period_start(current, period, tz)
    return series


@dataclass(frozen=True, slots=True)
class PeriodRow:
    start: datetime
    end: datetime
    elapsed: float  # fraction of the period already past at ``now`` (0..1)
    actual: float | None
    expected: float
    gap: float | None  # positive = better than expected
    previous: float | None
    change: float | None
    change_ratio: float | None


def expected_value(kpi: KpiDefinition, start: datetime, end: datetime, elapsed: float) -> float:
    if kpi.formula.kind not in ADDITIVE_KINDS:
        return kpi.target
    scale = (end - start) / kpi.window
    return kpi.target * scale * elapsed


def gap(kpi: KpiDefinition, actual: float | None, expected: float) -> float | None:
    if actual is None:
        return None
    if kpi.direction == "higher_is_better":
        return actual - expected
    if kpi.direction == "lower_is_better":
        return expected - actual
    if kpi.band is None:
        return -abs(actual - expected)
    return -max(kpi.band.low - actual, actual - kpi.band.high, 0.0)


def period_analysis(
    kpi: KpiDefinition,
    series: Sequence[tuple[datetime, float | None]],
    now: datetime,
    tz: tzinfo,
) -> list[PeriodRow]:
    """Actual vs expected and vs the previous period, for each period of ``series``.

    ``series`` holds ``(period_start, actual)`` for the KPI's review period (any order).
    """
    rows: list[PeriodRow] = []
    previous: float | None = None
    for given_start, actual in sorted(series, key=lambda item: item[0]):
        start, end = period_bounds(given_start, kpi.review_period, tz)
        elapsed = min(1.0, max(0.0, (now - start) / (end - start)))
        expected = expected_value(kpi, start, end, elapsed)
        change = None if actual is None or previous is None else actual - previous
        ratio = None if change is None or not previous else change / abs(previous)
        rows.append(
            PeriodRow(
                start=start,
                end=end,
                elapsed=elapsed,
                actual=actual,
                expected=expected,
                gap=gap(kpi, actual, expected),
                previous=previous,
                change=change,
                change_ratio=ratio,
            )
        )
        previous = actual
    return rows
