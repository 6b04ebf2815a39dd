"""Repository of consumer offsets kept beside a service's state (see consumer_offsets).

``offsets_for`` picks the implementation once, for the database the sessions open:
the portable one (SQLite, and PostgreSQL too), or PostgreSQL's constant statements.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import orjson
from sqlalchemy import select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.bus.ports import PartitionId
from shared.db.metadata import consumer_offsets
from shared.db.upsert import upsert


class OffsetRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], consumer: str) -> None:
        self._sessions = sessions
        self._consumer = consumer

    async def load(self, partitions: Sequence[PartitionId]) -> dict[PartitionId, int]:
        if not partitions:
            return {}
        async with self._sessions() as session:
            return await self._read(session, partitions)

    async def locked(
        self, session: AsyncSession, partitions: Sequence[PartitionId]
    ) -> dict[PartitionId, int]:
        """Stored offsets, locked until the transaction ends.

        Two instances briefly holding the same partition during a rebalance serialise
        here, and the second one skips what the first already applied. (On SQLite the
        writing transaction holds the whole database.)
        """
        if not partitions:
            return {}
        return await self._read(session, partitions)

    async def _read(
        self, session: AsyncSession, partitions: Sequence[PartitionId]
    ) -> dict[PartitionId, int]:
        c = consumer_offsets.c
        rows = await session.execute(
            select(c.topic, c.partition, c.next_offset)
            .where(
                c.consumer == self._consumer,
                tuple_(c.topic, c.partition).in_([(p.topic, p.partition) for p in partitions]),
            )
            .order_by(c.topic, c.partition)
        )
        return {PartitionId(t, p): o for t, p, o in rows.all()}

    async def save(self, session: AsyncSession, offsets: Mapping[PartitionId, int]) -> None:
        if not offsets:
            return
        await upsert(
            session,
            consumer_offsets,
            [
                {
                    "consumer": self._consumer,
                    "topic": p.topic,
                    "partition": p.partition,
                    "next_offset": offset,
                }
                for p, offset in sorted(offsets.items())
            ],
            key=("consumer", "topic", "partition"),
            update=("next_offset",),
        )


# Every batch's two statements are constant (partitions travel as one JSON document):
# prepared once, instead of built and compiled per batch.
_LOCK_PG = text(
    "SELECT o.topic, o.partition, o.next_offset FROM consumer_offsets AS o"
    " JOIN jsonb_to_recordset(CAST(CAST(:partitions AS text) AS jsonb))"
    " AS p(topic text, partition int) ON o.topic = p.topic AND o.partition = p.partition"
    " WHERE o.consumer = :consumer ORDER BY o.topic, o.partition FOR UPDATE OF o"
)
_SAVE_PG = text(
    "INSERT INTO consumer_offsets (consumer, topic, partition, next_offset)"
    " SELECT :consumer, p.topic, p.partition, p.next_offset"
    " FROM jsonb_to_recordset(CAST(CAST(:offsets AS text) AS jsonb))"
    " AS p(topic text, partition int, next_offset bigint) ORDER BY p.topic, p.partition"
    " ON CONFLICT (consumer, topic, partition) DO UPDATE SET next_offset = excluded.next_offset"
)


class PostgresOffsetRepository(OffsetRepository):
    async def locked(
        self, session: AsyncSession, partitions: Sequence[PartitionId]
    ) -> dict[PartitionId, int]:
        if not partitions:
            return {}
        doc = orjson.dumps([{"topic": p.topic, "partition": p.partition} for p in partitions])
        rows = await session.execute(
            _LOCK_PG, {"partitions": doc.decode(), "consumer": self._consumer}
        )
        return {PartitionId(t, p): o for t, p, o in rows.all()}

    async def save(self, session: AsyncSession, offsets: Mapping[PartitionId, int]) -> None:
        if not offsets:
            return
        doc = orjson.dumps(
            [
                {"topic": p.topic, "partition": p.partition, "next_offset": offset}
                for p, offset in offsets.items()
            ]
        )
        await session.execute(_SAVE_PG, {"offsets": doc.decode(), "consumer": self._consumer})


def offsets_for(sessions: async_sessionmaker[AsyncSession], consumer: str) -> OffsetRepository:
    """The offset repository for the database ``sessions`` open."""
    bind = sessions.kw.get("bind")
    if bind is not None and bind.dialect.name == "postgresql":
        return PostgresOffsetRepository(sessions, consumer)
    return OffsetRepository(sessions, consumer)
