"""Helpers for a service's background loops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, but wake at once when ``stop`` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def guarded(name: str, run: Callable[[], Awaitable[None]], *, pause_s: float = 2) -> None:
    """Run a background loop; if it dies, log why and restart it after a pause."""
    while True:
        try:
            await run()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background task failed; restarting", extra={"task": name})
            await asyncio.sleep(pause_s)


async def quietly(awaitable: Awaitable[object]) -> None:
    """Await ``awaitable``, logging rather than raising what it raises: the shutdown of
    a broken client must not mask the error that broke it."""
    try:
        await awaitable
    except Exception:
        log.debug("ignored error while closing a client", exc_info=True)
