"""The alerts service's application: API plus three background loops in one lifespan.

The consumer applies KPI values, the scheduler evaluates time-driven conditions, and the
delivery worker drains the outbox. On shutdown the consumer finishes and commits its
batch, and the worker finishes the sends in hand, so a graceful stop re-sends nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerts.api.acklinks import ack_link_router
from services.alerts.api.routes import build_router
from services.alerts.channels.base import Sender
from services.alerts.digest import DigestService
from services.alerts.domain.acklinks import link_key
from services.alerts.metrics import AlertMetrics
from services.alerts.scheduler import Scheduler
from services.alerts.signing import require_signing_secret
from services.alerts.worker import DeliveryWorker
from shared.bootstrap import Adapters
from shared.bus.ports import BatchHandler, Subscriber
from shared.http import install_common
from shared.identity.access import Authenticator, install
from shared.identity.service import IdentityService
from shared.metrics import HttpMetrics
from shared.settings import Settings

log = logging.getLogger(__name__)
SERVICE = "alerts"


@dataclass(frozen=True, slots=True)
class AlertsParts:
    """What the alerts app runs, wired by ``services.alerts.bootstrap``."""

    adapters: Adapters
    metrics: AlertMetrics
    subscriber: Subscriber
    consumer: BatchHandler
    scheduler: Scheduler
    worker: DeliveryWorker
    senders: Mapping[str, Sender]
    clock: Callable[[], datetime]
    # The weekly digest (services/alerts/digest.py); None when disabled.
    digest: DigestService | None = None


def create_app(settings: Settings, parts: AlertsParts) -> FastAPI:
    cfg = settings.alerts
    sessions, publisher = parts.adapters.sessions, parts.adapters.publisher
    subscriber, handler, senders = parts.subscriber, parts.consumer, parts.senders
    scheduler, worker, metrics = parts.scheduler, parts.worker, parts.metrics

    async def consume(stop: asyncio.Event) -> None:
        delay = 0.5
        while not stop.is_set():
            try:
                await subscriber.start()
                break
            except Exception:  # noqa: BLE001 - Kafka down at start-up: keep trying
                log.warning("kafka consumer could not start; retrying in %.1f s", delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(30.0, delay * 2)
        if not stop.is_set():
            await subscriber.run(handler)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await require_signing_secret(sessions, cfg.webhook_secret.get_secret_value())
        # For dead letters only; it starts even with Kafka down (so does the consumer).
        await publisher.start()
        stop = asyncio.Event()
        tasks = {
            "consumer": asyncio.create_task(consume(stop), name="alerts-consumer"),
            "scheduler": asyncio.create_task(scheduler.run(stop), name="alerts-scheduler"),
            "worker": asyncio.create_task(worker.run(stop), name="alerts-worker"),
        }
        if parts.digest is not None:
            tasks["digest"] = asyncio.create_task(parts.digest.run(stop), name="alerts-digest")
        try:
            yield
        finally:
            stop.set()
            await subscriber.stop()
            done, pending = await asyncio.wait(tasks.values(), timeout=30)
            for task in pending:
                task.cancel()
            for name, task in tasks.items():
                if task in done and not task.cancelled() and task.exception() is not None:
                    log.error("%s task failed", name, exc_info=task.exception())
            for sender in senders.values():
                await sender.close()
            await publisher.stop()  # after the consumer's last batch and its letters

    async def database_ready() -> bool:
        try:
            async with sessions() as session:
                await session.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError):
            return False
        return True

    app = FastAPI(title="KPI Pulse alerts", version="1", lifespan=lifespan)
    install_common(
        app,
        service=SERVICE,
        registry=parts.adapters.registry,
        http_metrics=HttpMetrics(parts.adapters.registry),
        metrics_tokens=[
            settings.metrics_token.get_secret_value(), settings.admin_token.get_secret_value()
        ],
        readiness={"database": database_ready, "kafka": subscriber.ping},
    )
    _serve_api(app, settings, sessions, parts.clock, ack_link_key(settings))
    # Exposed for tests and the dev mode, which drive the loops step by step.
    app.state.worker = worker
    app.state.scheduler = scheduler
    app.state.handler = handler
    app.state.metrics = metrics
    return app


def _serve_api(
    app: FastAPI,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    clock: Callable[[], datetime],
    ack_key: bytes | None,
) -> None:
    auth = Authenticator(IdentityService(sessions), settings.admin_token)
    install(app, auth)
    app.include_router(build_router(settings, sessions=sessions, clock=clock, auth=auth))
    if ack_key is not None:
        app.include_router(ack_link_router(ack_key, sessions, clock))
    # The scorecard page (served by scoring on another port) reads active alerts with the
    # signed-in user's session cookie, and acks them with its CSRF token.
    origins = settings.alerts.cors_origins
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Content-Type", "X-CSRF-Token"],
            allow_credentials=True,
        )


def ack_link_key(settings: Settings) -> bytes | None:
    """The key of the emails' acknowledgement links: their own secret, else derived from
    the admin token (whoever holds that may acknowledge anything anyway); else none."""
    secret = (
        settings.alerts.ack_link_secret.get_secret_value()
        or settings.admin_token.get_secret_value()
    )
    return link_key(secret) if secret else None
