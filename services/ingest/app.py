"""Composition of the ingest HTTP app: collaborators in, FastAPI app out."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ingest.api import admin, browser, events, segment, webhooks
from services.ingest.api.common import ApiError, handle_api_error
from services.ingest.api.context import IngestContext
from services.ingest.api.cors import BrowserCors
from services.ingest.api.direct import DirectRoutes, direct_routes
from services.ingest.domain.bounds import Bounds
from services.ingest.domain.ids import UuidSource
from services.ingest.domain.ratelimit import FailureThrottle, RateLimiter
from services.ingest.keycache import KeyCache
from services.ingest.metrics import IngestMetrics
from services.ingest.publishing import Ingestor
from services.ingest.stores import DeliveryLedger, WriteKeyStore
from services.ingest.webhook_config import WebhookSecrets
from shared.bus.ports import Publisher
from shared.http import install_common
from shared.metrics import HttpMetrics
from shared.settings import Settings

# The tracking routes senders call at high rates; served without FastAPI's routing.
HOT_ROUTES = (
    ("POST", "/v1/events"), ("POST", "/v1/batch"), ("POST", "/v1/track"), *browser.HOT_ROUTES
)
# Addresses whose failed authentications are remembered (the most recent ones).
_FAILING_ADDRESSES = 100_000


def _utcnow() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: Settings,
    *,
    publisher: Publisher,
    sessions: async_sessionmaker[AsyncSession],
    registry: CollectorRegistry,
    now: Callable[[], datetime] = _utcnow,
    monotonic: Callable[[], float] | None = None,
) -> FastAPI:
    clock = monotonic or time.monotonic
    limits = settings.ingest
    key_repository = WriteKeyStore(sessions)
    ctx = IngestContext(
        settings=settings,
        ingestor=Ingestor(
            publisher=publisher,
            topics=settings.kafka.topics(),
            metrics=IngestMetrics(registry),
            max_event_bytes=limits.max_event_bytes,
            max_dead_letter_bytes=limits.max_dead_letter_bytes,
        ),
        keys=KeyCache(
            key_repository,
            ttl_s=limits.key_cache_ttl_s,
            clock=clock,
            max_unknown=limits.key_cache_negative_entries,
        ),
        key_repository=key_repository,
        deliveries=DeliveryLedger(sessions),
        limiter=RateLimiter(
            rate=limits.rate_limit_per_second, burst=limits.rate_limit_burst, clock=clock
        ),
        failures=FailureThrottle(
            rate=limits.auth_failures_per_second,
            burst=limits.auth_failure_burst,
            clock=clock,
            max_addresses=_FAILING_ADDRESSES,
        ),
        bounds=Bounds(
            max_future=timedelta(seconds=limits.max_future_skew_s),
            earliest=limits.earliest_event_time,
            max_depth=limits.max_nesting_depth,
        ),
        secrets=WebhookSecrets.from_settings(limits),
        now=now,
        new_id=UuidSource(),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # The publisher starts even with Kafka down (requests then get 503 and
        # /readyz says why); stop flushes whatever is in flight.
        await publisher.start()
        try:
            yield
        finally:
            await publisher.stop()

    app = FastAPI(
        title="KPI Pulse ingest",
        version="1",
        description="Events from product backends, Segment SDKs and signed webhooks into "
        "Kafka; every 2xx means Kafka acknowledged (acks=all).",
        lifespan=lifespan,
        # Prometheus is the metrics system here; FastAPI's OpenTelemetry hooks otherwise
        # look for configured providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.ingest = ctx
    app.add_exception_handler(ApiError, handle_api_error)
    tracking = (events.router, segment.router, browser.router)
    for router in (*tracking, webhooks.router, admin.router):
        app.include_router(router)
    tracking_routes = [route for router in tracking for route in router.routes]
    # Added before install_common's middleware, so it runs inside them (metrics, limits);
    # CORS outside DirectRoutes, so the hot routes answer browsers too.
    app.add_middleware(DirectRoutes, routes=direct_routes(tracking_routes, HOT_ROUTES))
    app.add_middleware(BrowserCors, routes=tracking_routes)
    install_common(
        app,
        service="ingest",
        registry=registry,
        http_metrics=HttpMetrics(registry),
        metrics_tokens=[
            settings.metrics_token.get_secret_value(), settings.admin_token.get_secret_value()
        ],
        readiness={"kafka": publisher.ping, "database": key_repository.ping},
        # read_body enforces max_request_bytes exactly (with ingest's error format) on the
        # event and webhook routes; this bounds the bodies FastAPI parses (admin API).
        max_body_bytes=2 * limits.max_request_bytes,
    )
    return app
