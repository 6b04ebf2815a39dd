"""POST /v1/events against the real broker and database."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import orjson

from shared.bus.dlq import describe
from shared.settings import Settings
from tests.integration.ingest.helpers import (
    Keys,
    basic,
    bearer,
    consume,
    unique,
    value,
)
from tests.support.kafka import consume_matching


async def test_single_event_round_trips_to_the_topic(
    client: httpx.AsyncClient, keys: Keys, ingest_settings: Settings
) -> None:
    event_id = unique()
    before = datetime.now(UTC)
    response = await client.post(
        "/v1/events",
        headers=bearer(keys.crm),
        json={
            "event_id": event_id,
            "type": "deal_won",
            "occurred_at": "2026-03-01T10:00:00Z",
            "received_at": "1999-01-01T00:00:00Z",
            "subject_id": "acct-7",
            "value": 1200.5,
            "properties": {"region": "VN"},
            "context": {"channel": "sales"},
        },
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": [event_id], "rejected": []}

    found = await consume(ingest_settings, ingest_settings.kafka.topics().events, [event_id])
    event = value(found[event_id])
    assert found[event_id].key == event_id.encode()
    assert event["source"] == "crm"
    assert event["type"] == "deal_won"
    assert event["subject_id"] == "acct-7"
    assert event["value"] == 1200.5
    assert event["properties"] == {"region": "VN"}
    assert event["context"] == {"channel": "sales"}
    assert event["schema_version"] == 1
    assert event["occurred_at"].startswith("2026-03-01T10:00:00")
    received = datetime.fromisoformat(event["received_at"])
    assert before - timedelta(seconds=1) <= received <= datetime.now(UTC)  # server clock


async def test_batch_generates_ids_and_accepts_basic_auth(
    client: httpx.AsyncClient, keys: Keys, ingest_settings: Settings
) -> None:
    body = {"batch": [{"type": "page_view"}, {"type": "signup", "source": "web"}]}
    response = await client.post("/v1/events", headers=basic(keys.web), json=body)
    assert response.status_code == 200, response.text
    ids = response.json()["accepted"]
    assert len(ids) == 2 and len(set(ids)) == 2
    found = await consume(ingest_settings, ingest_settings.kafka.topics().events, ids)
    assert {value(m)["type"] for m in found.values()} == {"page_view", "signup"}


async def test_json_array_and_gzip_body(client: httpx.AsyncClient, keys: Keys) -> None:
    raw = orjson.dumps([{"type": "a_b"}, {"type": "c_d"}])
    response = await client.post(
        "/v1/events",
        headers={**bearer(keys.web), "Content-Encoding": "gzip",
                 "Content-Type": "application/json"},
        content=gzip.compress(raw),
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["accepted"]) == 2


async def test_partial_success_dead_letters_the_invalid(
    client: httpx.AsyncClient, keys: Keys, ingest_settings: Settings
) -> None:
    good, bad = unique("good"), unique("bad")
    response = await client.post(
        "/v1/events",
        headers=bearer(keys.support),
        json={"batch": [
            {"event_id": good, "type": "ticket_opened"},
            {"event_id": bad, "type": "Ticket Opened!"},
            {"type": "ticket_closed", "value": "lots", "properties": {"marker": bad}},
        ]},
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["accepted"] == [good]
    assert [r["index"] for r in answer["rejected"]] == [1, 2]
    assert answer["rejected"][0]["reason"].startswith("type:")
    assert answer["rejected"][1]["reason"].startswith("value:")

    topics = ingest_settings.kafka.topics()
    await consume(ingest_settings, topics.events, [good])
    letters = await consume_matching(ingest_settings, topics.events_dlq, bad.encode(), count=2)
    reasons = sorted(str(describe(m)["reason"]) for m in letters)
    assert reasons[0].startswith("index 1: type:")
    assert reasons[1].startswith("index 2: value:")
    assert all(describe(m)["stage"] == "ingest" for m in letters)
    assert {m.key for m in letters} >= {bad.encode()}


async def test_nothing_valid_is_422_naming_fields(
    client: httpx.AsyncClient, keys: Keys, ingest_settings: Settings
) -> None:
    marker = unique("all-bad")
    response = await client.post(
        "/v1/events",
        headers=bearer(keys.web),
        json={"type": "x", "occurred_at": "not a time", "properties": {"m": marker}},
    )
    assert response.status_code == 422
    assert "occurred_at" in response.json()["detail"]
    assert response.json()["rejected"][0]["reason"].startswith("occurred_at:")
    await consume_matching(ingest_settings, ingest_settings.kafka.topics().events_dlq,
                           marker.encode())


async def test_auth_errors(client: httpx.AsyncClient, keys: Keys) -> None:
    event = {"type": "signup"}
    missing = await client.post("/v1/events", json=event)
    assert missing.status_code == 401
    assert missing.json()["code"] == "missing_key"
    unknown = await client.post("/v1/events", headers=bearer("kp_web_" + "x" * 43), json=event)
    assert unknown.status_code == 401
    assert unknown.json()["detail"] == "unknown write key"
    wrong_source = await client.post(
        "/v1/events", headers=bearer(keys.web), json={**event, "source": "crm"}
    )
    assert wrong_source.status_code == 403
    assert "web" in wrong_source.json()["detail"]


async def test_malformed_json_and_schema(client: httpx.AsyncClient, keys: Keys) -> None:
    malformed = await client.post("/v1/events", headers=bearer(keys.web), content=b"{nope")
    assert malformed.status_code == 400
    assert malformed.json()["code"] == "malformed_json"
    wrong_shape = await client.post("/v1/events", headers=bearer(keys.web), json={"batch": 1})
    assert wrong_shape.status_code == 422
    assert wrong_shape.json()["detail"].startswith("batch:")
    empty = await client.post("/v1/events", headers=bearer(keys.web), json=[])
    assert empty.status_code == 422


async def test_request_over_limit_is_413_while_streaming(
    client: httpx.AsyncClient, keys: Keys, ingest_settings: Settings
) -> None:
    limit = ingest_settings.ingest.max_request_bytes
    declared = await client.post(
        "/v1/events", headers=bearer(keys.web), content=b" " * (limit + 1)
    )
    assert declared.status_code == 413
    assert str(limit) in declared.json()["detail"]

    async def chunks() -> AsyncIterator[bytes]:  # chunked: no Content-Length to trust
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    streamed = await client.post("/v1/events", headers=bearer(keys.web), content=chunks())
    assert streamed.status_code == 413
    assert streamed.json()["limit_bytes"] == limit


async def test_event_and_batch_limits(
    client: httpx.AsyncClient, keys: Keys, ingest_settings: Settings
) -> None:
    limits = ingest_settings.ingest
    big = {"type": "big", "properties": {"blob": "x" * limits.max_event_bytes}}
    single = await client.post("/v1/events", headers=bearer(keys.web), json=big)
    assert single.status_code == 413
    assert str(limits.max_event_bytes) in single.json()["detail"]

    in_batch = await client.post(
        "/v1/events", headers=bearer(keys.web), json=[{"type": "small"}, big]
    )
    assert in_batch.status_code == 200
    assert in_batch.json()["rejected"][0]["index"] == 1
    assert str(limits.max_event_bytes) in in_batch.json()["rejected"][0]["reason"]

    too_many = await client.post(
        "/v1/events", headers=bearer(keys.web),
        json=[{"type": "t"}] * (limits.max_batch_events + 1),
    )
    assert too_many.status_code == 413
    assert str(limits.max_batch_events) in too_many.json()["detail"]


async def test_metrics_are_exposed(client: httpx.AsyncClient, keys: Keys) -> None:
    await client.post("/v1/events", headers=bearer(keys.email), json={"type": "email_opened"})
    text = (await client.get("/metrics")).text
    assert 'kpipulse_ingest_events_total{outcome="accepted",source="email"}' in text
    assert "kpipulse_ingest_batch_size_bucket" in text
    assert "kpipulse_ingest_producer_errors_total" in text
    assert "kpipulse_http_request_duration_seconds_bucket" in text
    assert "kpipulse_http_requests_in_flight" in text


async def test_ready_when_kafka_and_database_answer(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"kafka": "ok", "database": "ok"}
