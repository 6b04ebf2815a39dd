"""Write-key authentication and per-key rate limiting for the tracking routes."""

from __future__ import annotations

import base64
import binascii
import math

from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request

from services.ingest.api.common import ApiError, unavailable
from services.ingest.api.context import IngestContext
from services.ingest.repository import WriteKey

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="kpipulse", Basic realm="kpipulse"'}


def credentials(request: Request) -> str | None:
    """``Bearer <key>``, or ``Basic`` with the key as user name (Segment SDKs)."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return value.strip() or None
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[0] or None
    return None


async def authenticate(ctx: IngestContext, key: str | None, *, source: str | None) -> WriteKey:
    """The key's record; 401 unknown/revoked, 403 when issued for another source."""
    if not key:
        raise ApiError(
            401,
            "missing_key",
            "a write key is required: 'Authorization: Bearer <key>' or Basic with the key "
            "as user name",
            headers=_CHALLENGE,
        )
    try:
        record = await ctx.keys.lookup(key)
    except (SQLAlchemyError, OSError) as exc:
        retry = ctx.settings.ingest.retry_after_s
        raise unavailable(retry, "the key store is unreachable") from exc
    if record is None:
        raise ApiError(401, "unknown_key", "unknown write key", headers=_CHALLENGE)
    if not record.active:
        raise ApiError(401, "revoked_key", "this write key was revoked", headers=_CHALLENGE)
    if source is not None and record.source != source:
        raise ApiError(
            403,
            "wrong_source",
            f"this write key is for source {record.source!r}, not {source!r}",
        )
    return record


def check_rate(ctx: IngestContext, record: WriteKey, events: int) -> None:
    wait = ctx.limiter.acquire(record.id, events)
    if wait > 0:
        limit = ctx.settings.ingest.rate_limit_per_second
        raise ApiError(
            429,
            "rate_limited",
            f"rate limit of {limit:g} events/s for this write key exceeded",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
