"""Repository of consumer offsets kept beside a service's state (see consumer_offsets)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.bus.ports import PartitionId
from shared.db.dialect import is_postgres
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
            rows = await session.execute(
                select(
                    consumer_offsets.c.topic,
                    consumer_offsets.c.partition,
                    consumer_offsets.c.next_offset,
                ).where(
                    consumer_offsets.c.consumer == self._consumer,
                    tuple_(consumer_offsets.c.topic, consumer_offsets.c.partition).in_(
                        [(p.topic, p.partition) for p in partitions]
                    ),
                )
            )
            return {PartitionId(t, p): o for t, p, o in rows.all()}

    async def locked(
        self, session: AsyncSession, partitions: Sequence[PartitionId]
    ) -> dict[PartitionId, int]:
        """Stored offsets, row-locked until the transaction ends (Postgres).

        Two instances briefly holding the same partition during a rebalance serialise
        here, and the second one skips what the first already applied.
        """
        if not partitions:
            return {}
        query = (
            select(
                consumer_offsets.c.topic,
                consumer_offsets.c.partition,
                consumer_offsets.c.next_offset,
            )
            .where(
                consumer_offsets.c.consumer == self._consumer,
                tuple_(consumer_offsets.c.topic, consumer_offsets.c.partition).in_(
                    [(p.topic, p.partition) for p in partitions]
                ),
            )
            .order_by(consumer_offsets.c.topic, consumer_offsets.c.partition)
        )
        if is_postgres(session):
            query = query.with_for_update()
        rows = await session.execute(query)
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
