"""Reported KPIs: values people enter once per review period, judged like computed ones.

Many of the guide's KPIs are measured by a person once a period (a survey's eNPS, staff
turnover from the payroll, revenue from the accounting system). A KPI with
``formula: reported`` takes one value per review period, entered by its owners.

- An entry names the period by its first day (a calendar date in the catalog's time
  zone): ``2026-11-01`` for November, ``2026-10-01`` for Q4, a Monday for a week. Any
  other day is refused with the period's real first day named, so a typo cannot file a
  value under a period nobody looks at. Periods that have not begun are refused too.
- The KPI's current value is the current period's value when one was entered, else the
  last ended period's: a monthly figure entered in the first days of December for
  November is "the value" all December. Older values are history, not the present: a KPI
  nobody reported for a whole period has no data (never a stale figure shown as current).
- A value is *due* once its period has ended without one; owners are reminded once per
  period (by alerts, from ``value_due_period`` on the KPI value message). Periods that
  ended before the KPI existed are never due.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Final

from services.scoring.domain.catalog import Catalog, KpiDefinition
from services.scoring.domain.periods import next_period_start, period_start

MAX_NOTE_CHARS: Final = 500
MAX_CSV_ROWS: Final = 10_000
#: No KPI reports on periods before this (and far-off dates overflow time zone arithmetic).
EARLIEST_PERIOD: Final = date(2000, 1, 1)
CSV_COLUMNS: Final = ("kpi_key", "period_start", "value", "note")


@dataclass(frozen=True, slots=True)
class Entry:
    """One reported value, validated: ``period_start`` is the period's start in UTC."""

    kpi_key: str
    period_start: datetime
    value: float
    note: str | None


class EntryError(ValueError):
    """Entries that cannot be accepted; ``problems`` names each (row, KPI and field)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def local_midnight(day: date, tz: tzinfo) -> datetime:
    return period_start(datetime(day.year, day.month, day.day, 12, tzinfo=tz), "day", tz)


def check_entry(
    catalog: Catalog,
    key: str,
    day: date,
    value: float,
    note: str | None,
    *,
    now: datetime,
    tz: tzinfo,
) -> Entry:
    """The entry for ``key``'s period starting on ``day``; raises ``EntryError``."""
    kpi = catalog.by_key.get(key)
    if kpi is None:
        raise EntryError([f"kpi_key: unknown KPI {key!r}"])
    if not kpi.formula.is_reported:
        raise EntryError(
            [f"kpi {key!r}: formula is {kpi.formula.kind}, not reported: "
             "its values come from events"]
        )
    if day < EARLIEST_PERIOD:
        raise EntryError([f"kpi {key!r}: period_start: {day} is before {EARLIEST_PERIOD}"])
    problems: list[str] = []
    start = local_midnight(day, tz)
    first = period_start(start, kpi.review_period, tz)
    if first != start:
        problems.append(
            f"period_start: {day.isoformat()} is not the first day of a {kpi.review_period} "
            f"(that {kpi.review_period} starts on {first.astimezone(tz).date().isoformat()})"
        )
    elif start > now:
        problems.append(f"period_start: the {kpi.review_period} of {day.isoformat()} has not begun")
    if not math.isfinite(value):
        problems.append("value: must be a finite number")
    if note is not None and len(note) > MAX_NOTE_CHARS:
        problems.append(f"note: longer than {MAX_NOTE_CHARS} characters")
    if problems:
        raise EntryError([f"kpi {key!r}: {p}" for p in problems])
    return Entry(key, first, float(value), note.strip() or None if note else None)


