"""Floods of bad credentials from one address: throttled, and the valid keys unharmed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ingest import bootstrap
from services.ingest.domain.writekeys import generate
from shared.bootstrap import Adapters
from shared.bus.factory import create_publisher
from shared.settings import Settings
from tests.integration.ingest.conftest import with_ingest
from tests.integration.ingest.helpers import Keys, Secrets, bearer, unique
from tests.integration.ingest.test_webhooks import standard_headers

BURST = 5


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def strict_app(
    ingest_settings: Settings, sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> AsyncIterator[FastAPI]:
    settings = with_ingest(ingest_settings, auth_failure_burst=BURST, auth_failures_per_second=1)
    adapters = Adapters(
        kafka=settings.kafka,
        engine=sessions.kw["bind"],
        sessions=sessions,
        publisher=create_publisher(settings.kafka, client_id="ingest-floods"),
        registry=CollectorRegistry(),
    )
    app = bootstrap.build(settings, adapters, monotonic=clock)
    async with app.router.lifespan_context(app):
        yield app


def client_from(app: FastAPI, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://ingest.test")


async def test_300_guessed_keys_are_throttled_and_valid_keys_keep_working(
    strict_app: FastAPI, keys: Keys, clock: Clock
) -> None:
    event = {"type": "signup"}
    async with client_from(strict_app, "10.0.0.1") as attacker:
        assert (await attacker.post("/v1/events", json=event,
                                    headers=bearer(keys.web))).status_code == 200
        statuses = [
            (await attacker.post("/v1/events", json=event,
                                 headers=bearer(generate("web")))).status_code
            for _ in range(300)
        ]
        assert statuses[:BURST] == [401] * BURST
        assert set(statuses[BURST:]) == {429}
        refused = await attacker.post("/v1/events", json=event, headers=bearer(generate("web")))
        assert refused.headers["Retry-After"] == "1"
        assert "too many unknown or revoked write keys" in refused.json()["detail"]
        # A key known valid is still served to the same address.
        ok = await attacker.post("/v1/events", json=event, headers=bearer(keys.web))
        assert ok.status_code == 200, ok.text
        clock.now += 2  # two tokens back: two more guesses are answered, then 429 again
        again = [(await attacker.post("/v1/events", json=event,
                                      headers=bearer(generate("web")))).status_code
                 for _ in range(3)]
        assert again == [401, 401, 429]
    async with client_from(strict_app, "10.0.0.2") as neighbour:
        other = await neighbour.post("/v1/events", json=event, headers=bearer(generate("web")))
        assert other.status_code == 401  # another address has its own bucket


async def test_bad_webhook_signatures_are_throttled(
    strict_app: FastAPI, secrets: Secrets
) -> None:
    body = orjson.dumps({"type": "invoice.paid", "data": {}})
    url = "/v1/webhooks/standard/crm"
    async with client_from(strict_app, "10.0.0.3") as forger:
        statuses = [
            (await forger.post(url, content=body,
                               headers=standard_headers("whsec_Zm9yZ2Vk", body, unique()))
             ).status_code
            for _ in range(BURST + 3)
        ]
        assert statuses == [401] * BURST + [429] * 3
        guess = await forger.get("/v1/webhooks/mailchimp/guess")
        assert guess.status_code == 429
        assert "bad signatures" in guess.json()["detail"]
    async with client_from(strict_app, "10.0.0.4") as sender:
        headers = standard_headers(secrets.standard["crm"][0], body, unique())
        assert (await sender.post(url, content=body, headers=headers)).status_code == 200
