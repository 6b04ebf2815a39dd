"""``kpipulse scoring``: the wiring of the real adapters (Kafka, PostgreSQL)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from services.scoring.app import create_app
from shared.bus.factory import create_publisher, create_subscriber
from shared.bus.ports import Subscriber
from shared.db.engine import create_engine, create_session_factory
from shared.db.offsets import OffsetRepository
from shared.logging import configure_logging
from shared.serve import serve
from shared.settings import Settings, load_settings


def main(settings: Settings) -> None:
    configure_logging("scoring", settings.log_level)
    engine = create_engine(settings.database)
    sessions = create_session_factory(engine)
    scoring = settings.scoring

    def subscriber(offsets: OffsetRepository) -> Subscriber:
        return create_subscriber(
            settings.kafka,
            topics=[settings.kafka.topics().events],
            group_id=scoring.group_id,
            offset_store=offsets,
            max_batch=scoring.max_batch,
        )

    app = create_app(
        settings,
        engine=engine,
        sessions=sessions,
        publisher=create_publisher(settings.kafka, client_id="kpipulse-scoring"),
        subscriber_factory=subscriber,
        registry=CollectorRegistry(),
    )
    serve(app, scoring.http)


if __name__ == "__main__":
    main(load_settings())
