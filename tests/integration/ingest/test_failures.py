"""Kafka unreachable → 503 with Retry-After and /readyz unready; per-key rate limits."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.settings import Settings
from tests.integration.ingest.conftest import build_app, with_ingest
from tests.integration.ingest.helpers import Keys, bearer, unique


@pytest.fixture
async def kafka_down_client(
    ingest_settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[httpx.AsyncClient]:
    # A second app pointed at a closed port; the shared broker keeps running.
    kafka = ingest_settings.kafka.model_copy(
        update={"bootstrap_servers": "127.0.0.1:1", "publish_timeout_s": 2.0,
                "request_timeout_ms": 1000}
    )
    app = build_app(ingest_settings.model_copy(update={"kafka": kafka}), sessions)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest.test") as c:
            yield c


async def test_kafka_unreachable_is_503_with_retry_after(
    kafka_down_client: httpx.AsyncClient, keys: Keys, ingest_settings: Settings
) -> None:
    response = await kafka_down_client.post(
        "/v1/events", headers=bearer(keys.web), json={"event_id": unique(), "type": "signup"}
    )
    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(ingest_settings.ingest.retry_after_s)
    assert "accepted" not in response.json()

    ready = await kafka_down_client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"kafka": "unreachable", "database": "ok"}
    metrics = (await kafka_down_client.get("/metrics")).text
    assert "kpipulse_ingest_producer_errors_total 1.0" in metrics


async def test_webhook_with_kafka_down_is_not_marked_delivered(
    kafka_down_client: httpx.AsyncClient, client: httpx.AsyncClient, ingest_settings: Settings,
) -> None:
    import base64
    import hashlib
    import hmac
    import time

    import orjson

    secret = ingest_settings.ingest.standard_webhook_secrets["crm"][0].get_secret_value()
    key = base64.b64decode(secret.removeprefix("whsec_"))
    msg_id, ts = unique("msg"), str(int(time.time()))
    body = orjson.dumps({"type": "payment.failed", "data": {}})
    signature = base64.b64encode(
        hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    ).decode()
    headers = {"webhook-id": msg_id, "webhook-timestamp": ts,
               "webhook-signature": f"v1,{signature}"}
    down = await kafka_down_client.post("/v1/webhooks/standard/crm", content=body,
                                        headers=headers)
    assert down.status_code == 503
    # The provider's retry reaches a healthy instance: published, not taken for a replay.
    retry = await client.post("/v1/webhooks/standard/crm", content=body, headers=headers)
    assert retry.status_code == 200
    assert retry.json()["replayed"] is False
    assert retry.json()["accepted"] == [msg_id]


async def test_rate_limit_is_429_with_retry_after(
    ingest_settings: Settings, sessions: async_sessionmaker[AsyncSession], keys: Keys
) -> None:
    limited = with_ingest(ingest_settings, rate_limit_per_second=0.5, rate_limit_burst=3)
    app: FastAPI = build_app(limited, sessions)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest.test") as c:
            first = await c.post("/v1/events", headers=bearer(keys.email),
                                 json=[{"type": "email_sent"}] * 3)
            assert first.status_code == 200
            second = await c.post("/v1/events", headers=bearer(keys.email),
                                  json={"type": "email_sent"})
            assert second.status_code == 429
            assert second.headers["Retry-After"] == "2"
            other_key = await c.post("/v1/events", headers=bearer(keys.support),
                                     json={"type": "ticket_opened"})
            assert other_key.status_code == 200


async def test_database_unreachable(ingest_settings: Settings) -> None:
    from shared.db.engine import create_engine, create_session_factory

    database = ingest_settings.database.model_copy(
        update={"url": "postgresql+asyncpg://kpipulse:kpipulse@127.0.0.1:1/kpipulse"}
    )
    engine = create_engine(database)
    app = build_app(ingest_settings, create_session_factory(engine))
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                ready = await c.get("/readyz")
                assert ready.status_code == 503
                assert ready.json()["checks"] == {"kafka": "ok", "database": "unreachable"}
                # A key not in the cache cannot be checked: 503, not a false 401.
                response = await c.post("/v1/events", headers=bearer("kp_web_" + "y" * 43),
                                        json={"type": "signup"})
                assert response.status_code == 503
                assert "Retry-After" in response.headers
    finally:
        await engine.dispose()
