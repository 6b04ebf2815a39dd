"""Scoring's JSON API: KPIs with their values, the scorecard, history (edits: admin.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response, status

from services.scoring.api.access import readable, require_read
from services.scoring.api.admin import etag
from services.scoring.api.params import Key
from services.scoring.catalog_service import CatalogService
from services.scoring.domain.catalog import KpiDefinition
from services.scoring.queries import KpiQueries, OutOfRange, QueryError
from shared.identity.access import Caller
from shared.identity.domain import Principal

AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid token or session"},
    403: {"description": "Not allowed for this user (role, viewers, CSRF)"},
}


def kpi_router(queries: KpiQueries, catalog: CatalogService) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["kpis"], responses=AUTH_ERRORS)

    def not_found(key: str) -> HTTPException:
        return HTTPException(status.HTTP_404_NOT_FOUND, f"unknown KPI '{key}'")

    def readable_kpi(key: str, caller: Principal) -> KpiDefinition:
        if key not in queries.catalog.catalog:
            raise not_found(key)
        kpi = queries.catalog.catalog[key]
        require_read(caller, kpi)
        return kpi

    @router.get("/kpis", summary="The KPIs you may read, with current value, status and score")
    async def list_kpis(caller: Caller) -> dict[str, Any]:
        return {"kpis": await queries.list_kpis(readable(caller))}

    @router.get(
        "/scorecard",
        summary="Weighted scores per perspective and overall, over the KPIs you may read",
    )
    async def get_scorecard(caller: Caller) -> dict[str, Any]:
        return await queries.scorecard(readable(caller))

    @router.get(
        "/kpis/{key}",
        summary="A KPI's definition, value, lead/lag links and period analysis",
        description="The `ETag` header is the stored version of the definition: send it "
        "back in `If-Match` to change or retire the KPI only if nobody changed it meanwhile.",
        responses={404: {"description": "Unknown KPI"}},
    )
    async def get_kpi(caller: Caller, key: Key, response: Response) -> dict[str, Any]:
        readable_kpi(key, caller)
        try:
            detail = await queries.detail(key, readable(caller))
        except KeyError:
            raise not_found(key) from None
        stored = await catalog.stored(key)
        if stored is not None:
            response.headers["ETag"] = etag(stored.version)
            detail |= {"version": stored.version, "managed_by": stored.managed_by}
        return detail

    @router.get(
        "/kpis/{key}/history",
        summary="The KPI's rolling value at each step between from and to (from buckets)",
        responses={
            400: {"description": "'from' or 'to' outside the range history can answer for"},
            404: {"description": "Unknown KPI"},
            422: {"description": "Bad range"},
        },
    )
    async def get_history(
        caller: Caller,
        key: Key,
        start: Annotated[datetime | None, Query(alias="from")] = None,
        end: Annotated[datetime | None, Query(alias="to")] = None,
        step: Annotated[int | None, Query(ge=1, le=365 * 86400, description="seconds")] = None,
    ) -> dict[str, Any]:
        for name, value in (("from", start), ("to", end)):
            if value is not None and value.tzinfo is None:
                raise HTTPException(422, f"'{name}' needs a time zone, e.g. 2026-01-01T00:00Z")
        readable_kpi(key, caller)
        try:
            return await queries.history(key, start, end, step)
        except KeyError:
            raise not_found(key) from None
        except OutOfRange as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
        except QueryError as exc:
            raise HTTPException(422, str(exc)) from None

    @router.get("/kpis/{key}/changes", summary="What changed in the definition, when, by whom")
    async def get_changes(caller: Caller, key: Key) -> dict[str, Any]:
        if key in queries.catalog.catalog:
            require_read(caller, queries.catalog.catalog[key])
        elif not caller.is_admin:
            # A retired KPI's viewers are no longer known here: its history is for admins.
            raise not_found(key)
        return {"kpi": key, "changes": await queries.change_history(key)}

    return router
