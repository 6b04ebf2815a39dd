"""``python -m services.ingest`` / ``kpipulse ingest``: the one composition root."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from services.ingest.app import create_app
from shared.bus.factory import create_publisher
from shared.db.engine import create_engine, create_session_factory
from shared.logging import configure_logging
from shared.serve import serve
from shared.settings import Settings, load_settings


def main(settings: Settings) -> None:
    configure_logging("ingest", settings.log_level)
    engine = create_engine(settings.database)
    app = create_app(
        settings,
        publisher=create_publisher(settings.kafka, client_id=f"{settings.kafka.client_id}-ingest"),
        sessions=create_session_factory(engine),
        registry=CollectorRegistry(),
    )
    # uvicorn turns SIGTERM/SIGINT into a lifespan shutdown: the producer flushes.
    serve(app, settings.ingest.http)


if __name__ == "__main__":
    main(load_settings())
