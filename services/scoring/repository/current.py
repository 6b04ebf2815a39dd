"""The latest value per KPI, its published history, and the claim that rate-limits
publishing across instances."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Result, Select, Subquery, and_, case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.tables import kpi_current, kpi_history
from shared.db.dialect import utc
from shared.db.upsert import insert_for

#: A KPI's published values, oldest first: (at, value, status).
Trend = list[tuple[datetime, float | None, str]]
#: At most this many of a KPI's newest publications make its trend.
TREND_ROWS = 500


@dataclass(frozen=True, slots=True)
class CurrentValue:
    kpi_key: str
    value: float | None
    numerator: float | None
    denominator: float | None
    status: str
    score: float | None
    as_of: datetime
    published_at: datetime


@dataclass(frozen=True, slots=True)
class Claim:
    """A KPI's new current value, to be published if nothing was since ``not_since``."""

    value: CurrentValue
    not_since: datetime


class CurrentRepository:
    """The latest published value per KPI, and the claim that rate-limits publishing."""

    async def forget(self, session: AsyncSession, keys: Sequence[str]) -> list[str]:
        """Drop the current values of ``keys``; the keys this call dropped (a claim: of
        several instances retiring a KPI at once, one gets it)."""
        rows = await session.execute(
            delete(kpi_current)
            .where(kpi_current.c.kpi_key.in_(list(keys)))
            .returning(kpi_current.c.kpi_key)
        )
        return list(rows.scalars())

    async def claim_publications(
        self, session: AsyncSession, claims: Sequence[Claim]
    ) -> set[str]:
        """Store each value as its KPI's current value (always), and claim its publication
        if the status changed or nothing was published since ``not_since``: the keys
        this caller should publish. Atomic across instances."""
        return {c.value.kpi_key for c in claims if await self._claim_one(session, c)}

    async def _claim_one(self, session: AsyncSession, claim: Claim) -> bool:
        value, c = claim.value, kpi_current.c
        fields = {
            "value": value.value,
            "numerator": value.numerator,
            "denominator": value.denominator,
            "status": value.status,
            "score": value.score,
            "as_of": value.as_of,
        }
        due = (c.status != value.status) | (c.published_at <= claim.not_since)
        updated = await session.execute(
            update(kpi_current)
            .where(c.kpi_key == value.kpi_key)
            # SET expressions see the row as it was: the claim compares old and new.
            .values(**fields, published_at=case((due, value.published_at), else_=c.published_at))
            .returning(c.published_at)
        )
        row = updated.first()
        if row is not None:
            published_at: datetime = row[0]
            claimed = utc(published_at) == value.published_at
        else:
            inserted = await session.execute(
                insert_for(session, kpi_current)
                .values(kpi_key=value.kpi_key, published_at=value.published_at, **fields)
                .on_conflict_do_nothing(index_elements=["kpi_key"])
            )
            claimed = bool(getattr(inserted, "rowcount", 0))
        if claimed:
            await session.execute(
                kpi_history.insert().values(
                    kpi_key=value.kpi_key,
                    at=value.as_of,
                    value=value.value,
                    status=value.status,
                    score=value.score,
                )
            )
        return claimed

    async def all(self, session: AsyncSession) -> dict[str, CurrentValue]:
        return _values(await session.execute(select(kpi_current)))

    async def of(self, session: AsyncSession, keys: Collection[str]) -> dict[str, CurrentValue]:
        """The current values of ``keys`` (those that have one)."""
        if not keys:
            return {}
        rows = await session.execute(
            select(kpi_current).where(kpi_current.c.kpi_key.in_(sorted(keys)))
        )
        return _values(rows)

    async def trends(
        self,
        session: AsyncSession,
        since: Mapping[str, datetime],
        *,
        points: int,
        limit: int = TREND_ROWS,
    ) -> dict[str, Trend]:
        """Per KPI, its newest ``limit`` publications from ``since[key]`` on, oldest
        first, thinned to every ``len // points``-th (about ``points`` to ``2 * points``
        of them): one statement for every KPI."""
        if not since:
            return {}
        c = kpi_history.c
        by_start: dict[datetime, list[str]] = defaultdict(list)
        for key, start in since.items():
            by_start[start].append(key)
        # KPIs share a few window lengths, so one condition per distinct start.
        wanted = or_(
            *(and_(c.kpi_key.in_(sorted(keys)), c.at >= start) for start, keys in by_start.items())
        )
        newest = (
            select(
                c.kpi_key,
                c.at,
                c.value,
                c.status,
                func.row_number()
                .over(partition_by=c.kpi_key, order_by=c.at.desc())
                .label("rank"),
                func.count().over(partition_by=c.kpi_key).label("found"),
            )
            .where(wanted)
            .subquery()
        )
        return thinned(await session.execute(thin(newest, points=points, limit=limit)))

    async def recent(
        self, session: AsyncSession, kpi_key: str, since: datetime, limit: int = TREND_ROWS
    ) -> list[tuple[datetime, float | None, str]]:
        c = kpi_history.c
        rows = await session.execute(
            select(c.at, c.value, c.status)
            .where(c.kpi_key == kpi_key, c.at >= since)
            .order_by(c.at.desc())
            .limit(limit)
        )
        return [(utc(at), v, s) for at, v, s in reversed(rows.all())]


def thin(newest: Subquery, *, points: int, limit: int) -> Select[Any]:
    """Of ``newest`` (kpi_key, at, value, status, rank from the newest, rows found per
    KPI), the ``limit`` newest rows per KPI, every ``step``-th counted from the oldest
    kept, oldest first."""
    n = newest.c
    kept = case((n.found > limit, limit), else_=n.found)
    step = case((kept // points > 1, kept // points), else_=1)
    return (
        select(n.kpi_key, n.at, n.value, n.status)
        .where(n.rank <= limit, (kept - n.rank) % step == 0)
        .order_by(n.kpi_key, n.rank.desc())
    )


def thinned(rows: Result[Any]) -> dict[str, Trend]:
    """Rows of (kpi_key, at, value, status), each KPI's oldest first, as trends."""
    trends: dict[str, Trend] = defaultdict(list)
    found = cast(Sequence[tuple[str, datetime, float | None, str]], rows.all())
    for key, at, value, status in found:
        trends[key].append((utc(at), value, status))
    return dict(trends)


def _values(rows: Result[Any]) -> dict[str, CurrentValue]:
    return {
        r["kpi_key"]: CurrentValue(
            kpi_key=r["kpi_key"],
            value=r["value"],
            numerator=r["numerator"],
            denominator=r["denominator"],
            status=r["status"],
            score=r["score"],
            as_of=utc(r["as_of"]),
            published_at=utc(r["published_at"]),
        )
        for r in rows.mappings()
    }
