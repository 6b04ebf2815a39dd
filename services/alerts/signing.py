"""The alert webhook's signing secret must be a real one wherever a webhook is sent.

Receivers verify ``X-KPIPulse-Signature`` with the secret; a secret everybody knows (the
empty one, or the old ``change-me`` default) would let anyone forge alerts. Alerts refuses
to start with such a secret while any KPI it watches has a webhook owner, and a webhook
owner that appears later is refused at send time, with the remedy in the error.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerts.channels.base import DeliveryError, Sender
from services.alerts.repository.kpis import KpiRepository

WEAK_SECRETS: Final = frozenset({"", "change-me"})
REMEDY: Final = "set KPIPULSE_ALERTS__WEBHOOK_SECRET to a long random value"


class WeakWebhookSecret(RuntimeError):
    """The configured signing secret is empty or a published default."""


def is_weak(secret: str) -> bool:
    return secret.strip() in WEAK_SECRETS


async def require_signing_secret(
    sessions: async_sessionmaker[AsyncSession], secret: str
) -> None:
    if not is_weak(secret):
        return
    async with sessions() as session:
        watched = await KpiRepository().all(session)
    hooked = sorted(
        latest.kpi_key for latest in watched if any(o.get("webhook_url") for o in latest.owners)
    )
    if hooked:
        raise WeakWebhookSecret(
            f"the alert webhook signing secret is empty or a default, and KPIs have webhook "
            f"owners ({', '.join(hooked[:5])}): {REMEDY}"
        )


class RefuseUnsigned:
    """Stands in for the webhook sender while the secret is weak."""

    async def send(self, target: str, payload: dict[str, Any]) -> None:
        raise DeliveryError(f"webhook not sent: no signing secret; {REMEDY}", retryable=False)

    async def close(self) -> None:
        return None


def webhook_sender(secret: str, make: Any) -> Sender:
    """``make(secret)`` when the secret is usable, else a sender that refuses."""
    sender: Sender = RefuseUnsigned() if is_weak(secret) else make(secret)
    return sender
