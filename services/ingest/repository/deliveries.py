"""Webhook deliveries seen recently, so a replayed delivery is published once."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from services.ingest.tables import DELIVERY_ID_WIDTH, webhook_deliveries
from shared.db.upsert import insert_for


def stored_delivery_id(delivery_id: str) -> str:
    """The id as stored: itself when it fits the column, else its SHA-256.

    Cutting a long id to the column's width would make two ids with the same prefix
    one delivery, and the second would be dropped as a replay; a hash keeps them apart.
    """
    if len(delivery_id) <= DELIVERY_ID_WIDTH:
        return delivery_id
    return "sha256:" + hashlib.sha256(delivery_id.encode()).hexdigest()


class DeliveryRepository:
    async def claim(
        self, session: AsyncSession, source: str, delivery_id: str, *, now: datetime
    ) -> bool:
        """Record the delivery; whether it is new (a concurrent claimer waits on the row)."""
        stmt = (
            insert_for(session, webhook_deliveries)
            .values(source=source, delivery_id=stored_delivery_id(delivery_id), seen_at=now)
            .on_conflict_do_nothing(index_elements=["source", "delivery_id"])
            .returning(webhook_deliveries.c.delivery_id)
        )
        result = await session.execute(stmt)
        return result.first() is not None

    async def prune(self, session: AsyncSession, *, older_than: datetime) -> int:
        result = await session.execute(
            delete(webhook_deliveries).where(webhook_deliveries.c.seen_at < older_than)
        )
        return int(getattr(result, "rowcount", 0) or 0)
