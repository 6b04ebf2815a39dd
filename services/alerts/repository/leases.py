"""The leased-queue statements both outboxes share (alerts' notifications, the weekly
digest): rows go pending -> sending (leased to one worker's token) -> sent or failed, or
back to pending when a lease expires with its worker."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.dialect import is_postgres


async def lease_due(
    session: AsyncSession,
    table: Table,
    *,
    now: datetime,
    limit: int,
    lease_until: datetime,
    token: str,
) -> bool:
    """Lease up to ``limit`` due pending rows of ``table`` to ``token``; whether any were."""
    c = table.c
    due = (
        select(c.id)
        .where(c.status == "pending", c.next_attempt_at <= now)
        .order_by(c.next_attempt_at, c.id)
        .limit(limit)
    )
    if is_postgres(session):
        # Concurrent workers take disjoint rows instead of queueing on each other.
        due = due.with_for_update(skip_locked=True)
    ids = list((await session.execute(due)).scalars())
    if not ids:
        return False
    await session.execute(
        update(table)
        .where(c.id.in_(ids), c.status == "pending")
        .values(status="sending", attempts=c.attempts + 1, lease_until=lease_until,
                claim_token=token)
    )
    return True


async def finish_leased(
    session: AsyncSession,
    table: Table,
    row_id: int,
    *,
    token: str,
    status: str,
    now: datetime,
    error: str | None = None,
    next_attempt_at: datetime | None = None,
) -> bool:
    """Record a leased row's outcome; False when its lease was lost meanwhile."""
    values: dict[str, Any] = {
        "status": status,
        "lease_until": None,
        "claim_token": None,
        "last_error": error,
    }
    if status == "sent":
        values["sent_at"] = now
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    c = table.c
    result = await session.execute(
        update(table)
        .where(c.id == row_id, c.status == "sending", c.claim_token == token)
        .values(**values)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]
