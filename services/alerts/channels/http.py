"""Generic (signed) webhooks and Slack incoming webhooks over one guarded httpx client.

Owner URLs are untrusted: the scheme is checked before anything is sent, the connection
goes only to addresses ``guarded.py`` allows, redirects are not followed, and at most
``max_response_bytes`` of an answer are read (an answer is only quoted in an error).
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from services.alerts.channels.base import DeliveryError
from services.alerts.channels.guarded import DestinationRefused, guarded_client
from services.alerts.domain.destinations import url_problem
from services.alerts.domain.payloads import SIGNATURE_HEADER, sign
from services.alerts.domain.retry import http_status_retryable
from shared.settings import AlertsSettings


class HttpPoster:
    """POSTs to owner URLs within the outbound policy."""

    def __init__(
        self, client: httpx.AsyncClient, *, allow_http: bool, max_response_bytes: int
    ) -> None:
        self._client = client
        self._allow_http = allow_http
        self._max = max_response_bytes

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        problem = url_problem(url, allow_http=self._allow_http)
        if problem is not None:
            raise DeliveryError(f"refused: {problem}", retryable=False)
        try:
            async with self._client.stream("POST", url, content=body, headers=headers) as answer:
                if answer.is_success:
                    return
                head = await self._read_head(answer)
        except DestinationRefused as exc:
            raise DeliveryError(f"refused: {exc}", retryable=False) from exc
        except httpx.TimeoutException as exc:
            raise DeliveryError(f"timeout: {exc!r}", retryable=True) from exc
        except httpx.TransportError as exc:
            if isinstance(exc.__cause__, DestinationRefused) or "resolves to" in str(exc):
                raise DeliveryError(f"refused: {exc}", retryable=False) from exc
            raise DeliveryError(f"connection error: {exc!r}", retryable=True) from exc
        except httpx.InvalidURL as exc:
            raise DeliveryError(f"invalid url: {exc}", retryable=False) from exc
        if answer.is_redirect:
            raise DeliveryError(
                f"http {answer.status_code}: redirects are not followed (the owner URL "
                "must be the final one)",
                retryable=False,
            )
        text = head.decode("utf-8", errors="replace")[:200]
        raise DeliveryError(
            f"http {answer.status_code}: {text}",
            retryable=http_status_retryable(answer.status_code),
        )

    async def _read_head(self, answer: httpx.Response) -> bytes:
        """At most the cap of the answer; the rest is never read (nor buffered)."""
        head = bytearray()
        async for chunk in answer.aiter_raw():
            head += chunk[: self._max - len(head)]
            if len(head) >= self._max:
                break
        return bytes(head)

    async def close(self) -> None:
        await self._client.aclose()


class WebhookSender:
    """POSTs the Alertmanager-like body, HMAC-signed over the exact bytes sent."""

    def __init__(self, poster: HttpPoster, secret: str) -> None:
        self._poster = poster
        self._secret = secret

    async def send(self, target: str, payload: dict[str, Any]) -> None:
        body = orjson.dumps(payload["body"])
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(body, self._secret),
            "User-Agent": "kpipulse-alerts",
        }
        await self._poster.post(target, body, headers)

    async def close(self) -> None:
        await self._poster.close()


class SlackSender:
    def __init__(self, poster: HttpPoster) -> None:
        self._poster = poster

    async def send(self, target: str, payload: dict[str, Any]) -> None:
        body = orjson.dumps(payload["body"])
        await self._poster.post(target, body, {"Content-Type": "application/json"})

    async def close(self) -> None:
        await self._poster.close()


def http_poster(cfg: AlertsSettings, **client_options: Any) -> HttpPoster:
    """The poster the settings describe; ``client_options`` reach ``guarded_client``."""
    client = guarded_client(
        cfg.webhook_timeout_s, allowed_hosts=cfg.webhook_allowed_hosts, **client_options
    )
    return HttpPoster(
        client,
        allow_http=cfg.allow_http_webhooks,
        max_response_bytes=cfg.webhook_max_response_bytes,
    )
