"""``python -m services.alerts`` / ``kpipulse alerts``: the alerts service on the real
adapters (Kafka, PostgreSQL, SMTP and webhooks)."""

from __future__ import annotations

import sys

from services.alerts import bootstrap
from shared.bootstrap import Adapters
from shared.logging import configure_logging
from shared.serve import serve
from shared.settings import Settings, SettingsError, load_settings


def main(settings: Settings) -> int:
    configure_logging("alerts", settings.log_level)
    adapters = Adapters.connect(settings, client_id="kpipulse-alerts")
    serve(bootstrap.build(settings, adapters), settings.alerts.http)
    return 0


if __name__ == "__main__":
    try:
        loaded = load_settings()
    except SettingsError as exc:
        print(f"alerts: {exc}", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(loaded))
