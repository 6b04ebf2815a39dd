"""``python -m services.ingest`` / ``kpipulse ingest``: ingest on the real adapters."""

from __future__ import annotations

from services.ingest import bootstrap
from shared.bootstrap import Adapters
from shared.logging import configure_logging
from shared.serve import serve
from shared.settings import Settings, load_settings


def main(settings: Settings) -> None:
    configure_logging("ingest", settings.log_level)
    adapters = Adapters.connect(settings, client_id=f"{settings.kafka.client_id}-ingest")
    # uvicorn turns SIGTERM/SIGINT into a lifespan shutdown: the producer flushes.
    serve(bootstrap.build(settings, adapters), settings.ingest.http)


if __name__ == "__main__":
    main(load_settings())
