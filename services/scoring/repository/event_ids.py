"""The events already counted: the same (source, event id) within the dedupe horizon
counts once. Ids are unique per source only, so the source is part of the key: one
source's id can never make another source's event disappear."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.repository.chunks import chunks
from services.scoring.tables import seen_events
from shared.db.upsert import insert_for


class SeenEvent(NamedTuple):
    source: str
    event_id: str


class EventIdRepository:
    async def claim(
        self, session: AsyncSession, events: Sequence[SeenEvent], seen_at: datetime
    ) -> set[SeenEvent]:
        """Record ``events``; return those not seen before (the ones to count)."""
        fresh: set[SeenEvent] = set()
        c = seen_events.c
        for chunk in chunks(list(events)):
            stmt = (
                insert_for(session, seen_events)
                .values([{"source": s, "event_id": e, "seen_at": seen_at} for s, e in chunk])
                .on_conflict_do_nothing(index_elements=["source", "event_id"])
                .returning(c.source, c.event_id)
            )
            fresh.update(SeenEvent(s, e) for s, e in await session.execute(stmt))
        return fresh

    async def prune(self, session: AsyncSession, before: datetime) -> int:
        """Forget the events seen before ``before``; how many were forgotten."""
        result = await session.execute(delete(seen_events).where(seen_events.c.seen_at < before))
        return int(getattr(result, "rowcount", 0) or 0)
