"""Owner webhooks cannot reach this network's own machines, nor swamp alerts' memory.

Each case goes through the production sender and client (``http_poster``): what the
settings allow, what a resolver answers, what a receiver sends back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from services.alerts.channels.base import DeliveryError
from services.alerts.channels.http import HttpPoster, WebhookSender, http_poster
from shared.settings import AlertsSettings
from tests.integration.alerts.factories import unique

BODY = {"body": {"status": "firing"}}


def poster(
    *, allow_http: bool = True, allowed: list[str] | None = None, resolver: object = None
) -> HttpPoster:
    cfg = AlertsSettings(
        allow_http_webhooks=allow_http, webhook_allowed_hosts=allowed or [], webhook_timeout_s=5
    )
    options = {} if resolver is None else {"resolver": resolver}
    return http_poster(cfg, **options)


async def refusal(sender_poster: HttpPoster, url: str) -> DeliveryError:
    sender = WebhookSender(sender_poster, "a-real-signing-secret")
    try:
        with pytest.raises(DeliveryError) as caught:
            await sender.send(url, BODY)
    finally:
        await sender.close()
    return caught.value


@dataclass
class RawServer:
    """A one-purpose HTTP server on 127.0.0.1: ``respond`` writes the whole answer."""

    respond: Callable[[asyncio.StreamWriter], Awaitable[None]]
    hits: list[str] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            head = await reader.readuntil(b"\r\n\r\n")
            self.hits.append(head.split(b" ", 2)[1].decode())
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            await self.respond(writer)
        writer.close()


@contextlib.asynccontextmanager
async def raw_server(
    respond: Callable[[asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[RawServer]:
    server = RawServer(respond)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = int(listener.sockets[0].getsockname()[1])
    try:
        yield server
    finally:
        listener.close()
        await listener.wait_closed()


async def test_loopback_is_refused_unless_allow_listed() -> None:
    async def ok(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    async with raw_server(ok) as server:
        url = f"http://127.0.0.1:{server.port}/{unique('hook')}"
        refused = await refusal(poster(), url)
        assert "loopback" in refused.reason and not refused.retryable
        assert server.hits == []
        sender = WebhookSender(poster(allowed=["127.0.0.1"]), "a-real-signing-secret")
        await sender.send(url, BODY)
        await sender.close()
        assert len(server.hits) == 1


async def test_the_metadata_address_is_refused() -> None:
    refused = await refusal(poster(), "http://169.254.169.254/latest/meta-data/")
    assert "metadata" in refused.reason and not refused.retryable


async def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    asked: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["10.20.30.40"]

    refused = await refusal(poster(resolver=resolver), "https://hooks.internal.test/x")
    assert asked == ["hooks.internal.test"]
    assert "10.20.30.40" in refused.reason and "private" in refused.reason


async def test_one_private_address_among_public_ones_is_refused() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "192.168.1.10"]

    refused = await refusal(poster(resolver=resolver), "https://mixed.test/x")
    assert "192.168.1.10" in refused.reason


async def test_plain_http_is_refused_unless_allowed() -> None:
    refused = await refusal(poster(allow_http=False), "http://hooks.example.com/x")
    assert "https" in refused.reason and not refused.retryable


async def test_a_redirect_to_a_private_address_is_not_followed() -> None:
    async def redirect(writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://169.254.169.254/latest/\r\n"
            b"Content-Length: 0\r\n\r\n"
        )
        await writer.drain()

    async with raw_server(redirect) as server:
        url = f"http://127.0.0.1:{server.port}/{unique('hook')}"
        refused = await refusal(poster(allowed=["127.0.0.1"]), url)
    assert "redirects are not followed" in refused.reason and not refused.retryable
    assert len(server.hits) == 1


async def test_an_oversized_answer_is_read_only_up_to_the_cap() -> None:
    total = 300 * 1024 * 1024
    written = 0

    async def huge(writer: asyncio.StreamWriter) -> None:
        nonlocal written
        writer.write(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n"
            + f"Content-Length: {total}\r\n\r\n".encode()
        )
        chunk = b"x" * (256 * 1024)
        while written < total:
            writer.write(chunk)
            await writer.drain()  # raises once the client hung up
            written += len(chunk)

    async with raw_server(huge) as server:
        url = f"http://127.0.0.1:{server.port}/{unique('hook')}"
        refused = await refusal(poster(allowed=["127.0.0.1"]), url)
    assert refused.reason.startswith("http 500: xxx") and refused.retryable
    assert len(refused.reason) < 300
    # The client stopped reading after the cap and closed: the server could not send
    # more than what fits in the socket buffers on top of it.
    assert written < total // 10
