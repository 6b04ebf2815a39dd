"""What the delivery worker needs from a channel."""

from __future__ import annotations

from typing import Any, Protocol


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
