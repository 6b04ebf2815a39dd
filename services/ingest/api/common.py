"""What every ingest route needs: errors as JSON, bounded body reading, JSON parsing.

The body is read through ``request.stream()`` and refused as soon as it passes the
limit (a Content-Length over it is refused before reading a byte), so an oversized
request never gets buffered or parsed. Gzip bodies (Segment SDKs may send them) are
inflated with the same limit on the inflated size, which defuses gzip bombs.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

_GZIP_MAGIC = b"\x1f\x8b"
# orjson's fixed nesting limit; the events' own (a setting) is checked per field.
_JSON_DEPTH = 1024


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


def json_response(
    body: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def error_response(exc: ApiError) -> Response:
    # "message" mirrors "detail" because Segment SDKs log ``code`` and ``message``.
    body = {"code": exc.code, "detail": exc.detail, "message": exc.detail, **exc.extra}
    return json_response(body, exc.status, exc.headers)


async def handle_api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


def too_large(what: str, limit: int) -> ApiError:
    return ApiError(
        413,
        "payload_too_large",
        f"{what} exceeds the limit of {limit} bytes",
        extra={"limit_bytes": limit},
    )


async def read_body(request: Request, *, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, "bad_request", "Content-Length is not a number")
        if int(declared) > limit:
            raise too_large("request body", limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large("request body", limit)
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding == "gzip":
        return _gunzip(body, limit)
    if encoding != "identity":
        raise ApiError(415, "unsupported_encoding", f"Content-Encoding {encoding!r} unsupported")
    return body


def _gunzip(body: bytes, limit: int) -> bytes:
    """Every member of a gzip body (RFC 1952 allows several), bounded in total.

    Reading only the first member would drop the events of the others while answering
    2xx; bytes after the last member that do not start another are refused, not ignored.
    """
    parts: list[bytes] = []
    size = 0
    rest = body
    while True:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            data = inflater.decompress(rest, limit - size + 1)
        except zlib.error as exc:
            raise ApiError(400, "bad_gzip", f"body is not valid gzip: {exc}") from exc
        size += len(data)
        if size > limit or inflater.unconsumed_tail:
            raise too_large("decompressed request body", limit)
        if not inflater.eof:
            raise ApiError(400, "bad_gzip", "gzip body is truncated")
        parts.append(data)
        rest = inflater.unused_data
        if not rest:
            return b"".join(parts)
        if not rest.startswith(_GZIP_MAGIC):
            raise ApiError(
                400, "bad_gzip", f"{len(rest)} bytes after the gzip stream are not gzip"
            )


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit exceeded"):
            # Well-formed but past what the reader nests; events nest far less.
            raise ApiError(
                422, "too_deep", f"body: nested deeper than the limit of {_JSON_DEPTH} levels"
            ) from exc
        raise ApiError(400, "malformed_json", f"malformed JSON: {exc}") from exc


def unavailable(retry_after_s: int, why: str) -> ApiError:
    return ApiError(
        503,
        "unavailable",
        f"{why}; nothing was accepted, retry later",
        headers={"Retry-After": str(retry_after_s)},
    )
