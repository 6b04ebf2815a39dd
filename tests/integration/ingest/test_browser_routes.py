"""The browser SDKs' paths, documents and CORS on the real app (real Kafka, PostgreSQL)."""

from __future__ import annotations

import argparse
import asyncio
import re
from typing import Any

import httpx
import orjson
import pytest

from services.ingest import cli
from shared.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.integration.ingest.helpers import Keys, basic, bearer, consume, unique, value

ADMIN = bearer(ADMIN_TOKEN)
SITE = "https://www.shop.test"
TEXT = {"Content-Type": "text/plain"}


def _message(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "messageId": unique(kind), "anonymousId": "anon-1", **fields}


async def _arrived(settings: Settings, *ids: str) -> dict[str, dict[str, Any]]:
    found = await consume(settings, settings.kafka.topics().events, ids)
    return {key: value(message) for key, message in found.items()}


async def test_analytics_next_short_paths_take_text_plain_with_the_key_in_the_body(
    client: httpx.AsyncClient, keys: Keys, ingest_settings: Settings
) -> None:
    calls = {
        "t": _message("track", event="Signed Up", properties={"plan": "pro"}),
        "p": _message("page", name="Pricing"),
        "i": _message("identify", userId="u-7", traits={"plan": "pro"}),
        "g": _message("group", userId="u-7", groupId="acme"),
        "a": _message("alias", userId="u-7", previousId="anon-1"),
        "s": _message("screen", name="Home"),
    }
    for letter, message in calls.items():
        body = orjson.dumps({**message, "writeKey": keys.web})
        response = await client.post(
            f"/v1/{letter}", content=body, headers={**TEXT, "Origin": SITE}
        )
        assert response.status_code == 200, (letter, response.text)
        assert response.json()["accepted"] == [message["messageId"]]
        assert response.headers["access-control-allow-origin"] == "*"
    found = await _arrived(ingest_settings, *(m["messageId"] for m in calls.values()))
    types = {found[m["messageId"]]["type"] for m in calls.values()}
    assert types == {"signed_up", "page_view", "identify", "group", "alias", "screen_view"}
    assert found[calls["i"]["messageId"]]["properties"] == {"plan": "pro"}


async def test_batches_on_v1_b_and_v1_import(
    client: httpx.AsyncClient, keys: Keys, ingest_settings: Settings
) -> None:
    batched = [_message("track", event="Clicked"), _message("page")]
    response = await client.post(
        "/v1/b",
        content=orjson.dumps({"batch": batched, "writeKey": keys.web, "sentAt": None}),
        headers=TEXT,
    )
    assert response.status_code == 200, response.text
    imported = [_message("track", event="Imported"), _message("track", event="Imported")]
    for path, message in zip(("/v1/import", "/v1/import/"), imported, strict=True):
        answer = await client.post(path, json={"batch": [message]}, headers=basic(keys.web))
        assert answer.status_code == 200, (path, answer.text)
    await _arrived(ingest_settings, *(m["messageId"] for m in [*batched, *imported]))


async def test_rudder_beacon_takes_the_key_from_the_query_and_identify_context_traits(
    client: httpx.AsyncClient, keys: Keys, ingest_settings: Settings
) -> None:
    identify = _message("identify", userId="u-9", context={"traits": {"email": "a@b.test"}})
    track = _message("track", event="Beaconed")
    response = await client.post(
        "/beacon/v1/batch",
        params={"writeKey": keys.web},
        content=orjson.dumps({"batch": [identify, track], "sentAt": None}),
        headers={**TEXT, "Origin": SITE},
    )
    assert response.status_code == 200, response.text
    found = await _arrived(ingest_settings, identify["messageId"], track["messageId"])
    assert found[identify["messageId"]]["properties"] == {"email": "a@b.test"}


