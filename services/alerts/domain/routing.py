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


def routes_for(
    owners: Iterable[OwnerLike],
    default_email: str | None,
    refused: Iterable[tuple[str, str]] = (),
) -> list[Route]:
    """Every channel each owner declared, the default address for an owner without any.

    An owner who cannot be reached, with no default address to stand in, gets an
    undeliverable route: a notice that nobody receives must still be seen (in the
    notification history and a metric), not vanish. So does a KPI without owners.
    ``refused`` are (name, problem) of owners whose stored addresses no longer pass
    validation (kept from before it existed): none of their addresses is used.
    """
    found: set[Route] = set()
    owners = list(owners)
    refused = list(refused)
    for name, problem in refused:
        found.add(
            _unreachable(f"owner {name}", f"owner {name!r}: refused ({problem})", default_email)
        )
    for owner in owners:
        reached = {
            Route(channel, target)
            for channel, target in (
                ("email", owner.email),
                ("webhook", owner.webhook_url),
                ("slack", owner.slack_webhook_url),
            )
            if target
        }
        found |= reached or {
            _unreachable(
                f"owner {owner.name}",
                f"owner {owner.name!r} has no email, webhook or Slack address and no "
                f"default address is configured ({_DEFAULT_SETTING})",
                default_email,
            )
        }
    if not owners and not refused:
        found.add(
            _unreachable(
                "no owner",
                f"the KPI has no owner and no default address is configured ({_DEFAULT_SETTING})",
                default_email,
            )
        )
    return sorted(found)


_DEFAULT_SETTING: Final = "KPIPULSE_ALERTS__DEFAULT_EMAIL"


def _unreachable(label: str, reason: str, default_email: str | None) -> Route:
    """The default address standing in for ``label``, or an undeliverable route."""
    if default_email:
        return Route("email", default_email)
    return Route(UNDELIVERABLE, label, reason)
