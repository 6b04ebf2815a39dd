"""Admin API for write keys: ``Authorization: Bearer <admin token>``, constant-time check."""

from __future__ import annotations

import hmac
import logging
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import Response

from services.ingest.api.common import ApiError, json_response, unavailable
from services.ingest.api.context import IngestContext, context
from services.ingest.domain.origins import normalize_origins
from services.ingest.keys import create_key, describe
from shared.contracts.events import Source

log = logging.getLogger(__name__)


def require_admin(request: Request) -> IngestContext:
    ctx = context(request)
    token = ctx.settings.admin_token.get_secret_value().encode()
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    # An empty configured token disables the admin API rather than accepting "".
    ok = bool(token) and scheme.lower() == "bearer"
    if not hmac.compare_digest(given.strip().encode(), token) or not ok:
        raise ApiError(
            401,
            "unauthorized",
            "admin token missing or wrong",
            headers={"WWW-Authenticate": 'Bearer realm="kpipulse-admin"'},
        )
    return ctx


Admin = Annotated[IngestContext, Depends(require_admin)]
router = APIRouter(
    prefix="/v1/admin/keys",
    tags=["admin"],
    responses={401: {"description": "Admin token missing or wrong"}},
)


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: Source
    # No NUL: PostgreSQL text refuses it (found by fuzzing: it was answered 503).
    name: Annotated[
        str,
        StringConstraints(
            min_length=1, max_length=200, strip_whitespace=True, pattern=r"^[^\x00]+$"
        ),
    ]
    # Origins a browser may use the key from (e.g. "https://www.example.com",
    # "https://*.example.com"); empty allows any.
    allowed_origins: list[str] = []

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        return list(normalize_origins(value))


class OriginsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allowed_origins: list[str]

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        return list(normalize_origins(value))


def _db_down(ctx: IngestContext, exc: Exception) -> ApiError:
    # The driver's message may quote SQL and parameters (a key hash): log it, don't answer it.
    log.warning("admin API: database error", extra={"error": type(exc).__name__})
    return unavailable(ctx.settings.ingest.retry_after_s, "the database is unreachable")


@router.post("", status_code=201, summary="Create a write key (shown once)")
async def create(ctx: Admin, body: KeyCreate) -> Response:
    try:
        record, key = await create_key(
            ctx.key_repository,
            source=body.source,
            name=body.name,
            now=ctx.now(),
            allowed_origins=tuple(body.allowed_origins),
        )
    except (SQLAlchemyError, OSError) as exc:
        raise _db_down(ctx, exc) from exc
    return json_response({**describe(record), "key": key}, status=201)


@router.get("", summary="List write keys (never the keys themselves)")
async def list_keys(ctx: Admin) -> Response:
    try:
        records = await ctx.key_repository.all()
    except (SQLAlchemyError, OSError) as exc:
        raise _db_down(ctx, exc) from exc
    return json_response({"keys": [describe(r) for r in records]})


@router.delete(
    "/{key_id}",
    summary="Revoke a write key",
    description="Takes effect at once on this instance and within the key-cache TTL "
    "(settings.ingest.key_cache_ttl_s, 10 s by default) on the others.",
    responses={404: {"description": "No such key"}},
)
async def revoke(ctx: Admin, key_id: str) -> Response:
    try:
        record = await ctx.key_repository.revoke(key_id, now=ctx.now())
    except (SQLAlchemyError, OSError) as exc:
        raise _db_down(ctx, exc) from exc
    if record is None:
        raise ApiError(404, "not_found", f"no write key with id {key_id!r}")
    ctx.keys.forget(record.key_hash)
    return json_response(describe(record))


@router.put(
    "/{key_id}/origins",
    summary="Set the origins a browser may use a write key from",
    description="Replaces the list; an empty list allows any origin. Takes effect at once "
    "on this instance and within the key-cache TTL on the others.",
    responses={404: {"description": "No such key"}},
)
async def set_origins(ctx: Admin, key_id: str, body: OriginsUpdate) -> Response:
    try:
        record = await ctx.key_repository.set_origins(key_id, tuple(body.allowed_origins))
    except (SQLAlchemyError, OSError) as exc:
        raise _db_down(ctx, exc) from exc
    if record is None:
        raise ApiError(404, "not_found", f"no write key with id {key_id!r}")
    ctx.keys.forget(record.key_hash)
    return json_response(describe(record))
