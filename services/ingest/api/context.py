"""The collaborators routes use, built once in create_app and kept on ``app.state``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from starlette.requests import Request

from services.ingest.domain.bounds import Bounds
from services.ingest.domain.ratelimit import FailureThrottle, RateLimiter
from services.ingest.keycache import KeyCache
from services.ingest.publishing import Ingestor
from services.ingest.stores import DeliveryLedger, WriteKeyStore
from services.ingest.webhook_config import WebhookSecrets
from shared.settings import Settings


@dataclass(frozen=True, slots=True)
class IngestContext:
    settings: Settings
    ingestor: Ingestor
    keys: KeyCache
    key_repository: WriteKeyStore
    deliveries: DeliveryLedger
    limiter: RateLimiter
    failures: FailureThrottle
    bounds: Bounds
    secrets: WebhookSecrets
    now: Callable[[], datetime]
    new_id: Callable[[], str]


def context(request: Request) -> IngestContext:
    ctx: IngestContext = request.app.state.ingest
    return ctx
