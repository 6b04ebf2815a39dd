"""Routes: alerts (list, ack), silences (create, end, list), notification history."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerts.api.schemas import (
    MAX_SILENCE_S,
    NO_NUL,
    AckIn,
    AlertOut,
    NotificationOut,
    SilenceIn,
    SilenceOut,
)
from services.alerts.domain.lifecycle import State
from services.alerts.repository import AlertRepository, OutboxRepository, SilenceRepository
from shared.db.engine import transaction
from shared.identity.access import Authenticator, Caller, forbidden
from shared.identity.domain import Principal, can_edit
from shared.settings import Settings

StateParam = Literal["pending", "firing", "resolved"]
DeliveryStatus = Literal["pending", "sending", "sent", "failed", "suppressed", "undeliverable"]
# Ids are BIGINT: a larger number is refused (422) rather than failing in the driver (500).
DbId = Annotated[int, Path(ge=-(2**63), le=2**63 - 1)]
KpiKeyParam = Annotated[str | None, Query(max_length=200, pattern=NO_NUL)]


def build_router(
    settings: Settings,
    *,
    sessions: async_sessionmaker[AsyncSession],
    clock: Callable[[], datetime],
    auth: Authenticator,
) -> APIRouter:
    router = APIRouter(
        prefix="/v1",
        tags=["alerts"],
        responses={401: {"description": "No valid token or session"}, 403: {}},
    )
    alerts, silences, outbox = AlertRepository(), SilenceRepository(), OutboxRepository()

    async def may_change(caller: Principal, kpi_key: str) -> None:
        """Acks and silences: admins, the KPI's owners and the editors of its groups."""
        if caller.is_admin:
            return
        rule = (await auth.identity.kpi_access([kpi_key])).get(kpi_key)
        if rule is None or not can_edit(caller, rule):
            raise forbidden(
                f"you may not ack or silence alerts of KPI '{kpi_key}': admins, its owners "
                "and editors in one of its viewers groups may"
            )

    @router.get(
        "/alerts", summary="Alerts of the KPIs you may read, newest first, by state or KPI"
    )
    async def list_alerts(
        caller: Caller,
        state: StateParam | None = None,
        kpi_key: KpiKeyParam = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[AlertOut]:
        visible = await auth.visible(caller)
        async with sessions() as session:
            rows = await alerts.search(
                session,
                state=State(state) if state else None,
                kpi_key=kpi_key,
                limit=limit,
                kpi_keys=visible,
            )
        return [AlertOut.of(row) for row in rows]

    @router.post(
        "/alerts/{alert_id}/ack",
        summary="Acknowledge: stops repeats; the resolve notice is still sent",
    )
    async def ack(alert_id: DbId, body: AckIn, caller: Caller) -> AlertOut:
        async with transaction(sessions) as session:
            current = await alerts.get(session, alert_id)
            if current is None or not await auth.may_read(caller, current.kpi_key):
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"alert {alert_id} does not exist")
            await may_change(caller, current.kpi_key)
            if current.state is State.RESOLVED:
                raise HTTPException(
                    status.HTTP_409_CONFLICT, f"alert {alert_id} is already resolved"
                )
            row = await alerts.ack(
                session, alert_id, note=body.note, now=clock(), actor=caller.subject
            )
        assert row is not None
        return AlertOut.of(row)

    @router.post(
        "/silences",
        status_code=status.HTTP_201_CREATED,
        summary="Silence a KPI's notifications until ends_at (or for duration_s)",
    )
    async def create_silence(body: SilenceIn, caller: Caller) -> SilenceOut:
        await may_change(caller, body.kpi_key)
        now = clock()
        ends_at = body.ends_at or now + timedelta(seconds=body.duration_s or 0)
        if ends_at <= now:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, "ends_at must be in the future"
            )
        # Compared before anything converts it: a far-off ends_at with an offset cannot
        # be converted to UTC nor stored (a 500), and a silence as long as duration_s
        # allows is long enough.
        if ends_at > now + timedelta(seconds=MAX_SILENCE_S):
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"ends_at must be at most {MAX_SILENCE_S // 86400} days from now",
            )
        async with transaction(sessions) as session:
            row = await silences.add(
                session,
                kpi_key=body.kpi_key,
                starts_at=now,
                ends_at=ends_at,
                # Who did it is the caller, not what the body claims (automation may name
                # the person it acts for, through the admin token).
                created_by=body.created_by if caller.user_id is None else caller.subject,
                reason=body.reason,
            )
        return SilenceOut.of(row)

    @router.delete(
        "/silences/{silence_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        summary="End a silence now (it stays in the history)",
    )
    async def end_silence(silence_id: DbId, caller: Caller) -> Response:
        async with transaction(sessions) as session:
            found = await silences.get(session, silence_id)
            if found is None or not await auth.may_read(caller, found.kpi_key):
                raise HTTPException(
                    status.HTTP_404_NOT_FOUND, f"silence {silence_id} does not exist"
                )
            await may_change(caller, found.kpi_key)
            await silences.end(session, silence_id, clock())
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.get("/silences", summary="Active silences (all=true: also ended ones)")
    async def list_silences(
        caller: Caller,
        include_ended: Annotated[bool, Query(alias="all")] = False,
    ) -> list[SilenceOut]:
        visible = await auth.visible(caller)
        async with sessions() as session:
            rows = await silences.search(
                session, now=clock(), active_only=not include_ended, kpi_keys=visible
            )
        return [SilenceOut.of(row) for row in rows]

    @router.get(
        "/notifications",
        summary="Delivery history of the KPIs you may read (targets masked but for admins)",
    )
    async def notifications(
        caller: Caller,
        status_: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
        alert_id: Annotated[int | None, Query(ge=-(2**63), le=2**63 - 1)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[NotificationOut]:
        visible = await auth.visible(caller)
        async with sessions() as session:
            rows = await outbox.history(
                session, status=status_, alert_id=alert_id, limit=limit, kpi_keys=visible
            )
        return [NotificationOut.of(row, admin=caller.is_admin) for row in rows]

    return router
