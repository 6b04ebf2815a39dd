"""Ingest's composition root: the service's parts, wired once.

Used by ``__main__`` (one service), ``kpipulse dev`` (all three in one process) and the
tests; nothing else constructs the service's parts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import FastAPI

from services.ingest.app import create_app
from shared.bootstrap import Adapters
from shared.settings import Settings


def _utcnow() -> datetime:
    return datetime.now(UTC)


def build(
    settings: Settings,
    adapters: Adapters,
    *,
    now: Callable[[], datetime] = _utcnow,
    monotonic: Callable[[], float] = time.monotonic,
) -> FastAPI:
    return create_app(
        settings,
        publisher=adapters.publisher,
        sessions=adapters.sessions,
        registry=adapters.registry,
        now=now,
        monotonic=monotonic,
    )
