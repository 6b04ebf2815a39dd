"""``kpipulse scoring``: the scoring service on the real adapters (Kafka, PostgreSQL)."""

from __future__ import annotations

from services.scoring import bootstrap
from shared.bootstrap import Adapters
from shared.logging import configure_logging
from shared.serve import serve
from shared.settings import Settings, load_settings


def main(settings: Settings) -> None:
    configure_logging("scoring", settings.log_level)
    adapters = Adapters.connect(settings, client_id="kpipulse-scoring")
    serve(bootstrap.build(settings, adapters), settings.scoring.http)


if __name__ == "__main__":
    main(load_settings())
