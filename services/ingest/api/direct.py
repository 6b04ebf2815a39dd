"""The hot tracking routes served straight from ASGI, in front of FastAPI's router.

FastAPI's routing, dependency solving and exception middleware cost several times
what a one-event ``POST /v1/events`` does itself. The endpoints here take a plain
Starlette ``Request`` and raise ``ApiError`` anyway, so this middleware calls them
directly for an exact method and path, and lets everything else through to FastAPI.
The FastAPI routes stay registered: they carry the OpenAPI description (and would
serve the request the same way if this middleware were removed).

It sits inside the metrics and body-limit middleware, so these requests are counted,
timed and bounded like every other; it records the route in the scope for the
metrics' route label, as the router would.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from services.ingest.api.common import ApiError, error_response

Endpoint = Callable[[Request], Awaitable[Response]]


class DirectRoutes:
    def __init__(self, app: ASGIApp, *, routes: Mapping[tuple[str, str], Route]) -> None:
        """``routes`` maps (method, path) to the route whose endpoint to call."""
        self._app = app
        self._routes: dict[tuple[str, str], tuple[Route, Endpoint]] = {
            key: (route, route.endpoint) for key, route in routes.items()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            found = self._routes.get((scope["method"], scope["path"]))
            if found is not None:
                route, endpoint = found
                scope["route"] = route
                response = await _answer(endpoint, Request(scope, receive))
                await response(scope, receive, send)
                return
        await self._app(scope, receive, send)


async def _answer(endpoint: Endpoint, request: Request) -> Response:
    try:
        return await endpoint(request)
    except ApiError as exc:
        return error_response(exc)
    except ClientDisconnect:
        # Gone before its body arrived, so nothing was published; the answer is lost
        # (uvicorn drops it) but counts as the client's error, not the server's.
        detail = "the client closed the connection before sending the whole body"
        return error_response(ApiError(400, "client_disconnected", detail))
    except HTTPException as exc:  # the body limit middleware refusing while we read
        code = "payload_too_large" if exc.status_code == 413 else "http_error"
        return error_response(ApiError(exc.status_code, code, exc.detail))


def direct_routes(
    routes: Iterable[BaseRoute], wanted: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], Route]:
    """The route for each wanted (method, path); a missing one is a wiring bug.

    ``routes`` are those of the routers the app includes without a prefix.
    """
    candidates = list(routes)
    found: dict[tuple[str, str], Route] = {}
    for method, path in wanted:
        for route in candidates:
            if isinstance(route, Route) and route.path == path and method in (route.methods or ()):
                found[method, path] = route
                break
        else:
            raise LookupError(f"no route {method} {path} to serve directly")
    return found
