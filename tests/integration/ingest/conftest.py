"""Fixtures for ingest integration tests: the app on the real broker and database."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ingest import bootstrap
from services.ingest.keys import create_key
from services.ingest.stores import WriteKeyStore
from shared.bootstrap import Adapters
from shared.bus.factory import create_publisher
from shared.contracts.events import SOURCES
from shared.settings import Settings
from tests.integration.ingest.helpers import Keys, Secrets

SENDGRID_PRIVATE = ec.generate_private_key(ec.SECP256R1())
SENDGRID_ROTATED = ec.generate_private_key(ec.SECP256R1())


def _der_b64(private: ec.EllipticCurvePrivateKey) -> str:
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


@pytest.fixture(scope="session")
def secrets() -> Secrets:
    return Secrets(
        hubspot=("hubspot-old", "hubspot-new"),
        sendgrid=(SENDGRID_PRIVATE, SENDGRID_ROTATED),
        mailchimp=("mc-secret-0123456789", "mc-secret-rotated"),
        zendesk=("zendesk-old", "zendesk-new"),
        standard={
            source: (
                "whsec_" + base64.b64encode(f"standard-key-{source}-one".encode()).decode(),
                "whsec_" + base64.b64encode(f"standard-key-{source}-two".encode()).decode(),
            )
            for source in SOURCES
        },
    )


def with_ingest(settings: Settings, **changes: object) -> Settings:
    return settings.model_copy(update={"ingest": settings.ingest.model_copy(update=changes)})


@pytest.fixture(scope="session")
def ingest_settings(topics_ready: Settings, secrets: Secrets) -> Settings:
    return with_ingest(
        topics_ready,
        hubspot_secrets=[SecretStr(s) for s in secrets.hubspot],
        sendgrid_public_keys=[_der_b64(k) for k in secrets.sendgrid],
        mailchimp_secrets=[SecretStr(s) for s in secrets.mailchimp],
        zendesk_secrets=[SecretStr(s) for s in secrets.zendesk],
        # The whole session shares one client address; the throttle of failed
        # authentications is tested on apps of its own (test_floods.py).
        auth_failure_burst=1_000_000,
        standard_webhook_secrets={
            source: [SecretStr(s) for s in pair] for source, pair in secrets.standard.items()
        },
    )


def build_app(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> FastAPI:
    adapters = Adapters(
        kafka=settings.kafka,
        engine=sessions.kw["bind"],
        sessions=sessions,
        publisher=create_publisher(settings.kafka, client_id="ingest-test"),
        registry=CollectorRegistry(),
    )
    return bootstrap.build(settings, adapters)


@pytest.fixture(scope="session")
async def app(
    ingest_settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[FastAPI]:
    application = build_app(ingest_settings, sessions)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest.test") as c:
        yield c


@pytest.fixture(scope="session")
async def keys(sessions: async_sessionmaker[AsyncSession]) -> Keys:
    repository = WriteKeyStore(sessions)
    made = {}
    for source in ("web", "crm", "email", "support"):
        _, key = await create_key(
            repository, source=source, name=f"test {source}", now=datetime.now(UTC)
        )
        made[source] = key
    return Keys(**made)


@pytest.fixture(scope="module")
async def server_url(
    ingest_settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        build_app(ingest_settings, sessions), log_config=None, access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    # The server runs in this event loop; clients under test run in threads or processes.
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
        await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task
    sock.close()
