"""Write keys: only their hashes are stored; a revoked key keeps its row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.ingest.tables import write_keys


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


def _key(row: Any) -> WriteKey:
    return WriteKey(
        id=row.id,
        source=row.source,
        name=row.name,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        key_hash=row.key_hash,
        allowed_origins=tuple(row.allowed_origins or ()),
    )


class WriteKeyRepository:
    async def add(self, session: AsyncSession, record: WriteKey) -> None:
        await session.execute(
            write_keys.insert().values(
                id=record.id,
                source=record.source,
                name=record.name,
                key_hash=record.key_hash,
                created_at=record.created_at,
                revoked_at=record.revoked_at,
                allowed_origins=list(record.allowed_origins) or None,
            )
        )

    async def all(self, session: AsyncSession) -> list[WriteKey]:
        rows = await session.execute(select(write_keys).order_by(write_keys.c.created_at))
        return [_key(row) for row in rows]

    async def by_hash(self, session: AsyncSession, key_hash: str) -> WriteKey | None:
        rows = await session.execute(select(write_keys).where(write_keys.c.key_hash == key_hash))
        row = rows.first()
        return _key(row) if row is not None else None

    async def revoke(self, session: AsyncSession, key_id: str, *, now: datetime) -> None:
        """Idempotent: an already revoked key keeps its first revocation time."""
        await session.execute(
            update(write_keys)
            .where(write_keys.c.id == key_id, write_keys.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    async def set_origins(
        self, session: AsyncSession, key_id: str, origins: tuple[str, ...]
    ) -> None:
        """Replace the key's allowed origins (empty: any)."""
        await session.execute(
            update(write_keys)
            .where(write_keys.c.id == key_id)
            .values(allowed_origins=list(origins) or None)
        )

    async def by_id(self, session: AsyncSession, key_id: str) -> WriteKey | None:
        rows = await session.execute(select(write_keys).where(write_keys.c.id == key_id))
        row = rows.first()
        return _key(row) if row is not None else None

    async def ping(self, session: AsyncSession) -> None:
        """One round trip to the database holding the keys (readiness)."""
        await session.execute(text("SELECT 1"))
