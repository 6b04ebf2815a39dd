"""Alerts and their transitions. Every state change is a compare-and-set on the state,
so two instances (or the consumer and the scheduler) never apply the same step twice."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts.domain.conditions import Condition
from services.alerts.domain.lifecycle import State
from services.alerts.tables import alert_transitions, alerts
from shared.db.dialect import utc
from shared.db.upsert import insert_for


@dataclass(frozen=True, slots=True)
class AlertRow:
    id: int
    kpi_key: str
    condition: Condition
    severity: str
    state: State
    dedupe_key: str
    value: float | None
    started_at: datetime
    fired_at: datetime | None
    resolved_at: datetime | None
    acked_at: datetime | None
    ack_note: str | None
    last_notified_at: datetime | None
    acked_by: str | None = None


@dataclass(frozen=True, slots=True)
class TransitionRow:
    from_state: str | None
    to_state: str
    value: float | None
    at: datetime


def _alert(row: Any) -> AlertRow:
    return AlertRow(
        id=row.id,
        kpi_key=row.kpi_key,
        condition=Condition(row.condition),
        severity=row.severity,
        state=State(row.state),
        dedupe_key=row.dedupe_key,
        value=row.value,
        started_at=utc(row.started_at),
        fired_at=utc(row.fired_at),
        resolved_at=utc(row.resolved_at),
        acked_at=utc(row.acked_at),
        ack_note=row.ack_note,
        last_notified_at=utc(row.last_notified_at),
        acked_by=row.acked_by,
    )


class AlertRepository:
    async def get(self, session: AsyncSession, alert_id: int) -> AlertRow | None:
        row = (await session.execute(select(alerts).where(alerts.c.id == alert_id))).first()
        return _alert(row) if row is not None else None

    async def open_for(self, session: AsyncSession, kpi_key: str) -> dict[Condition, AlertRow]:
        rows = await session.execute(
            select(alerts).where(alerts.c.kpi_key == kpi_key, alerts.c.open_key.is_not(None))
        )
        found = [_alert(row) for row in rows]
        return {alert.condition: alert for alert in found}

    async def search(
        self,
        session: AsyncSession,
        *,
        state: State | None = None,
        kpi_key: str | None = None,
        limit: int = 100,
        kpi_keys: Collection[str] | None = None,
    ) -> list[AlertRow]:
        """``kpi_keys``: only alerts of these KPIs (those the caller may read)."""
        query = select(alerts).order_by(alerts.c.id.desc()).limit(limit)
        if kpi_keys is not None:
            query = query.where(alerts.c.kpi_key.in_(sorted(kpi_keys)))
        if state is not None:
            query = query.where(alerts.c.state == state.value)
        if kpi_key is not None:
            query = query.where(alerts.c.kpi_key == kpi_key)
        return [_alert(row) for row in await session.execute(query)]

    async def exists(self, session: AsyncSession, dedupe_key: str) -> bool:
        found = await session.execute(select(alerts.c.id).where(alerts.c.dedupe_key == dedupe_key))
        return found.first() is not None

    async def open(
        self,
        session: AsyncSession,
        *,
        kpi_key: str,
        condition: Condition,
        severity: str,
        dedupe_key: str,
        open_key: str,
        value: float | None,
        now: datetime,
    ) -> int | None:
        """Insert a pending alert; None if this episode (or an open one) already exists."""
        stmt = (
            insert_for(session, alerts)
            .values(
                kpi_key=kpi_key,
                condition=condition.value,
                severity=severity,
                state=State.PENDING.value,
                dedupe_key=dedupe_key,
                open_key=open_key,
                value=value,
                started_at=now,
            )
            .on_conflict_do_nothing()
            .returning(alerts.c.id)
        )
        alert_id = (await session.execute(stmt)).scalar_one_or_none()
        if alert_id is not None:
            await self._record(
                session,
                alert_id=alert_id,
                from_state=None,
                to_state=State.PENDING,
                value=value,
                at=now,
            )
        return int(alert_id) if alert_id is not None else None

    async def move(
        self,
        session: AsyncSession,
        alert_id: int,
        *,
        from_state: State,
        to_state: State,
        value: float | None,
        now: datetime,
    ) -> bool:
        """Apply one transition if the alert is still in ``from_state``."""
        changes: dict[str, Any] = {"state": to_state.value, "value": value}
        if to_state is State.FIRING:
            # Firing means its first notice is written now: the repeat clock starts here.
            changes |= {"fired_at": now, "last_notified_at": now}
        if to_state is State.RESOLVED:
            changes |= {"resolved_at": now, "open_key": None}
        result = await session.execute(
            update(alerts)
            .where(alerts.c.id == alert_id, alerts.c.state == from_state.value)
            .values(**changes)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return False
        await self._record(
            session,
            alert_id=alert_id,
            from_state=from_state,
            to_state=to_state,
            value=value,
            at=now,
        )
        return True

    async def claim_repeat(
        self, session: AsyncSession, alert_id: int, *, due_before: datetime, now: datetime
    ) -> bool:
        """Take the right to send a repeat; False when another instance already did."""
        result = await session.execute(
            update(alerts)
            .where(
                alerts.c.id == alert_id,
                alerts.c.state == State.FIRING.value,
                alerts.c.acked_at.is_(None),
                alerts.c.last_notified_at <= due_before,
            )
            .values(last_notified_at=now)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def ack(
        self,
        session: AsyncSession,
        alert_id: int,
        *,
        note: str,
        now: datetime,
        actor: str | None = None,
    ) -> AlertRow | None:
        await session.execute(
            update(alerts)
            .where(alerts.c.id == alert_id, alerts.c.state != State.RESOLVED.value)
            .values(
                acked_at=func.coalesce(alerts.c.acked_at, now), ack_note=note, acked_by=actor
            )
        )
        return await self.get(session, alert_id)

    async def transitions(self, session: AsyncSession, alert_id: int) -> list[TransitionRow]:
        rows = await session.execute(
            select(
                alert_transitions.c.from_state,
                alert_transitions.c.to_state,
                alert_transitions.c.value,
                alert_transitions.c.at,
            )
            .where(alert_transitions.c.alert_id == alert_id)
            .order_by(alert_transitions.c.id)
        )
        return [TransitionRow(f, t, v, utc(at)) for f, t, v, at in rows]

    async def count_by_state(self, session: AsyncSession) -> dict[str, int]:
        rows = await session.execute(select(alerts.c.state, func.count()).group_by(alerts.c.state))
        return {state: int(count) for state, count in rows}

    async def _record(
        self,
        session: AsyncSession,
        *,
        alert_id: int,
        from_state: State | None,
        to_state: State,
        value: float | None,
        at: datetime,
    ) -> None:
        await session.execute(
            alert_transitions.insert().values(
                alert_id=alert_id,
                from_state=from_state.value if from_state is not None else None,
                to_state=to_state.value,
                value=value,
                at=at,
            )
        )
