"""Scoring's JSON API: KPIs with their values, the scorecard, history; admin edits."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Response, status

from services.scoring.catalog_service import CatalogService, describe_diff
from services.scoring.domain.catalog import CatalogError, KpiDefinition
from services.scoring.queries import KpiQueries, OutOfRange, QueryError
from shared.auth import AdminGuard
from shared.contracts.kpi_values import KPI_KEY_PATTERN

# A key no KPI can have is refused before it reaches a query (a NUL in it would fail in
# PostgreSQL as a 500; a megabyte of it would be echoed back in the 404).
Key = Annotated[str, Path(pattern=KPI_KEY_PATTERN, description="a KPI key (snake_case)")]


def kpi_router(queries: KpiQueries, catalog: CatalogService, admin: AdminGuard) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["kpis"])
    admin_only = [Depends(admin)]

    def not_found(key: str) -> HTTPException:
        return HTTPException(status.HTTP_404_NOT_FOUND, f"unknown KPI '{key}'")

    @router.get("/kpis", summary="Every KPI with its current value, status and score")
    async def list_kpis() -> dict[str, Any]:
        return {"kpis": await queries.list_kpis()}

    @router.get("/scorecard", summary="Weighted scores per perspective and overall")
    async def get_scorecard() -> dict[str, Any]:
        return await queries.scorecard()

    @router.get(
        "/kpis/{key}",
        summary="A KPI's definition, value, lead/lag links and period analysis",
        responses={404: {"description": "Unknown KPI"}},
    )
    async def get_kpi(key: Key) -> dict[str, Any]:
        try:
            return await queries.detail(key)
        except KeyError:
            raise not_found(key) from None

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
        key: Key,
        start: Annotated[datetime | None, Query(alias="from")] = None,
        end: Annotated[datetime | None, Query(alias="to")] = None,
        step: Annotated[int | None, Query(ge=1, le=365 * 86400, description="seconds")] = None,
    ) -> dict[str, Any]:
        for name, value in (("from", start), ("to", end)):
            if value is not None and value.tzinfo is None:
                raise HTTPException(422, f"'{name}' needs a time zone, e.g. 2026-01-01T00:00Z")
        try:
            return await queries.history(key, start, end, step)
        except KeyError:
            raise not_found(key) from None
        except OutOfRange as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
        except QueryError as exc:
            raise HTTPException(422, str(exc)) from None

    @router.get("/kpis/{key}/changes", summary="What changed in the definition, when, by whom")
    async def get_changes(key: Key) -> dict[str, Any]:
        return {"kpi": key, "changes": await queries.change_history(key)}

    async def save(kpi: KpiDefinition, actor: str) -> dict[str, Any]:
        try:
            diff = await catalog.put(kpi, actor=actor)
        except CatalogError as exc:
            raise HTTPException(422, {"problems": exc.problems}) from None
        return {"key": kpi.key, "changes": describe_diff(diff)}

    @router.post(
        "/kpis",
        status_code=status.HTTP_201_CREATED,
        dependencies=admin_only,
        summary="Create a KPI (admin)",
        responses={401: {"description": "Admin token missing or wrong"}, 409: {}, 422: {}},
    )
    async def create_kpi(kpi: Annotated[KpiDefinition, Body()]) -> dict[str, Any]:
        if kpi.key in queries.catalog.catalog:
            raise HTTPException(409, f"KPI '{kpi.key}' exists: use PUT /v1/kpis/{kpi.key}")
        return await save(kpi, "admin-api")

    @router.put(
        "/kpis/{key}",
        dependencies=admin_only,
        summary="Create or replace a KPI (admin)",
        responses={401: {"description": "Admin token missing or wrong"}, 422: {}},
    )
    async def put_kpi(key: Key, kpi: Annotated[KpiDefinition, Body()]) -> dict[str, Any]:
        if kpi.key != key:
            raise HTTPException(422, f"body key '{kpi.key}' differs from the path's '{key}'")
        return await save(kpi, "admin-api")

    @router.delete(
        "/kpis/{key}",
        status_code=status.HTTP_204_NO_CONTENT,
        dependencies=admin_only,
        summary="Retire a KPI (admin); its history is kept",
        responses={401: {"description": "Admin token missing or wrong"}, 404: {}, 422: {}},
    )
    async def delete_kpi(key: Key) -> Response:
        if key not in queries.catalog.catalog:
            raise not_found(key)
        try:
            await catalog.retire(key, actor="admin-api")
        except CatalogError as exc:
            raise HTTPException(422, {"problems": exc.problems}) from None
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    return router
