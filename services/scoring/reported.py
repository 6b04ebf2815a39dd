"""Entering values of reported KPIs (API, CSV upload, page, CLI) and reading them back.

Validation is the domain's (``domain/reported.py``); this stores what passed in one
transaction, with the history of what each entry replaced, and tells the evaluator which
KPIs to look at again, so an entered value is scored and published like a computed one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scoring.domain.catalog import Catalog
from services.scoring.domain.reported import (
    Entry,
    EntryError,
    check_entry,
    parse_csv,
    recent_periods,
)
from services.scoring.repository import ReportedRepository, Written
from shared.db.engine import transaction

Clock = Callable[[], datetime]
#: How far back the entries of a KPI are listed (the page's form and ``GET .../values``).
LISTED_SPAN = timedelta(days=3 * 366)
#: The periods the page offers for entry: the current one and the five before it.
OFFERED_PERIODS = 6


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ReportedValues:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        repository: ReportedRepository,
        catalog: Callable[[], Catalog],
        tz: tzinfo,
        on_entered: Callable[[Iterable[str]], None] = lambda _keys: None,
        clock: Clock = _utcnow,
    ) -> None:
        self._sessions = sessions
        self._repository = repository
        self._catalog = catalog
        self._tz = tz
        self._on_entered = on_entered
        self._clock = clock

    async def enter(
        self, key: str, day: date, value: float, note: str | None, *, actor: str
    ) -> dict[str, Any]:
        """Store one period's value; raises ``EntryError`` naming what is wrong."""
        entry = check_entry(
            self._catalog(), key, day, value, note, now=self._clock(), tz=self._tz
        )
        return (await self._write([entry], actor))[0]

    async def import_csv(self, text: str, *, actor: str) -> list[dict[str, Any]]:
        """Store every row of a CSV file, or none (``EntryError`` lists each problem)."""
        entries = parse_csv(text, self._catalog(), now=self._clock(), tz=self._tz)
        return await self._write(entries, actor)

    async def listing(self, key: str) -> dict[str, Any]:
        """The KPI's entered values and the history of their entries and corrections."""
        kpi = self._catalog().by_key.get(key)
        if kpi is None:
            raise KeyError(key)
        if not kpi.formula.is_reported:
            raise EntryError([f"kpi {key!r}: formula is {kpi.formula.kind}, not reported"])
        now = self._clock()
        async with self._sessions() as session:
            entries = await self._repository.entries(session, key, now - LISTED_SPAN)
            changes = await self._repository.changes(session, key)
        return {
            "kpi": key,
            "review_period": kpi.review_period,
            "periods": [
                day.isoformat() for day in recent_periods(kpi, now, self._tz, OFFERED_PERIODS)
            ],
            "values": [{**e, **self._dates(e)} for e in entries],
            "changes": [
                {**c, "period_start": self._day(c["period_start"]), "at": c["at"].isoformat()}
                for c in changes
            ],
        }

    async def _write(self, entries: list[Entry], actor: str) -> list[dict[str, Any]]:
        if not entries:
            raise EntryError(["no values given"])
        async with transaction(self._sessions) as session:
            written = await self._repository.write(
                session, entries, actor=actor, at=self._clock()
            )
        self._on_entered({e.kpi_key for e in entries})
        return [self._describe(w) for w in written]

    def _describe(self, written: Written) -> dict[str, Any]:
        entry = written.entry
        return {
            "kpi": entry.kpi_key,
            "period_start": self._day(entry.period_start),
            "value": entry.value,
            "note": entry.note,
            "previous": written.previous,
            "corrected": written.previous is not None,
        }

    def _day(self, start: datetime) -> str:
        return start.astimezone(self._tz).date().isoformat()

    def _dates(self, entry: dict[str, Any]) -> dict[str, str]:
        return {
            "period_start": self._day(entry["period_start"]),
            "entered_at": entry["entered_at"].isoformat(),
        }


__all__ = ["EntryError", "ReportedValues"]
