"""DirectRoutes: hot routes answered in front of the router, the rest passed through."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.ingest.api.common import ApiError
from services.ingest.api.direct import DirectRoutes, direct_routes

seen_routes: list[Any] = []


async def hot(request: Request) -> Response:
    seen_routes.append(request.scope.get("route"))
    body = await request.body()
    if body == b"refuse":
        raise ApiError(422, "invalid_body", "refused", headers={"X-Why": "test"})
    return Response(b"direct:" + body)


async def routed(_request: Request) -> Response:
    return Response(b"router")


def _app() -> Starlette:
    routes = [Route("/hot", hot, methods=["POST"]), Route("/hot", routed, methods=["GET"])]
    app = Starlette(routes=[*routes, Route("/other", routed, methods=["POST"])])
    app.add_middleware(DirectRoutes, routes=direct_routes(routes, [("POST", "/hot")]))
    return app


async def _post(path: str, body: bytes, method: str = "POST") -> httpx.Response:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path, content=body)


async def test_the_hot_route_is_answered_directly_with_its_route_recorded() -> None:
    seen_routes.clear()
    response = await _post("/hot", b"hello")
    assert response.text == "direct:hello"
    assert [getattr(r, "path", None) for r in seen_routes] == ["/hot"]


async def test_api_errors_keep_their_format_status_and_headers() -> None:
    response = await _post("/hot", b"refuse")
    assert response.status_code == 422
    assert response.headers["X-Why"] == "test"
    assert orjson.loads(response.content) == {
        "code": "invalid_body", "detail": "refused", "message": "refused"
    }


async def test_other_methods_and_paths_go_through_the_router() -> None:
    assert (await _post("/hot", b"", method="GET")).text == "router"
    assert (await _post("/other", b"x")).text == "router"
    assert (await _post("/hot/", b"x")).status_code in (307, 404, 405)


def test_a_route_that_does_not_exist_is_a_wiring_error() -> None:
    with pytest.raises(LookupError, match="POST /missing"):
        direct_routes([Route("/hot", hot, methods=["POST"])], [("POST", "/missing")])
