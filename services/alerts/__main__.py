"""Composition root of the alerts service: ``python -m services.alerts``."""

from __future__ import annotations

import sys

from prometheus_client import CollectorRegistry

from services.alerts.app import create_app
from services.alerts.channels.base import Sender
from services.alerts.channels.http import SlackSender, WebhookSender, http_poster
from services.alerts.channels.smtp import SmtpSender
from services.alerts.signing import webhook_sender
from shared.bus.factory import create_publisher, create_subscriber
from shared.db.engine import create_engine, create_session_factory
from shared.db.offsets import OffsetRepository
from shared.logging import configure_logging
from shared.serve import serve
from shared.settings import Settings, SettingsError, load_settings


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


def main(settings: Settings) -> int:
    configure_logging("alerts", settings.log_level)
    engine = create_engine(settings.database)
    sessions = create_session_factory(engine)
    subscriber = create_subscriber(
        settings.kafka,
        topics=[settings.kafka.topics().kpi_values],
        group_id=settings.alerts.group_id,
        # Offsets live beside the alert state (same transaction); seek to them.
        offset_store=OffsetRepository(sessions, consumer=settings.alerts.group_id),
        max_batch=settings.alerts.max_batch,
    )
    app = create_app(
        settings,
        sessions=sessions,
        subscriber=subscriber,
        publisher=create_publisher(settings.kafka, client_id="kpipulse-alerts"),
        registry=CollectorRegistry(),
        senders=build_senders(settings),
    )
    serve(app, settings.alerts.http)
    return 0


if __name__ == "__main__":
    try:
        loaded = load_settings()
    except SettingsError as exc:
        print(f"alerts: {exc}", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(loaded))
