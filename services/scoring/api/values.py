"""Values of reported KPIs: entered one at a time, uploaded as CSV, listed with history."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.scoring.api.access import require_edit, require_read
from services.scoring.api.params import Key
from services.scoring.domain.reported import MAX_NOTE_CHARS, EntryError
from services.scoring.queries import KpiQueries
from services.scoring.reported import ReportedValues
from shared.identity.access import Caller
from shared.identity.domain import Principal

#: A CSV upload larger than this is refused (413): ten thousand rows fit easily.
MAX_CSV_BYTES = 1_000_000

def _entered_by(caller: Principal) -> str:
    """What a value's history names: the user, or "admin" for the admin token."""
    return caller.subject if caller.user_id is not None else "admin"


class ValueIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period_start: date = Field(description="First day of the review period, e.g. 2026-11-01")
    # NaN and infinities are refused by the domain, by name: pydantic's own refusal would
    # echo the NaN back, which JSON cannot carry.
    value: float
    note: Annotated[str, StringConstraints(max_length=MAX_NOTE_CHARS)] | None = None


def values_router(values: ReportedValues, queries: KpiQueries) -> APIRouter:
    """Reading a KPI's values needs read access to it; entering them, edit access (its
    owners, editors of its viewers groups, admins)."""
    router = APIRouter(prefix="/v1", tags=["reported values"])

    def allowed(caller: Principal, key: str, *, edit: bool) -> None:
        catalog = queries.catalog.catalog
        if key not in catalog:
            raise HTTPException(404, f"unknown KPI '{key}'")
        if edit:
            require_edit(caller, catalog[key], what="enter values of")
        else:
            require_read(caller, catalog[key])

    def refused(exc: EntryError) -> HTTPException:
        return HTTPException(422, {"problems": exc.problems})

    @router.post(
        "/kpis/{key}/values",
        status_code=status.HTTP_201_CREATED,
        summary="Enter (or correct) a reported KPI's value for one review period",
        responses={401: {}, 404: {"description": "Unknown KPI"}, 422: {}},
    )
    async def enter_value(
        caller: Caller, key: Key, body: Annotated[ValueIn, Body()]
    ) -> dict[str, Any]:
        allowed(caller, key, edit=True)
        actor = _entered_by(caller)
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
    async def list_values(caller: Caller, key: Key) -> dict[str, Any]:
        allowed(caller, key, edit=False)
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
    async def import_values(request: Request, caller: Caller) -> dict[str, Any]:
        # The body first (bounded, 413 while it is still coming), then its type.
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_CSV_BYTES:
            raise HTTPException(413, f"the file is larger than {MAX_CSV_BYTES} bytes")
        raw = bytearray()
        async for chunk in request.stream():
            raw.extend(chunk)
            if len(raw) > MAX_CSV_BYTES:
                raise HTTPException(413, f"the file is larger than {MAX_CSV_BYTES} bytes")
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind not in ("text/csv", "text/plain", "application/csv"):
            raise HTTPException(415, f"send the file as text/csv, not {kind or 'nothing'}")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise HTTPException(422, "the file is not UTF-8 text") from None
        for key in sorted(keys_in(text)):
            if key in queries.catalog.catalog:  # unknown keys: the import names them
                allowed(caller, key, edit=True)
        actor = _entered_by(caller)
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
