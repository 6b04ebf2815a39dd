"""Events no sender may slip past ingest: far-off times, deep nesting, and their letters."""

from __future__ import annotations

import gzip

import httpx
import orjson
import pytest

from shared.bus.dlq import describe
from shared.settings import Settings
from tests.integration.ingest.helpers import Keys, Secrets, basic, bearer, consume, unique
from tests.integration.ingest.test_webhooks import standard_headers
from tests.support.kafka import consume_matching

POISON_TIME = "9999-12-31T23:59:59-14:00"
TOO_LATE = f"occurred_at {POISON_TIME} is more than 24 h in the future"
TOO_DEEP = "nested deeper than the limit of 32 levels"


def deep_json(depth: int, marker: str = "x") -> bytes:
    return b'{"k":' * depth + orjson.dumps(marker) + b"}" * depth


async def test_an_event_of_the_year_9999_is_422_naming_field_and_bound(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    response = await client.post(
        "/v1/events", headers=bearer(keys.web),
        json={"type": "signup", "occurred_at": POISON_TIME},
    )
    assert response.status_code == 422, response.text
    assert response.json()["rejected"][0]["reason"] == TOO_LATE
    early = await client.post(
        "/v1/events", headers=bearer(keys.web),
        json={"type": "signup", "occurred_at": "1970-01-01T00:00:00Z"},
    )
    assert early.status_code == 422
    assert "before the earliest accepted 2000-01-01T00:00:00+00:00" in early.text


@pytest.mark.parametrize("route", ["/v1/track", "/v1/batch"])
async def test_segment_times_are_bounded(
    client: httpx.AsyncClient, keys: Keys, route: str
) -> None:
    message = {"type": "track", "event": "Signed Up", "userId": "u", "timestamp": POISON_TIME}
    body = {"batch": [message]} if route == "/v1/batch" else message
    response = await client.post(route, headers=basic(keys.web), json=body)
    assert response.status_code == 422, response.text
    assert TOO_LATE in response.json()["detail"]


@pytest.mark.parametrize("route", ["/v1/events", "/v1/track"])
@pytest.mark.parametrize("depth", [33, 973, 1000, 1023])
async def test_deep_properties_are_422_naming_field_and_limit(
    client: httpx.AsyncClient, keys: Keys, route: str, depth: int
) -> None:
    if route == "/v1/events":
        body = b'{"type":"signup","properties":' + deep_json(depth) + b"}"
    else:
        body = b'{"type":"track","event":"Signed Up","userId":"u","properties":' + (
            deep_json(depth) + b"}"
        )
    response = await client.post(
        route, headers={**basic(keys.web), "Content-Type": "application/json"}, content=body
    )
    assert response.status_code == 422, response.text[:300]
    assert f"properties: {TOO_DEEP}" in response.json()["detail"]


async def test_json_past_the_readers_depth_is_422(client: httpx.AsyncClient, keys: Keys) -> None:
    body = b'{"type":"signup","context":' + deep_json(1100) + b"}"
    response = await client.post("/v1/events", headers=bearer(keys.web), content=body)
    assert response.status_code == 422
    assert response.json()["detail"] == "body: nested deeper than the limit of 1024 levels"


async def test_a_valid_event_beside_a_300_deep_one_is_published_and_the_other_lettered(
    client: httpx.AsyncClient, keys: Keys, ingest_settings: Settings
) -> None:
    good, bad = unique("good"), unique("deep")
    body = (
        b'{"batch":[{"event_id":"' + good.encode() + b'","type":"signup"},'
        b'{"event_id":"' + bad.encode() + b'","type":"signup","properties":'
        + deep_json(300, bad) + b"}]}"
    )
    response = await client.post("/v1/events", headers=bearer(keys.web), content=body)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == [good]
    assert response.json()["rejected"] == [{"index": 1, "reason": f"properties: {TOO_DEEP}"}]
    topics = ingest_settings.kafka.topics()
    await consume(ingest_settings, topics.events, [good])
    (letter,) = await consume_matching(ingest_settings, topics.events_dlq, bad.encode())
    assert letter.value == body  # the request's own bytes, never re-encoded
    assert letter.key == bad.encode()
    assert describe(letter)["reason"] == f"index 1: properties: {TOO_DEEP}"


async def test_a_large_letter_is_cut_with_a_marker(
    client: httpx.AsyncClient, keys: Keys, ingest_settings: Settings
) -> None:
    marker = unique("big")
    padding = "p" * 200_000
    body = orjson.dumps({"batch": [
        {"type": "signup"},
        {"type": "signup", "properties": {"m": marker, "pad": padding, "deep": orjson.loads(
            deep_json(40))}},
    ]})
    response = await client.post("/v1/events", headers=bearer(keys.web), content=body)
    assert response.status_code == 200, response.text
    letters = await consume_matching(
        ingest_settings, ingest_settings.kafka.topics().events_dlq, marker.encode()
    )
    limit = ingest_settings.ingest.max_dead_letter_bytes
    assert len(letters[0].value) <= limit
    assert letters[0].value.endswith(f" of {len(body)} bytes]".encode())


async def test_webhook_times_and_nesting_are_bounded(
    client: httpx.AsyncClient, secrets: Secrets
) -> None:
    body = orjson.dumps({"type": "invoice.paid", "timestamp": POISON_TIME, "data": {}})
    url, secret = "/v1/webhooks/standard/crm", secrets.standard["crm"][0]
    late = await client.post(url, content=body, headers=standard_headers(secret, body, unique()))
    assert late.status_code == 422, late.text
    assert TOO_LATE in late.json()["detail"]
    body = b'{"type":"invoice.paid","data":' + deep_json(500) + b"}"
    refused = await client.post(
        url, content=body, headers=standard_headers(secret, body, unique())
    )
    assert refused.status_code == 422
    assert f"properties: {TOO_DEEP}" in refused.json()["detail"]


async def test_every_gzip_member_is_published_and_trailing_bytes_refused(
    client: httpx.AsyncClient, keys: Keys, ingest_settings: Settings
) -> None:
    first, second = unique("m1"), unique("m2")
    body = gzip.compress(b'[{"type":"signup","event_id":"' + first.encode() + b'"},') + (
        gzip.compress(b'{"type":"signup","event_id":"' + second.encode() + b'"}]')
    )
    headers = {**bearer(keys.web), "Content-Encoding": "gzip"}
    response = await client.post("/v1/events", headers=headers, content=body)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == [first, second]
    await consume(ingest_settings, ingest_settings.kafka.topics().events, [first, second])
    one = gzip.compress(b'{"type":"signup"}')
    garbage = await client.post("/v1/events", headers=headers, content=one + b"garbage")
    assert garbage.status_code == 400
    assert "after the gzip stream" in garbage.json()["detail"]
