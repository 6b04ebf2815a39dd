"""PostgreSQL's claim of a batch's event ids: one constant statement per batch."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import orjson
from sqlalchemy import DateTime, bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.repository.event_ids import EventIdRepository, SeenEvent

# Returns the events already seen (usually none) rather than the thousands just claimed:
# every row sent back costs the scorer CPU, and duplicates are the exception.
_CLAIM = text(
    "WITH ids AS (SELECT * FROM jsonb_to_recordset(CAST(CAST(:ids AS text) AS jsonb))"
    " AS i(source text, event_id text)),"
    " claimed AS ("
    " INSERT INTO seen_events (source, event_id, seen_at)"
    " SELECT source, event_id, :seen_at FROM ids"
    " ON CONFLICT (source, event_id) DO NOTHING RETURNING source, event_id)"
    " SELECT source, event_id FROM ids EXCEPT SELECT source, event_id FROM claimed"
).bindparams(bindparam("seen_at", type_=DateTime(timezone=True)))


class PostgresEventIdRepository(EventIdRepository):
    async def claim(
        self, session: AsyncSession, events: Sequence[SeenEvent], seen_at: datetime
    ) -> set[SeenEvent]:
        if not events:
            return set()
        ids = orjson.dumps([{"source": s, "event_id": e} for s, e in events]).decode()
        result = await session.execute(_CLAIM, {"ids": ids, "seen_at": seen_at})
        return set(events).difference(SeenEvent(s, e) for s, e in result)
