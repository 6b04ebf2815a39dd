"""CORS for the tracking routes, so tracking snippets on any website can reach ingest.

Browsers ask before a cross-origin request that carries ``Authorization`` or a JSON
content type (analytics-next sends Basic auth and ``X-Retry-Count``, RudderStack's SDK
sends Basic auth, JSON, ``AnonymousId``, ``SentAt`` and its ``Rsa-*`` retry headers).
This middleware answers those preflights for any origin, and marks every answer of a
tracking route as readable by the page, errors included, so an SDK sees a 4xx (and
drops the event) or a 429/503 with its Retry-After (and retries) instead of a network
error.

Write keys authenticate, never cookies: credentials are not allowed, so the wildcard
origin is correct and no answer varies by origin. Which origins may use a particular
key is that key's setting, checked by the route once it knows the key
(``check_origin``): a preflight carries no credentials to look it up by.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.ingest.api.common import ApiError, error_response
from services.ingest.domain.origins import origin_allowed
from services.ingest.repository import WriteKey

# Request headers the SDKs send, read from their bundles (segment-analytics-next
# 1.84.3 and @rudderstack/analytics-js 3.34.1), plus what our own API documents.
ALLOWED_HEADERS = (
    "Accept",
    "Authorization",
    "Content-Type",
    "Content-Encoding",
    "AnonymousId",
    "SentAt",
    "X-Retry-Count",
    "Rsa-Recovered",
    "Rsa-Retry-Attempt",
    "Rsa-Retry-Reason",
    "Rsa-Since-First-Attempt",
    "Rsa-Since-Last-Attempt",
)
_ALLOWED_LOWER = frozenset(h.lower() for h in ALLOWED_HEADERS)
# Chromium caps how long it keeps a preflight at two hours; more would be ignored.
MAX_AGE_S = 7200
# Segment's and RudderStack's SDKs read Retry-After on 429 and 503 to pace retries.
_EXPOSED = b"Retry-After"
_READABLE = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-expose-headers", _EXPOSED),
]


@dataclass(frozen=True, slots=True)
class TrackingRoute:
    """A tracking path's template and methods; doubles as the metrics' route label."""

    path: str
    methods: frozenset[str]


class BrowserCors:
    def __init__(self, app: ASGIApp, *, routes: Iterable[BaseRoute]) -> None:
        """``routes``: the tracking routes (templates with ``{name}`` segments match one
        path segment each)."""
        self._app = app
        self._exact: dict[str, TrackingRoute] = {}
        self._patterns: list[tuple[re.Pattern[str], TrackingRoute]] = []
        for route in routes:
            if not isinstance(route, Route):
                continue
            tracking = TrackingRoute(route.path, frozenset(route.methods or ()) - {"HEAD"})
            if "{" in route.path:
                regex = "^" + re.sub(r"\{[^/}]+\}", "[^/]+", route.path) + "$"
                self._patterns.append((re.compile(regex), tracking))
            else:
                self._exact[route.path] = tracking

    def _match(self, path: str) -> TrackingRoute | None:
        found = self._exact.get(path)
        if found is not None:
            return found
        for pattern, route in self._patterns:
            if pattern.match(path):
                return route
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        route = self._match(scope["path"])
        if route is None:
            await self._app(scope, receive, send)
            return
        # Servers post here at high rates: look for Origin without building a dict.
        if not any(name == b"origin" for name, _ in scope["headers"]):
            await self._app(scope, receive, send)  # not a browser's cross-origin request
            return
        if scope["method"] == "OPTIONS":
            headers = dict(scope["headers"])
            requested = headers.get(b"access-control-request-method")
            if requested is not None:
                scope.setdefault("route", route)  # a bounded label for the metrics
                response = preflight(route, requested.decode("latin-1"),
                                     headers.get(b"access-control-request-headers", b""))
                if headers.get(b"access-control-request-private-network") == b"true":
                    # Chromium asks before a public page may reach a private address
                    # (ingest inside a company network, for its intranet pages).
                    response.headers["Access-Control-Allow-Private-Network"] = "true"
                await response(scope, receive, send)
                return

        async def readable(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *_READABLE]
            await send(message)

        await self._app(scope, receive, readable)


def preflight(route: TrackingRoute, method: str, raw_headers: bytes) -> Response:
    """The answer to a preflight: 204 with what is allowed, or a 4xx naming the refusal."""
    allow_methods = ", ".join(sorted({*route.methods, "OPTIONS"}))
    if method.upper() not in route.methods:
        return _refused(ApiError(
            405,
            "method_not_allowed",
            f"{route.path} accepts {', '.join(sorted(route.methods))}, not {method}",
            headers={"Allow": allow_methods},
        ))
    names = [n.strip() for n in raw_headers.decode("latin-1").split(",") if n.strip()]
    refused = [n for n in names if n.lower() not in _ALLOWED_LOWER]
    if refused:
        return _refused(ApiError(
            403,
            "header_not_allowed",
            f"request header(s) {', '.join(refused)} not allowed on {route.path}; allowed: "
            + ", ".join(ALLOWED_HEADERS),
        ))
    return Response(
        status_code=204,
        headers={
            "Access-Control-Allow-Origin": "*",
            "Access-Control-Allow-Methods": allow_methods,
            "Access-Control-Allow-Headers": ", ".join(ALLOWED_HEADERS),
            "Access-Control-Max-Age": str(MAX_AGE_S),
        },
    )


def _refused(exc: ApiError) -> Response:
    response = error_response(exc)
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def check_origin(request: Request, record: WriteKey) -> None:
    """403 naming the origin when the key is limited to other origins.

    A request without ``Origin`` is let through: browsers always send it on the
    cross-origin requests this guards against, servers are not restricted by it.
    """
    if not record.allowed_origins:
        return
    origin = request.headers.get("origin")
    if origin is None or origin_allowed(origin, record.allowed_origins):
        return
    raise ApiError(
        403,
        "origin_not_allowed",
        f"origin {origin!r} may not use this write key (it is limited to its own sites: "
        "see `kpipulse keys origins`)",
    )

