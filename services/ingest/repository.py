"""Every SQL statement of ingest: write keys and webhook delivery ids (replay guard)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import JSON, Column, DateTime, Index, String, Table, delete, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.engine import transaction
from shared.db.metadata import metadata
from shared.db.upsert import insert_for

write_keys = Table(
    "ingest_write_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("source", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    # Origins browsers may use the key from (a JSON list); NULL or empty allows any.
    Column("allowed_origins", JSON, nullable=True),
)

webhook_deliveries = Table(
    "ingest_webhook_deliveries",
    metadata,
    Column("source", String(32), primary_key=True),
    Column("delivery_id", String(200), primary_key=True),
    Column("seen_at", DateTime(timezone=True), nullable=False),
    Index("ix_ingest_webhook_deliveries_seen_at", "seen_at"),
)

REPLAY_HORIZON = timedelta(hours=24)
_PRUNE_EVERY = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class WriteKey:
    id: str
    source: str
    name: str
    created_at: datetime
    revoked_at: datetime | None
    key_hash: str = ""
    allowed_origins: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _key(row: object) -> WriteKey:
    return WriteKey(
        id=row.id,  # type: ignore[attr-defined]
        source=row.source,  # type: ignore[attr-defined]
        name=row.name,  # type: ignore[attr-defined]
        created_at=row.created_at,  # type: ignore[attr-defined]
        revoked_at=row.revoked_at,  # type: ignore[attr-defined]
        key_hash=row.key_hash,  # type: ignore[attr-defined]
        allowed_origins=tuple(row.allowed_origins or ()),  # type: ignore[attr-defined]
    )


class WriteKeyRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def create(
        self,
        *,
        source: str,
        name: str,
        key_hash: str,
        now: datetime,
        allowed_origins: tuple[str, ...] = (),
    ) -> WriteKey:
        record = WriteKey(str(uuid.uuid4()), source, name, now, None, key_hash, allowed_origins)
        async with transaction(self._sessions) as session:
            await session.execute(
                write_keys.insert().values(
                    id=record.id,
                    source=source,
                    name=name,
                    key_hash=key_hash,
                    created_at=now,
                    revoked_at=None,
                    allowed_origins=list(allowed_origins) or None,
                )
            )
        return record

    async def all(self) -> list[WriteKey]:
        async with self._sessions() as session:
            rows = await session.execute(select(write_keys).order_by(write_keys.c.created_at))
            return [_key(row) for row in rows]

    async def by_hash(self, key_hash: str) -> WriteKey | None:
        async with self._sessions() as session:
            rows = await session.execute(
                select(write_keys).where(write_keys.c.key_hash == key_hash)
            )
            row = rows.first()
            return _key(row) if row is not None else None

    async def revoke(self, key_id: str, *, now: datetime) -> WriteKey | None:
        """Revoke (idempotently); None when no such key exists."""
        async with transaction(self._sessions) as session:
            await session.execute(
                update(write_keys)
                .where(write_keys.c.id == key_id, write_keys.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            rows = await session.execute(select(write_keys).where(write_keys.c.id == key_id))
            row = rows.first()
            return _key(row) if row is not None else None

    async def set_origins(self, key_id: str, origins: tuple[str, ...]) -> WriteKey | None:
        """Replace the key's allowed origins (empty: any); None when no such key exists."""
        async with transaction(self._sessions) as session:
            await session.execute(
                update(write_keys)
                .where(write_keys.c.id == key_id)
                .values(allowed_origins=list(origins) or None)
            )
            rows = await session.execute(select(write_keys).where(write_keys.c.id == key_id))
            row = rows.first()
            return _key(row) if row is not None else None

    async def ping(self, timeout_s: float = 3.0) -> bool:
        """Whether the database answers now (for /readyz); bounded so probes never hang."""
        async def select_one() -> None:
            async with self._sessions() as session:
                await session.execute(text("SELECT 1"))

        try:
            await asyncio.wait_for(select_one(), timeout_s)
        except (SQLAlchemyError, OSError, TimeoutError):
            return False
        return True


class DeliveryRepository:
    """Delivery ids seen in the last 24 h, so a replayed webhook is published once."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._last_prune: datetime | None = None

    @asynccontextmanager
    async def claim(self, source: str, delivery_id: str, *, now: datetime) -> AsyncIterator[bool]:
        """Yield whether the delivery is new; the claim commits only if the block succeeds.

        The transaction stays open while the caller publishes: a failed publish rolls
        the claim back, so the provider's retry is not mistaken for a replay, and a
        concurrent duplicate waits on the row lock and then sees it as already seen.
        """
        await self._maybe_prune(now)
        async with transaction(self._sessions) as session:
            stmt = (
                insert_for(session, webhook_deliveries)
                .values(source=source, delivery_id=delivery_id[:200], seen_at=now)
                .on_conflict_do_nothing(index_elements=["source", "delivery_id"])
                .returning(webhook_deliveries.c.delivery_id)
            )
            result = await session.execute(stmt)
            yield result.first() is not None

    async def _maybe_prune(self, now: datetime) -> None:
        if self._last_prune is not None and now - self._last_prune < _PRUNE_EVERY:
            return
        self._last_prune = now
        await self.prune(older_than=now - REPLAY_HORIZON)

    async def prune(self, *, older_than: datetime) -> int:
        async with transaction(self._sessions) as session:
            result = await session.execute(
                delete(webhook_deliveries).where(webhook_deliveries.c.seen_at < older_than)
            )
            return int(getattr(result, "rowcount", 0) or 0)
