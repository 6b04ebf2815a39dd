"""Alerts' composition root: every part of the service, wired once.

Used by ``__main__`` (one service), ``kpipulse dev`` (all three in one process) and the
tests; nothing else constructs the service's parts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from fastapi import FastAPI

from services.alerts.app import SERVICE, AlertsParts, ack_link_key, create_app
from services.alerts.channels.base import Sender
from services.alerts.channels.http import SlackSender, WebhookSender, http_poster
from services.alerts.channels.smtp import SmtpSender
from services.alerts.consumer import kpi_value_consumer
from services.alerts.digest import DigestService
from services.alerts.metrics import AlertMetrics
from services.alerts.scheduler import Scheduler
from services.alerts.signing import webhook_sender
from services.alerts.transitions import AlertWriter
from services.alerts.worker import DeliveryWorker
from shared.bootstrap import Adapters
from shared.bus.dlq import DeadLetterQueue
from shared.db.offsets import offsets_for
from shared.i18n import LocalePolicy
from shared.metrics import ConsumerMetrics
from shared.settings import Settings


def utcnow() -> datetime:
    return datetime.now(UTC)


def build_senders(settings: Settings) -> dict[str, Sender]:
    cfg = settings.alerts
    return {
        "email": SmtpSender(cfg.smtp),
        "webhook": webhook_sender(
            cfg.webhook_secret.get_secret_value(),
            lambda secret: WebhookSender(http_poster(cfg), secret),
        ),
        "slack": SlackSender(http_poster(cfg)),
    }


def build(
    settings: Settings,
    adapters: Adapters,
    *,
    senders: Mapping[str, Sender] | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> FastAPI:
    cfg = settings.alerts
    sessions = adapters.sessions
    senders = senders if senders is not None else build_senders(settings)
    metrics = AlertMetrics(adapters.registry)
    consumer_metrics = ConsumerMetrics(adapters.registry, SERVICE)
    locales = LocalePolicy(settings.company.locale, settings.time_zone)
    writer = AlertWriter(
        cfg, metrics, tz=settings.tz, locales=locales, ack_key=ack_link_key(settings)
    )
    offsets = offsets_for(sessions, consumer=cfg.group_id)
    # Offsets live beside the alert state (same transaction); the subscriber seeks to them.
    subscriber = adapters.subscriber(
        topics=[settings.kafka.topics().kpi_values],
        group_id=cfg.group_id,
        offset_store=offsets,
        max_batch=cfg.max_batch,
    )
    worker = DeliveryWorker(
        sessions=sessions, senders=senders, settings=cfg, metrics=metrics, clock=clock
    )
    consumer = kpi_value_consumer(
        sessions=sessions,
        offsets=offsets,
        writer=writer,
        dlq=DeadLetterQueue(adapters.publisher, settings.kafka.topics().events_dlq),
        consumer_metrics=consumer_metrics,
        clock=clock,
        trend_points=cfg.trend_points,
        on_commit=worker.wake,
    )
    scheduler = Scheduler(
        sessions=sessions,
        writer=writer,
        settings=cfg,
        metrics=metrics,
        clock=clock,
        tz=settings.tz,
        on_commit=worker.wake,
        subscriber=subscriber,
        consumer_metrics=consumer_metrics,
    )
    digest = (
        DigestService(
            sessions=sessions,
            senders=senders,
            settings=cfg,
            locales=locales,
            time_zone=settings.time_zone,
            clock=clock,
        )
        if cfg.digest.enabled
        else None
    )
    parts = AlertsParts(
        adapters=adapters,
        metrics=metrics,
        subscriber=subscriber,
        consumer=consumer,
        scheduler=scheduler,
        worker=worker,
        senders=senders,
        clock=clock,
        digest=digest,
    )
    return create_app(settings, parts)
