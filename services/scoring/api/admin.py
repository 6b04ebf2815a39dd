"""Scoring's admin API: create, replace and retire KPIs, with optimistic concurrency."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, HTTPException, Query, Response, status

from services.scoring.api.access import require_edit, with_stored_secrets
from services.scoring.api.params import Key
from services.scoring.catalog_service import (
    API,
    CatalogService,
    ManagedElsewhere,
    Precondition,
    UnknownKpi,
    VersionMismatch,
    describe_diff,
)
from services.scoring.domain.catalog import CatalogError, KpiDefinition
from shared.identity.access import Caller
from shared.identity.domain import Principal

_AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid token or session"},
    403: {"description": "Not an admin, an owner of the KPI or an editor of its groups"},
}


def kpi_admin_router(catalog: CatalogService) -> APIRouter:
    """Changes: admins, the KPI's owners, and editors in one of its viewers groups."""
    router = APIRouter(prefix="/v1", tags=["kpis"], responses=_AUTH_ERRORS)

    async def stored_definition(key: str) -> KpiDefinition | None:
        return await _active_definition(catalog, key)

    def not_found(key: str) -> HTTPException:
        return HTTPException(status.HTTP_404_NOT_FOUND, f"unknown KPI '{key}'")

    async def save(
        kpi: KpiDefinition,
        response: Response,
        expect: Precondition,
        take_over: bool,
        caller: Principal,
    ) -> dict[str, Any]:
        stored = await stored_definition(kpi.key)
        if stored is not None:
            require_edit(caller, stored, what="change")
        kpi = with_stored_secrets(kpi, stored)
        # The result must stay editable by its author: no handing a KPI away by mistake.
        require_edit(caller, kpi, what="create" if stored is None else "save")
        try:
            written = await catalog.put(
                kpi, actor=actor_of(caller), expect=expect, take_over=take_over
            )
        except CatalogError as exc:
            raise HTTPException(422, {"problems": exc.problems}) from None
        except ManagedElsewhere as exc:
            raise managed_elsewhere(exc) from None
        except VersionMismatch as exc:
            raise HTTPException(status.HTTP_412_PRECONDITION_FAILED, str(exc)) from None
        assert written.version is not None
        response.headers["ETag"] = etag(written.version)
        return {
            "key": kpi.key,
            "version": written.version,
            "managed_by": API,
            "changes": describe_diff(written.diff),
        }

    @router.post(
        "/kpis",
        status_code=status.HTTP_201_CREATED,
        summary="Create a KPI (admins; editors and owners for KPIs they may change); it is "
        "managed through the API from then on",
        responses={409: {}, 422: {}},
    )
    async def create_kpi(
        kpi: Annotated[KpiDefinition, Body()], response: Response, caller: Caller
    ) -> dict[str, Any]:
        try:
            return await save(kpi, response, Precondition(absent=True), False, caller)
        except HTTPException as exc:
            if exc.status_code == status.HTTP_412_PRECONDITION_FAILED:
                raise HTTPException(
                    409, f"KPI '{kpi.key}' exists: use PUT /v1/kpis/{kpi.key}"
                ) from None
            raise

    @router.put(
        "/kpis/{key}",
        summary="Create or replace a KPI (admins, its owners, editors of its groups)",
        description=CONDITIONS,
        responses={
            409: {"description": "The KPI is managed by a catalog file"},
            412: {"description": "If-Match / If-None-Match did not hold"},
            422: {},
        },
    )
    async def put_kpi(
        # The caller first: no identity is a 401 whatever the key (dependencies run in
        # the order they are declared).
        caller: Caller,
        key: Key,
        *,
        kpi: Annotated[KpiDefinition, Body()],
        response: Response,
        if_match: Annotated[str | None, Header()] = None,
        if_none_match: Annotated[str | None, Header()] = None,
        take_over: TakeOver = False,
    ) -> dict[str, Any]:
        if kpi.key != key:
            raise HTTPException(422, f"body key '{kpi.key}' differs from the path's '{key}'")
        expect = precondition(key, if_match, if_none_match)
        return await save(kpi, response, expect, take_over, caller)

    @router.delete(
        "/kpis/{key}",
        status_code=status.HTTP_204_NO_CONTENT,
        summary="Retire a KPI (admins, its owners, editors of its groups); history is kept",
        description=CONDITIONS,
        responses={
            404: {},
            409: {"description": "The KPI is managed by a catalog file"},
            412: {"description": "If-Match did not hold"},
            422: {},
        },
    )
    async def delete_kpi(
        caller: Caller,
        key: Key,
        *,
        if_match: Annotated[str | None, Header()] = None,
        take_over: TakeOver = False,
    ) -> Response:
        expect = precondition(key, if_match, None)
        stored = await stored_definition(key)
        if stored is None:
            raise not_found(key)
        require_edit(caller, stored, what="retire")
        try:
            await catalog.retire(key, actor=actor_of(caller), expect=expect, take_over=take_over)
        except UnknownKpi:
            raise not_found(key) from None
        except CatalogError as exc:
            raise HTTPException(422, {"problems": exc.problems}) from None
        except ManagedElsewhere as exc:
            raise managed_elsewhere(exc) from None
        except VersionMismatch as exc:
            raise HTTPException(status.HTTP_412_PRECONDITION_FAILED, str(exc)) from None
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    return router


CONDITIONS = (
    "Optimistic concurrency: `If-Match: \"<version>\"` (the ETag of GET /v1/kpis/{key}) "
    "writes only if the stored version is still that one, else 412; `If-Match: *` only if "
    "the KPI exists; `If-None-Match: *` only if it does not. Without them the write is "
    "unconditional (the last writer wins). A KPI managed by a catalog file answers 409 "
    "naming the file: change it there, or pass `take_over=true` to manage it through the "
    "API from now on (the file then leaves it alone)."
)

TakeOver = Annotated[
    bool,
    Query(description="Manage a KPI a catalog file manages through the API from now on"),
]


def etag(version: int) -> str:
    return f'"{version}"'


def precondition(key: str, if_match: str | None, if_none_match: str | None) -> Precondition:
    """The stored state a request's conditional headers ask for."""
    if if_none_match is not None:
        if if_none_match.strip() != "*":
            raise HTTPException(400, "If-None-Match: only '*' (create, never replace) is accepted")
        return Precondition(absent=True)
    if if_match is None:
        return Precondition()
    if if_match.strip() == "*":
        return Precondition(exists=True)
    versions = []
    for tag in if_match.split(","):
        value = tag.strip().removeprefix("W/").strip('"')
        if not value.isdigit():
            raise HTTPException(
                400,
                f"If-Match: {tag.strip()!r} is not an ETag of this API; send the ETag of "
                f"GET /v1/kpis/{key}, e.g. If-Match: \"3\"",
            )
        versions.append(int(value))
    return Precondition(versions=tuple(versions))


def managed_elsewhere(exc: ManagedElsewhere) -> HTTPException:
    return HTTPException(
        status.HTTP_409_CONFLICT,
        f"{exc}: change it there and apply the file, or pass take_over=true to manage it "
        "through the API from now on",
    )


async def _active_definition(catalog: CatalogService, key: str) -> KpiDefinition | None:
    row = await catalog.stored(key)
    if row is None or row.retired:
        return None
    return KpiDefinition.model_validate(row.definition)


def actor_of(caller: Principal) -> str:
    """What the change log names: the user, or "admin-api" for the admin token."""
    return caller.subject if caller.user_id is not None else "admin-api"
