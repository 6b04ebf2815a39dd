"""Who hears about an alert, and through which channel."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


class OwnerLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def email(self) -> str | None: ...
    @property
    def webhook_url(self) -> str | None: ...
    @property
    def slack_webhook_url(self) -> str | None: ...


@dataclass(frozen=True, slots=True, order=True)
class Route:
    channel: str  # "email" | "webhook" | "slack"
    target: str


def routes_for(owners: Iterable[OwnerLike], default_email: str | None) -> list[Route]:
    """Every channel each owner declared; the default route when nobody can be reached."""
    found: set[Route] = set()
    for owner in owners:
        if owner.email:
            found.add(Route("email", owner.email))
        if owner.webhook_url:
            found.add(Route("webhook", owner.webhook_url))
        if owner.slack_webhook_url:
            found.add(Route("slack", owner.slack_webhook_url))
    if not found and default_email:
        found.add(Route("email", default_email))
    return sorted(found)