def parse_csv(text: str, catalog: Catalog, *, now: datetime, tz: tzinfo) -> list[Entry]:
    """Entries from CSV with the header ``kpi_key,period_start,value[,note]``.

    All or nothing: every problem is collected (with its line) and raised together, so a
    file is either imported whole or not at all and can be fixed and sent again.
    """
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = [cell.strip().lower() for cell in next(reader, [])]
    if header[:3] != list(CSV_COLUMNS[:3]) or header[3:] not in ([], ["note"]):
        raise EntryError(
            [f"line 1: the header must be {','.join(CSV_COLUMNS)} (note optional), "
             f"got {','.join(header) or 'nothing'}"]
        )
    entries: list[Entry] = []
    problems: list[str] = []
    seen: dict[tuple[str, datetime], int] = {}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(entries) + len(problems) >= MAX_CSV_ROWS:
            raise EntryError([f"line {line}: more than {MAX_CSV_ROWS} rows; split the file"])
        if len(row) not in (3, 4) or len(row) > len(header):
            problems.append(f"line {line}: expected {len(header)} columns, got {len(row)}")
            continue
        key, raw_day, raw_value = (cell.strip() for cell in row[:3])
        note = row[3] if len(row) == 4 else None
        try:
            day = date.fromisoformat(raw_day)
        except ValueError:
            problems.append(f"line {line}: period_start: {raw_day!r} is not a date (YYYY-MM-DD)")
            continue
        try:
            value = float(raw_value)
        except ValueError:
            problems.append(f"line {line}: value: {raw_value!r} is not a number")
            continue
        try:
            entry = check_entry(catalog, key, day, value, note, now=now, tz=tz)
        except EntryError as exc:
            problems.extend(f"line {line}: {p}" for p in exc.problems)
            continue
        earlier = seen.setdefault((entry.kpi_key, entry.period_start), line)
        if earlier != line:
            problems.append(f"line {line}: kpi {key!r}: period {raw_day} already on line {earlier}")
            continue
        entries.append(entry)
    if problems:
        raise EntryError(problems)
    if not entries:
        raise EntryError(["the file has no rows after its header"])
    return entries


def previous_period_start(kpi: KpiDefinition, now: datetime, tz: tzinfo) -> datetime:
    current = period_start(now, kpi.review_period, tz)
    return period_start(current - timedelta(seconds=1), kpi.review_period, tz)


def current_value(
    kpi: KpiDefinition, values: Mapping[datetime, float], now: datetime, tz: tzinfo
) -> tuple[float | None, datetime | None]:
    """The KPI's value as of ``now`` and the start of the period it is for (see above)."""
    current = period_start(now, kpi.review_period, tz)
    for start in (current, previous_period_start(kpi, now, tz)):
        if start in values:
            return values[start], start
    return None, None


def value_due(
    kpi: KpiDefinition,
    values: Mapping[datetime, float],
    now: datetime,
    tz: tzinfo,
    defined_since: datetime | None,
) -> datetime | None:
    """The start of the last ended period when it has no value and ended after the KPI
    was defined; else None."""
    previous = previous_period_start(kpi, now, tz)
    ended = next_period_start(previous, kpi.review_period, tz)
    if previous in values or defined_since is None or defined_since >= ended:
        return None
    return previous


def reported_series(
    kpi: KpiDefinition,
    values: Mapping[datetime, float],
    tz: tzinfo,
    first: datetime,
    last: datetime,
) -> list[tuple[datetime, float | None]]:
    """Per review period from ``first``'s to ``last``'s, the value entered (or None)."""
    series: list[tuple[datetime, float | None]] = []
    start = period_start(first, kpi.review_period, tz)
    while start <= last:
        series.append((start, values.get(start)))
        start = next_period_start(start, kpi.review_period, tz)
    return series


def recent_periods(kpi: KpiDefinition, now: datetime, tz: tzinfo, count: int) -> list[date]:
    """The first days of the current and the ``count - 1`` previous periods, newest first:
    the periods a value may be entered for on the page."""
    start = period_start(now, kpi.review_period, tz)
    days = []
    for _ in range(count):
        days.append(start.astimezone(tz).date())
        start = period_start(start - timedelta(seconds=1), kpi.review_period, tz)
    return days
