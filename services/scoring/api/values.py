"""Values of reported KPIs: entered one at a time, uploaded as CSV, listed with history."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Collection
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.scoring.domain.reported import MAX_NOTE_CHARS, EntryError
from services.scoring.reported import ReportedValues
from shared.auth import AdminGuard

#: A CSV upload larger than this is refused (413): ten thousand rows fit easily.
MAX_CSV_BYTES = 1_000_000

#: Who may enter values of these KPIs: returns the name recorded in their history, or
#: raises 401/403. The one place to change when users and roles arrive.
Authorise = Callable[[Request, Collection[str]], str]


def admin_may_enter(admin: AdminGuard) -> Authorise:
    """For now the holder of the admin token enters every KPI's values (as "admin");
    the KPI's owners and editors take over once personal sign-in exists."""

    def authorise(request: Request, _keys: Collection[str]) -> str:
        admin(request)
        return "admin"

    return authorise


class ValueIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period_start: date = Field(description="First day of the review period, e.g. 2026-11-01")
    # NaN and infinities are refused by the domain, by name: pydantic's own refusal would
    # echo the NaN back, which JSON cannot carry.
    value: float
    note: Annotated[str, StringConstraints(max_length=MAX_NOTE_CHARS)] | None = None


def values_router(values: ReportedValues, authorise: Authorise) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["reported values"])

    def refused(exc: EntryError) -> HTTPException:
        return HTTPException(422, {"problems": exc.problems})

    @router.post(
        "/kpis/{key}/values",
        status_code=status.HTTP_201_CREATED,
        summary="Enter (or correct) a reported KPI's value for one review period",
        responses={401: {}, 404: {"description": "Unknown KPI"}, 422: {}},
    )
    async def enter_value(
        key: str, request: Request, body: Annotated[ValueIn, Body()]
    ) -> dict[str, Any]:
        actor = authorise(request, [key])
        try:
            return await values.enter(key, body.period_start, body.value, body.note, actor=actor)
        except EntryError as exc:
            if exc.problems[0].startswith("kpi_key: unknown KPI"):
                raise HTTPException(404, f"unknown KPI '{key}'") from None
            raise refused(exc) from None

    @router.get(
        "/kpis/{key}/values",
        summary="A reported KPI's entered values, and who entered or corrected them when",
        responses={404: {"description": "Unknown KPI"}, 422: {"description": "Not reported"}},
    )
    async def list_values(key: str) -> dict[str, Any]:
        try:
            return await values.listing(key)
        except KeyError:
            raise HTTPException(404, f"unknown KPI '{key}'") from None
        except EntryError as exc:
            raise refused(exc) from None

    @router.post(
        "/values/import",
        summary="Upload reported values as CSV: kpi_key,period_start,value[,note]",
        description="All rows or none: every problem is answered with its line.",
        responses={401: {}, 413: {}, 415: {}, 422: {}},
        openapi_extra={
            "requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}}
        },
    )
    async def import_values(request: Request) -> dict[str, Any]:
        authorise(request, [])  # refuse strangers before reading what they send
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind not in ("text/csv", "text/plain", "application/csv"):
            raise HTTPException(415, f"send the file as text/csv, not {kind or 'nothing'}")
        raw = bytearray()
        async for chunk in request.stream():
            raw.extend(chunk)
            if len(raw) > MAX_CSV_BYTES:
                raise HTTPException(413, f"the file is larger than {MAX_CSV_BYTES} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise HTTPException(422, "the file is not UTF-8 text") from None
        actor = authorise(request, keys_in(text))
        try:
            written = await values.import_csv(text, actor=actor)
        except EntryError as exc:
            raise refused(exc) from None
        return {"imported": len(written), "values": written}

    return router


def keys_in(text: str) -> set[str]:
    """The KPI keys a CSV file names (first column after the header), for authorising."""
    rows = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    next(rows, None)
    return {row[0].strip() for row in rows if row and row[0].strip()}
