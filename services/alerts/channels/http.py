"""Generic (signed) webhooks and Slack incoming webhooks over one httpx client."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from services.alerts.channels.base import DeliveryError
from services.alerts.domain.payloads import SIGNATURE_HEADER, sign
from services.alerts.domain.retry import http_status_retryable


async def _post(client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]) -> None:
    try:
        response = await client.post(url, content=body, headers=headers)
    except httpx.TimeoutException as exc:
        raise DeliveryError(f"timeout: {exc!r}", retryable=True) from exc
    except httpx.TransportError as exc:
        raise DeliveryError(f"connection error: {exc!r}", retryable=True) from exc
    except httpx.InvalidURL as exc:
        raise DeliveryError(f"invalid url: {exc}", retryable=False) from exc
    if response.is_success:
        return
    raise DeliveryError(
        f"http {response.status_code}: {response.text[:200]}",
        retryable=http_status_retryable(response.status_code),
    )


class WebhookSender:
    """POSTs the Alertmanager-like body, HMAC-signed over the exact bytes sent."""

    def __init__(self, client: httpx.AsyncClient, secret: str) -> None:
        self._client = client
        self._secret = secret

    async def send(self, target: str, payload: dict[str, Any]) -> None:
        body = orjson.dumps(payload["body"])
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(body, self._secret),
            "User-Agent": "kpipulse-alerts",
        }
        await _post(self._client, target, body, headers)

    async def close(self) -> None:
        await self._client.aclose()


class SlackSender:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def send(self, target: str, payload: dict[str, Any]) -> None:
        body = orjson.dumps(payload["body"])
        await _post(self._client, target, body, {"Content-Type": "application/json"})

    async def close(self) -> None:
        await self._client.aclose()


def http_client(timeout_s: float) -> httpx.AsyncClient:
    # No redirects: a webhook answering 3xx is misconfigured, and following would resend
    # the signed body to a host the owner never named.
    return httpx.AsyncClient(timeout=httpx.Timeout(timeout_s), follow_redirects=False)
