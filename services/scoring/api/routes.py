"""Scoring's JSON API: KPIs with their values, the scorecard, history; admin edits."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query, Response, status

from services.scoring.api.access import (
    readable,
    require_edit,
    require_read,
    with_stored_secrets,
)
from services.scoring.catalog_service import CatalogService, describe_diff
from services.scoring.domain.catalog import CatalogError, KpiDefinition
from services.scoring.queries import KpiQueries, QueryError
from shared.identity.access import Authenticator, Caller
from shared.identity.domain import Principal

_AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid token or session"},
    403: {"description": "Not allowed for this user (role, viewers, CSRF)"},
}


def kpi_router(queries: KpiQueries, catalog: CatalogService, auth: Authenticator) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["kpis"], responses=_AUTH_ERRORS)

    def readable_kpi(key: str, caller: Principal) -> KpiDefinition:
        return _readable(queries, key, caller)

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
        responses={404: {"description": "Unknown KPI"}},
    )
    async def get_kpi(key: str, caller: Caller) -> dict[str, Any]:
        readable_kpi(key, caller)
        try:
            return await queries.detail(key, readable(caller))
        except KeyError:
            raise _not_found(key) from None

    @router.get(
        "/kpis/{key}/history",
        summary="The KPI's rolling value at each step between from and to (from buckets)",
        responses={404: {"description": "Unknown KPI"}, 422: {"description": "Bad range"}},
    )
    async def get_history(
        key: str,
        caller: Caller,
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
            raise _not_found(key) from None
        except QueryError as exc:
            raise HTTPException(422, str(exc)) from None

    @router.get("/kpis/{key}/changes", summary="What changed in the definition, when, by whom")
    async def get_changes(key: str, caller: Caller) -> dict[str, Any]:
        if key in queries.catalog.catalog:
            require_read(caller, queries.catalog.catalog[key])
        elif not caller.is_admin:
            # A retired KPI's viewers are no longer known here: its history is for admins.
            raise _not_found(key)
        return {"kpi": key, "changes": await queries.change_history(key)}

    async def save(kpi: KpiDefinition, caller: Principal) -> dict[str, Any]:
        return await _save(queries, catalog, kpi, caller)

    @router.post(
        "/kpis",
        status_code=status.HTTP_201_CREATED,
        summary="Create a KPI (admins; editors and owners for KPIs they may change)",
        responses={409: {}, 422: {}},
    )
    async def create_kpi(kpi: Annotated[KpiDefinition, Body()], caller: Caller) -> dict[str, Any]:
        if kpi.key in queries.catalog.catalog:
            raise HTTPException(409, f"KPI '{kpi.key}' exists: use PUT /v1/kpis/{kpi.key}")
        return await save(kpi, caller)

    @router.put(
        "/kpis/{key}",
        summary="Create or replace a KPI (admins, its owners, editors of its groups)",
        responses={422: {}},
    )
    async def put_kpi(
        key: str, kpi: Annotated[KpiDefinition, Body()], caller: Caller
    ) -> dict[str, Any]:
        if kpi.key != key:
            raise HTTPException(422, f"body key '{kpi.key}' differs from the path's '{key}'")
        return await save(kpi, caller)

    @router.delete(
        "/kpis/{key}",
        status_code=status.HTTP_204_NO_CONTENT,
        summary="Retire a KPI (admins, its owners, editors of its groups); history is kept",
        responses={404: {}, 422: {}},
    )
    async def delete_kpi(key: str, caller: Caller) -> Response:
        if key not in queries.catalog.catalog:
            raise _not_found(key)
        require_edit(caller, queries.catalog.catalog[key], what="retire")
        actor = caller.subject if caller.user_id is not None else "admin-api"
        try:
            await catalog.retire(key, actor=actor)
        except CatalogError as exc:
            raise HTTPException(422, {"problems": exc.problems}) from None
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    return router


def _not_found(key: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"unknown KPI '{key}'")


def _readable(queries: KpiQueries, key: str, caller: Principal) -> KpiDefinition:
    if key not in queries.catalog.catalog:
        raise _not_found(key)
    kpi = queries.catalog.catalog[key]
    require_read(caller, kpi)
    return kpi


async def _save(
    queries: KpiQueries, catalog: CatalogService, kpi: KpiDefinition, caller: Principal
) -> dict[str, Any]:
    stored = queries.catalog.catalog.by_key.get(kpi.key)
    if stored is not None:
        require_edit(caller, stored, what="change")
    kpi = with_stored_secrets(kpi, stored)
    # The result must stay editable by its author: no handing a KPI away by mistake.
    require_edit(caller, kpi, what="create" if stored is None else "save")
    actor = caller.subject if caller.user_id is not None else "admin-api"
    try:
        diff = await catalog.put(kpi, actor=actor)
    except CatalogError as exc:
        raise HTTPException(422, {"problems": exc.problems}) from None
    return {"key": kpi.key, "changes": describe_diff(diff)}

