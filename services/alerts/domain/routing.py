"""Who hears about an alert, and through which channel."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Protocol

#: The channel of a route nobody can deliver: recorded in the outbox, never sent.
UNDELIVERABLE: Final = "none"


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
    channel: str  # "email" | "webhook" | "slack" | UNDELIVERABLE
    target: str
    # Why nobody can be reached this way (UNDELIVERABLE routes only).
    reason: str | None = None

    @property
    def deliverable(self) -> bool:
        return self.channel != UNDELIVERABLE


def routes_for(owners: Iterable[OwnerLike], default_email: str | None) -> list[Route]:
    """Every channel each owner declared, the default address for an owner without any.

    An owner who cannot be reached, with no default address to stand in, gets an
    undeliverable route: a notice that nobody receives must still be seen (in the
    notification history and a metric), not vanish. So does a KPI without owners.
    """
    found: set[Route] = set()
    owners = list(owners)
    for owner in owners:
        reached = False
        if owner.email:
            found.add(Route("email", owner.email))
            reached = True
        if owner.webhook_url:
            found.add(Route("webhook", owner.webhook_url))
            reached = True
        if owner.slack_webhook_url:
            found.add(Route("slack", owner.slack_webhook_url))
            reached = True
        if reached:
            continue
        if default_email:
            found.add(Route("email", default_email))
        else:
            found.add(
                Route(
                    UNDELIVERABLE,
                    f"owner {owner.name}",
                    f"owner {owner.name!r} has no email, webhook or Slack address and no "
                    "default address is configured (KPIPULSE_ALERTS__DEFAULT_EMAIL)",
                )
            )
    if not owners:
        if default_email:
            found.add(Route("email", default_email))
        else:
            found.add(
                Route(
                    UNDELIVERABLE,
                    "no owner",
                    "the KPI has no owner and no default address is configured "
                    "(KPIPULSE_ALERTS__DEFAULT_EMAIL)",
                )
            )
    return sorted(found)
