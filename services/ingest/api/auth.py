"""Write-key authentication and per-key rate limiting for the tracking routes."""

from __future__ import annotations

import base64
import binascii
import math

from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request

from services.ingest.api.common import ApiError, unavailable
from services.ingest.api.context import IngestContext
from services.ingest.keycache import Miss
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


def client_address(request: Request) -> str:
    """The peer's address, as the server saw it (behind a proxy: run uvicorn with
    ``--proxy-headers`` and ``--forwarded-allow-ips`` so this is the client's)."""
    return request.client.host if request.client is not None else "unknown"


def throttled(ctx: IngestContext, address: str, what: str) -> None:
    """429 when ``address`` has failed authentication too often lately."""
    wait = ctx.failures.wait(address)
    if wait > 0:
        raise ApiError(
            429,
            "too_many_failures",
            f"too many {what} from this address; retry after {max(1, math.ceil(wait))} s",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


async def authenticate(
    ctx: IngestContext, key: str | None, *, source: str | None, client: str
) -> WriteKey:
    """The key's record; 401 unknown/revoked, 403 when issued for another source.

    A key this instance knows to be valid is answered from memory. Any other, from an
    address that failed too often lately, is refused with 429 before it is looked up.
    """
    if not key:
        raise ApiError(
            401,
            "missing_key",
            "a write key is required: 'Authorization: Bearer <key>' or Basic with the key "
            "as user name",
            headers=_CHALLENGE,
        )
    found = ctx.keys.cached(key)
    if not isinstance(found, WriteKey) or not found.active:
        throttled(ctx, client, "unknown or revoked write keys")
    try:
        record = found if not isinstance(found, Miss) else await ctx.keys.lookup(key)
    except (SQLAlchemyError, OSError) as exc:
        retry = ctx.settings.ingest.retry_after_s
        raise unavailable(retry, "the key store is unreachable") from exc
    if record is None:
        ctx.failures.failed(client)
        raise ApiError(401, "unknown_key", "unknown write key", headers=_CHALLENGE)
    if not record.active:
        ctx.failures.failed(client)
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
