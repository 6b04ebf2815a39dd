"""Ingest's units of work: each opens one transaction around the repositories' SQL.

The routes, the key cache, the CLI and dev mode use these; the repositories beneath
them never commit.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ingest.repository import DeliveryRepository, WriteKey, WriteKeyRepository
from shared.db.engine import transaction

REPLAY_HORIZON = timedelta(hours=24)
_PRUNE_EVERY = timedelta(hours=1)


class WriteKeyStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._repository = WriteKeyRepository()

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
            await self._repository.add(session, record)
        return record

    async def all(self) -> list[WriteKey]:
        async with self._sessions() as session:
            return await self._repository.all(session)

    async def by_hash(self, key_hash: str) -> WriteKey | None:
        async with self._sessions() as session:
            return await self._repository.by_hash(session, key_hash)

    async def revoke(self, key_id: str, *, now: datetime) -> WriteKey | None:
        """Revoke (idempotently); None when no such key exists."""
        async with transaction(self._sessions) as session:
            await self._repository.revoke(session, key_id, now=now)
            return await self._repository.by_id(session, key_id)

    async def set_origins(self, key_id: str, origins: tuple[str, ...]) -> WriteKey | None:
        """Replace the key's allowed origins (empty: any); None when no such key exists."""
        async with transaction(self._sessions) as session:
            await self._repository.set_origins(session, key_id, origins)
            return await self._repository.by_id(session, key_id)

    async def ping(self, timeout_s: float = 3.0) -> bool:
        """Whether the database answers now (for /readyz); bounded so probes never hang."""

        async def select_one() -> None:
            async with self._sessions() as session:
                await self._repository.ping(session)

        try:
            await asyncio.wait_for(select_one(), timeout_s)
        except (SQLAlchemyError, OSError, TimeoutError):
            return False
        return True


class DeliveryLedger:
    """Delivery ids seen in the last 24 h, so a replayed webhook is published once."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._repository = DeliveryRepository()
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
            yield await self._repository.claim(session, source, delivery_id, now=now)

    async def _maybe_prune(self, now: datetime) -> None:
        if self._last_prune is not None and now - self._last_prune < _PRUNE_EVERY:
            return
        self._last_prune = now
        await self.prune(older_than=now - REPLAY_HORIZON)

    async def prune(self, *, older_than: datetime) -> int:
        async with transaction(self._sessions) as session:
            return await self._repository.prune(session, older_than=older_than)
