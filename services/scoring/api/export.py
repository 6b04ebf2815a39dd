"""CSV downloads: every KPI's current value (filtered like the page) and one KPI's history.

Registered before the KPI routes so that ``/v1/kpis/export.csv`` is not read as the KPI
named ``export.csv``. Reads go through the same ``KpiQueries`` as the JSON API, so
whatever restricts those reads (viewers, once sign-in exists) restricts these too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response

from services.scoring.api.access import readable, require_read
from services.scoring.api.params import Key
from services.scoring.domain.export import content_disposition, history_csv, kpis_csv, matches
from services.scoring.queries import KpiQueries, QueryError
from shared.i18n import LocalePolicy
from shared.identity.access import Caller

CSV_TYPE = "text/csv; charset=utf-8"
# A language tag (en, vi, vi-VN): anything else is refused by name rather than ignored.
Lang = Annotated[
    str | None,
    Query(
        pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})?$",
        description="en or vi; default: the company's language",
    ),
]


def _csv(body: str, name: str, locale: str) -> Response:
    return Response(
        body.encode("utf-8"),
        media_type=CSV_TYPE,
        headers={
            "Content-Disposition": content_disposition(name),
            "Content-Language": locale,
            "Cache-Control": "no-store",
        },
    )


def export_router(queries: KpiQueries, locales: LocalePolicy) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["exports"])

    @router.get(
        "/kpis/export.csv",
        summary="Every KPI's current value, status and score as CSV (filter as on the page)",
        response_class=Response,
        responses={200: {"content": {"text/csv": {}}}},
    )
    async def export_kpis(
        caller: Caller,
        department: Annotated[str | None, Query(max_length=200)] = None,
        owner: Annotated[str | None, Query(max_length=320, description="name or email")] = None,
        lang: Lang = None,
    ) -> Response:
        tr = locales.for_request(lang)
        views = [
            v
            for v in await queries.list_kpis(readable(caller))
            if matches(v, department=department, owner=owner)
        ]
        stem = "-".join(filter(None, ("kpis", department, owner)))
        return _csv(kpis_csv(views, tr), stem, tr.locale)

    @router.get(
        "/kpis/{key}/history.csv",
        summary="The KPI's rolling value at each step between from and to, as CSV",
        response_class=Response,
        responses={
            200: {"content": {"text/csv": {}}},
            404: {"description": "Unknown KPI"},
            422: {"description": "Bad range"},
        },
    )
    async def export_history(
        key: Key,
        caller: Caller,
        *,
        start: Annotated[datetime | None, Query(alias="from")] = None,
        end: Annotated[datetime | None, Query(alias="to")] = None,
        step: Annotated[int | None, Query(ge=1, le=365 * 86400, description="seconds")] = None,
        lang: Lang = None,
    ) -> Response:
        for name, value in (("from", start), ("to", end)):
            if value is not None and value.tzinfo is None:
                raise HTTPException(422, f"'{name}' needs a time zone, e.g. 2026-01-01T00:00Z")
        if key not in queries.catalog.catalog:
            raise HTTPException(404, f"unknown KPI '{key}'")
        require_read(caller, queries.catalog.catalog[key])
        try:
            history = await queries.history(key, start, end, step)
        except KeyError:
            raise HTTPException(404, f"unknown KPI '{key}'") from None
        except QueryError as exc:
            raise HTTPException(422, str(exc)) from None
        tr = locales.for_request(lang)
        return _csv(history_csv(history["points"], tr), f"{key}-history", tr.locale)

    return router
