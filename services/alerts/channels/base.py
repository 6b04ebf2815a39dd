"""What the delivery worker needs from a channel."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, Protocol

log = logging.getLogger(__name__)


class DeliveryError(Exception):
    """A send failed; ``retryable`` says whether another attempt may succeed."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class Sender(Protocol):
    async def send(self, target: str, payload: dict[str, Any]) -> None:
        """Deliver or raise DeliveryError; return only once the receiver accepted it."""

    async def close(self) -> None: ...


async def attempt(
    senders: Mapping[str, Sender],
    channel: str,
    target: str,
    payload: dict[str, Any],
    *,
    timeout_s: float,
    what: str,
) -> DeliveryError | None:
    """Send once through ``channel``; None when it went out, else why it did not.

    Bounded by ``timeout_s`` (well inside a row's lease, so a live worker's row is never
    leased again); an unexpected error is logged and retried like a transient one, so a
    bug never loses the ``what`` being sent."""
    sender = senders.get(channel)
    if sender is None:
        return DeliveryError(f"no sender for channel {channel!r}", retryable=False)
    try:
        await asyncio.wait_for(sender.send(target, payload), timeout_s)
    except DeliveryError as exc:
        return exc
    except TimeoutError:
        return DeliveryError("send timed out", retryable=True)
    except Exception as exc:
        log.exception("unexpected error sending %s", what)
        return DeliveryError(f"unexpected: {exc!r}", retryable=True)
    return None
