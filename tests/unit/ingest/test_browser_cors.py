"""Browser tracking without servers: allowed origins, CORS preflights, SDK documents."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.ingest.api.common import ApiError, error_response
from services.ingest.api.cors import ALLOWED_HEADERS, BrowserCors, check_origin
from services.ingest.domain.browser_sdks import rudder_source_config, segment_settings
from services.ingest.domain.origins import (
    MAX_ORIGINS,
    OriginError,
    normalize_origin,
    normalize_origins,
    origin_allowed,
)
from services.ingest.repository import WriteKey

SITE = "https://shop.example.com"


@pytest.mark.parametrize(
    ("given", "normalized"),
    [
        ("https://Shop.Example.com", "https://shop.example.com"),
        ("https://shop.example.com/", "https://shop.example.com"),
        ("https://shop.example.com:443", "https://shop.example.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("https://*.example.com", "https://*.example.com"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_origins_are_normalized_as_browsers_send_them(given: str, normalized: str) -> None:
    assert normalize_origin(given) == normalized


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("shop.example.com", "must start with http"),
        ("ftp://shop.example.com", "must start with http"),
        ("https://shop.example.com/path", "no path"),
        ("https://user@shop.example.com", "no path or user"),
        ("https://", "not a host name"),
        ("https://a.*.example.com", "not a host name"),
        ("https://shop.example.com:99999", "invalid port"),
        ("https://[::1", "Invalid IPv6 URL"),
        ("https://shop\x00.example.com", "not a host name"),
        ("https://shop_1.example.com", "not a host name"),
    ],
)
def test_bad_origins_are_refused_naming_the_entry(given: str, problem: str) -> None:
    with pytest.raises(OriginError, match=problem) as caught:
        normalize_origin(given)
    assert repr(given) in str(caught.value)


def test_origin_lists_drop_duplicates_and_are_bounded() -> None:
    assert normalize_origins([SITE, SITE.upper(), "http://a.test"]) == (SITE, "http://a.test")
    with pytest.raises(OriginError, match=f"at most {MAX_ORIGINS}"):
        normalize_origins(f"https://s{i}.example.com" for i in range(MAX_ORIGINS + 1))


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (SITE, True),
        ("HTTPS://SHOP.EXAMPLE.COM", True),
        ("https://www.example.com", True),  # by the wildcard
        ("https://a.b.example.com", True),
        ("https://example.com", False),  # the wildcard needs a subdomain
        ("https://evilexample.com", False),
        ("http://www.example.com", False),  # another scheme
        ("https://www.example.com:8443", False),  # another port
        ("https://shop.example.com.evil.test", False),
        ("null", False),
    ],
)
def test_origin_matching(origin: str, allowed: bool) -> None:
    assert origin_allowed(origin, (SITE, "https://*.example.com")) is allowed


def _key(*origins: str) -> WriteKey:
    return WriteKey("id", "web", "site", datetime.now(UTC), None, "hash", origins)


def _request(origin: str | None) -> Request:
    headers = [] if origin is None else [(b"origin", origin.encode())]
    return Request({"type": "http", "method": "POST", "path": "/v1/t", "headers": headers})


def test_check_origin_refuses_other_origins_by_name() -> None:
    check_origin(_request("https://evil.test"), _key())  # no list: any origin
    check_origin(_request(SITE), _key(SITE))
    check_origin(_request(None), _key(SITE))  # servers send no Origin
    with pytest.raises(ApiError) as caught:
        check_origin(_request("https://evil.test"), _key(SITE))
    assert caught.value.status == 403
    assert caught.value.code == "origin_not_allowed"
    assert "'https://evil.test'" in caught.value.detail


async def _track(request: Request) -> Response:
    if request.headers.get("x-fail"):
        return error_response(ApiError(429, "rate_limited", "slow", headers={"Retry-After": "3"}))
    return Response(b"ok")


async def _settings(_request: Request) -> Response:
    return Response(b"{}")


async def _other(_request: Request) -> Response:
    return Response(b"other")


def _app() -> Starlette:
    tracking = [
        Route("/v1/t", _track, methods=["POST"]),
        Route("/v1/projects/{write_key}/settings", _settings, methods=["GET"]),
    ]
    app = Starlette(routes=[*tracking, Route("/v1/admin/keys", _other, methods=["POST"])])
    app.add_middleware(BrowserCors, routes=tracking)
    return app


async def _call(method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path, headers=headers)


def _preflight(method: str, headers: str = "") -> dict[str, str]:
    asked = {"Origin": "https://any.site", "Access-Control-Request-Method": method}
    if headers:
        asked["Access-Control-Request-Headers"] = headers
    return asked


async def test_preflight_allows_any_origin_and_the_sdk_headers() -> None:
    # What Chromium sends for analytics-next and RudderStack's XHR delivery.
    asked = "authorization,content-type,anonymousid,sentat,x-retry-count,rsa-retry-attempt"
    response = await _call("OPTIONS", "/v1/t", _preflight("POST", asked))
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers
    assert response.headers["access-control-allow-methods"] == "OPTIONS, POST"
    listed = response.headers["access-control-allow-headers"].split(",")
    allowed = {h.strip().lower() for h in listed}
    assert set(asked.split(",")) <= allowed
    assert allowed == {h.lower() for h in ALLOWED_HEADERS}
    assert int(response.headers["access-control-max-age"]) > 0


async def test_preflight_for_a_private_network_address() -> None:
    asked = {**_preflight("POST"), "Access-Control-Request-Private-Network": "true"}
    response = await _call("OPTIONS", "/v1/t", asked)
    assert response.status_code == 204
    assert response.headers["access-control-allow-private-network"] == "true"
    plain = await _call("OPTIONS", "/v1/t", _preflight("POST"))
    assert "access-control-allow-private-network" not in plain.headers


async def test_preflight_of_a_templated_route() -> None:
    response = await _call("OPTIONS", "/v1/projects/kp_web_x/settings", _preflight("GET"))
    assert response.status_code == 204
    assert response.headers["access-control-allow-methods"] == "GET, OPTIONS"


async def test_preflight_refusals_name_the_method_or_header() -> None:
    response = await _call("OPTIONS", "/v1/t", _preflight("DELETE"))
    assert response.status_code == 405
    assert "not DELETE" in orjson.loads(response.content)["detail"]
    response = await _call("OPTIONS", "/v1/t", _preflight("POST", "content-type, X-Secret"))
    assert response.status_code == 403
    body = orjson.loads(response.content)
    assert body["code"] == "header_not_allowed"
    assert "X-Secret" in body["detail"]


async def test_answers_to_browsers_are_readable_errors_included() -> None:
    response = await _call("POST", "/v1/t", {"Origin": "https://any.site"})
    assert response.text == "ok"
    assert response.headers["access-control-allow-origin"] == "*"
    refused = await _call("POST", "/v1/t", {"Origin": "https://any.site", "X-Fail": "1"})
    assert refused.status_code == 429
    assert refused.headers["access-control-allow-origin"] == "*"
    assert refused.headers["access-control-expose-headers"] == "Retry-After"


async def test_other_routes_and_servers_get_no_cors_headers() -> None:
    admin = await _call("OPTIONS", "/v1/admin/keys", _preflight("POST"))
    assert "access-control-allow-origin" not in admin.headers
    server = await _call("POST", "/v1/t", {})
    assert server.text == "ok"
    assert "access-control-allow-origin" not in server.headers


def test_segment_settings_point_the_segment_integration_at_ingest() -> None:
    doc = segment_settings("kp_web_x", "ingest.example.com/v1", "https")
    assert list(doc["integrations"]) == ["Segment.io"]  # more would load CDN destinations
    integration = doc["integrations"]["Segment.io"]
    assert (integration["apiKey"], integration["apiHost"], integration["protocol"]) == (
        "kp_web_x", "ingest.example.com/v1", "https"
    )
    assert doc["metrics"]["sampleRate"] == 0


def test_rudder_source_config_has_what_the_sdk_checks() -> None:
    doc = rudder_source_config(
        source_id="id-1", name="site", write_key="kp_web_x", updated_at=datetime.now(UTC)
    )
    source = doc["source"]
    assert source["id"] == "id-1" and source["enabled"] is True
    assert source["destinations"] == []
    assert source["config"]["statsCollection"]["errors"]["enabled"] is False
