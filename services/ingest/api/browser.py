"""The paths and documents the browser SDKs use, so they load with only their host changed.

- Segment's analytics-next posts each call to ``/v1/<first letter>`` (``t``rack,
  ``p``age, ``i``dentify, ``g``roup, ``a``lias, ``s``creen) and batches to ``/v1/b``,
  as ``text/plain`` JSON with ``writeKey`` in the body; it starts only after
  ``GET /v1/projects/{writeKey}/settings`` (from its ``cdnURL``).
- Segment's server SDKs (analytics-java among them) post batches to ``/v1/import``.
- RudderStack's SDK starts only after ``GET /sourceConfig/?writeKey=…``; in beacon mode
  it posts ``/beacon/v1/batch?writeKey=…`` (``navigator.sendBeacon`` cannot set headers).

Every call is handled by the Segment-compatible routes' code (``segment.handle``): the
same authentication, limits, mapping and "2xx only after Kafka acknowledged".
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from services.ingest.api.auth import authenticate, client_address, credentials
from services.ingest.api.common import json_response
from services.ingest.api.context import context
from services.ingest.api.cors import check_origin
from services.ingest.api.segment import handle
from services.ingest.domain import segment
from services.ingest.domain.browser_sdks import (
    SEGMENT_SHORT_PATHS,
    rudder_source_config,
    segment_settings,
)

router = APIRouter(tags=["browser"])

IMPORT_PATHS = ("/v1/import", "/v1/import/")
BEACON_PATH = "/beacon/v1/batch"
SETTINGS_PATH = "/v1/projects/{write_key}/settings"
SOURCE_CONFIG_PATHS = ("/sourceConfig/", "/sourceConfig")
# The ones a page sends events to, served without FastAPI's routing (api/direct.py).
HOT_ROUTES = tuple(("POST", f"/v1/{letter}") for letter in SEGMENT_SHORT_PATHS)


def _calls(kind: str, *, query_key: bool = False) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await handle(request, kind, query_key=query_key)

    endpoint.__name__ = f"browser_{kind}"
    return endpoint


_DESCRIPTION = (
    "Segment HTTP tracking API semantics (see the Segment routes); the body may be sent "
    "as text/plain. Answers {success, accepted, rejected} after Kafka acknowledged."
)
for _letter, _kind in SEGMENT_SHORT_PATHS.items():
    router.add_api_route(
        f"/v1/{_letter}",
        _calls(_kind),
        methods=["POST"],
        summary=f"analytics-next {_kind} call",
        description=_DESCRIPTION,
    )
for _path in IMPORT_PATHS:
    router.add_api_route(
        _path,
        _calls("batch"),
        methods=["POST"],
        summary="Segment batch import (server SDKs)",
        description=_DESCRIPTION,
        include_in_schema=not _path.endswith("/"),
    )
router.add_api_route(
    BEACON_PATH,
    _calls("batch", query_key=True),
    methods=["POST"],
    summary="RudderStack beacon batch (write key in ?writeKey=)",
    description=_DESCRIPTION,
)


_HOST = re.compile(r"[A-Za-z0-9.:\[\]-]+")


def _forwarded(request: Request, name: str) -> str:
    """The first value of an ``X-Forwarded-*`` header ("" when absent)."""
    return request.headers.get(name, "").split(",")[0].strip()


def _api_base(request: Request) -> tuple[str, str]:
    """(scheme, host[:port][/root path]) under which browsers reach this ingest.

    Behind a TLS-terminating proxy the request arrives over http, and a page served
    over https may not send to http: the proxy's X-Forwarded-Proto/-Host say how the
    browser reached us. Trusting them is safe here, the answer goes only to the asker.
    """
    base = request.base_url
    proto = _forwarded(request, "x-forwarded-proto").lower()
    host = _forwarded(request, "x-forwarded-host")
    scheme = proto if proto in ("http", "https") else base.scheme
    netloc = host if _HOST.fullmatch(host) else base.netloc
    return scheme, f"{netloc}{base.path.rstrip('/')}"


@router.get(
    SETTINGS_PATH,
    summary="analytics-next project settings (point its cdnURL at ingest)",
    description="The minimal settings analytics-next needs to load, with its Segment.io "
    "integration sending to this ingest. 401 unknown or revoked key, 403 key of another "
    "source or origin not allowed for the key.",
)
async def project_settings(request: Request, write_key: str) -> Response:
    ctx = context(request)
    record = await authenticate(
        ctx, write_key, source=segment.SOURCE, client=client_address(request)
    )
    check_origin(request, record)
    scheme, host = _api_base(request)
    return json_response(segment_settings(write_key, f"{host}/v1", scheme))


async def source_config(request: Request) -> Response:
    ctx = context(request)
    key = request.query_params.get("writeKey") or credentials(request)
    record = await authenticate(ctx, key, source=segment.SOURCE, client=client_address(request))
    check_origin(request, record)
    assert key is not None  # authenticate refused a missing one
    return json_response(
        rudder_source_config(
            source_id=record.id, name=record.name, write_key=key, updated_at=record.created_at
        )
    )


for _path in SOURCE_CONFIG_PATHS:
    router.add_api_route(
        _path,
        source_config,
        methods=["GET"],
        summary="RudderStack source configuration (point its configUrl at ingest)",
        description="What RudderStack's JavaScript SDK needs to load; the write key comes "
        "as ?writeKey= or Basic auth. 401 unknown or revoked key, 403 key of another "
        "source or origin not allowed for the key.",
        include_in_schema=_path.endswith("/"),
    )