async def test_query_keys_are_checked_like_any_other(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    body = orjson.dumps({"batch": [_message("track", event="X")]})
    unknown = await client.post(
        "/beacon/v1/batch", params={"writeKey": "kp_web_nope0123456789"}, content=body,
        headers={"Origin": SITE},
    )
    assert unknown.status_code == 401
    assert unknown.json()["code"] == "unknown_key"
    assert unknown.headers["access-control-allow-origin"] == "*"  # the SDK can read it
    wrong = await client.post("/beacon/v1/batch", params={"writeKey": keys.crm}, content=body)
    assert wrong.status_code == 403
    assert "'crm'" in wrong.json()["detail"]
    missing = await client.post("/beacon/v1/batch", content=body)
    assert missing.status_code == 401
    assert missing.json()["code"] == "missing_key"


async def test_segment_settings_point_analytics_next_at_this_ingest(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    response = await client.get(f"/v1/projects/{keys.web}/settings", headers={"Origin": SITE})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    integration = response.json()["integrations"]["Segment.io"]
    assert integration["apiHost"] == "ingest.test/v1"
    assert integration["protocol"] == "http"
    assert integration["apiKey"] == keys.web
    proxied = await client.get(
        f"/v1/projects/{keys.web}/settings",
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "ingest.example.com"},
    )
    behind_tls = proxied.json()["integrations"]["Segment.io"]
    assert (behind_tls["apiHost"], behind_tls["protocol"]) == ("ingest.example.com/v1", "https")
    unknown = await client.get("/v1/projects/kp_web_nope0123456789/settings")
    assert unknown.status_code == 401
    assert (await client.get(f"/v1/projects/{keys.support}/settings")).status_code == 403


@pytest.mark.parametrize("path", ["/sourceConfig/", "/sourceConfig"])
async def test_rudder_source_config(client: httpx.AsyncClient, keys: Keys, path: str) -> None:
    # As the SDK asks: key in the query and as Basic auth, with its version parameters.
    params = {"p": "npm", "v": "3.34.1", "build": "modern", "writeKey": keys.web}
    response = await client.get(path, params=params, headers=basic(keys.web))
    assert response.status_code == 200, response.text
    source = response.json()["source"]
    assert source["enabled"] is True and source["destinations"] == []
    only_basic = await client.get(path, headers=basic(keys.web))
    assert only_basic.status_code == 200
    refused = await client.get(path, params={"writeKey": "kp_web_nope0123456789"})
    assert refused.status_code == 401


async def test_preflights_on_every_tracking_route(client: httpx.AsyncClient, keys: Keys) -> None:
    asked = {
        "Origin": "https://anyone.test",
        "Access-Control-Request-Headers": "authorization,content-type,anonymousid,sentat",
    }
    posts = ["/v1/t", "/v1/b", "/v1/track", "/v1/batch", "/v1/events", "/v1/import",
             "/beacon/v1/batch"]
    gets = [f"/v1/projects/{keys.web}/settings", "/sourceConfig/"]
    for method, paths in (("POST", posts), ("GET", gets)):
        for path in paths:
            response = await client.options(
                path, headers={**asked, "Access-Control-Request-Method": method}
            )
            assert response.status_code == 204, (path, response.text)
            assert response.headers["access-control-allow-origin"] == "*"
            assert method in response.headers["access-control-allow-methods"]
    webhook = await client.options(
        "/v1/webhooks/zendesk", headers={**asked, "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in webhook.headers
    # Preflights are counted under the route template, never the key in the path.
    metrics = (await client.get("/metrics")).text
    assert 'method="OPTIONS",route="/v1/projects/{write_key}/settings"' in metrics
    assert keys.web not in metrics


async def test_a_key_limited_to_its_sites_refuses_other_origins(
    client: httpx.AsyncClient, ingest_settings: Settings
) -> None:
    created = await client.post(
        "/v1/admin/keys", headers=ADMIN,
        json={"source": "web", "name": "shop site",
              "allowed_origins": [SITE + "/", "https://*.shop.test"]},
    )
    assert created.status_code == 201, created.text
    record = created.json()
    assert record["allowed_origins"] == [SITE, "https://*.shop.test"]
    key = record["key"]
    ok = _message("track", event="Allowed")
    body = orjson.dumps({**ok, "writeKey": key})
    accepted = await client.post("/v1/t", content=body, headers={**TEXT, "Origin": SITE})
    assert accepted.status_code == 200, accepted.text
    sub = await client.post("/v1/p", content=orjson.dumps({**_message("page"), "writeKey": key}),
                            headers={**TEXT, "Origin": "https://blog.shop.test"})
    assert sub.status_code == 200, sub.text
    for refused in (
        await client.post("/v1/t", content=body, headers={**TEXT, "Origin": "https://evil.test"}),
        await client.post("/v1/track", content=body, headers={**basic(key), "Origin": "null"}),
        await client.post("/v1/events", json={"type": "x"},
                          headers={**bearer(key), "Origin": "https://evil.test"}),
        await client.get(f"/v1/projects/{key}/settings", headers={"Origin": "https://evil.test"}),
    ):
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "origin_not_allowed"
        assert refused.headers["access-control-allow-origin"] == "*"
    refused_detail = (await client.post(
        "/v1/t", content=body, headers={**TEXT, "Origin": "https://evil.test"}
    )).json()["detail"]
    assert "'https://evil.test'" in refused_detail
    # A server (no Origin) is not a browser on another site.
    server = await client.post("/v1/track", content=body, headers=basic(key))
    assert server.status_code == 200
    await _arrived(ingest_settings, ok["messageId"])

    # Lifting the limit takes effect at once on this instance.
    lifted = await client.put(f"/v1/admin/keys/{record['id']}/origins", headers=ADMIN,
                              json={"allowed_origins": []})
    assert lifted.status_code == 200 and lifted.json()["allowed_origins"] == []
    again = await client.post("/v1/t", content=body, headers={**TEXT, "Origin": "https://evil.test"})
    assert again.status_code == 200


async def test_admin_api_refuses_bad_origins_by_name(client: httpx.AsyncClient) -> None:
    bad = await client.post("/v1/admin/keys", headers=ADMIN,
                            json={"source": "web", "name": "x", "allowed_origins": ["shop.test"]})
    assert bad.status_code == 422
    assert "shop.test" in bad.text
    missing = await client.put("/v1/admin/keys/nope/origins", headers=ADMIN,
                               json={"allowed_origins": [SITE]})
    assert missing.status_code == 404


def _cli(argv: list[str], settings: Settings) -> int:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.run(args, settings)
    return code


async def test_cli_sets_origins(
    client: httpx.AsyncClient, ingest_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    # The CLI runs its own event loop (asyncio.run), hence the thread.
    created = await asyncio.to_thread(
        _cli, ["keys", "create", "--source", "web", "--name", "cli site",
               "--allowed-origin", SITE], ingest_settings,
    )
    assert created == 0
    out = capsys.readouterr().out
    assert f"allowed origins: {SITE}" in out
    key = re.search(r"^key:\s+(\S+)", out, re.MULTILINE)
    key_id = re.search(r"^id:\s+(\S+)", out, re.MULTILINE)
    assert key is not None and key_id is not None
    body = orjson.dumps({**_message("track", event="Cli"), "writeKey": key[1]})
    refused = await client.post("/v1/t", content=body, headers={"Origin": "https://evil.test"})
    assert refused.status_code == 403
    assert await asyncio.to_thread(
        _cli, ["keys", "origins", key_id[1], "not an origin"], ingest_settings
    ) == 2
    assert "not an origin" in capsys.readouterr().out
    assert await asyncio.to_thread(_cli, ["keys", "origins", key_id[1]], ingest_settings) == 2
    assert await asyncio.to_thread(
        _cli, ["keys", "origins", key_id[1], "--any"], ingest_settings
    ) == 0
    assert "any origin" in capsys.readouterr().out
