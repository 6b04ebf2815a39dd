"""An httpx client that connects only where ``domain/destinations.py`` allows.

httpcore asks its network backend for a TCP connection to the URL's host; this backend
resolves the name itself, checks every address, and connects to a checked one. TLS is
then negotiated by httpcore with the URL's host name, so certificates are still verified
against the name the owner gave. Resolving and connecting in one place is what makes it
safe against DNS rebinding: no second lookup can return another address.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Collection, Iterable
from typing import Any

import httpcore
import httpx

from services.alerts.domain.destinations import address_problem

Resolver = Callable[[str, int], Awaitable[list[str]]]


class DestinationRefused(httpcore.ConnectError):
    """The destination resolved to an address outbound calls may not reach."""


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(
        self,
        allowed_hosts: Collection[str],
        resolver: Resolver = system_resolver,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._allowed = frozenset(h.lower() for h in allowed_hosts)
        self._resolve = resolver
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore passes it by name
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self._resolve(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        problems = [address_problem(host, a, self._allowed) for a in addresses]
        # Every address must pass: a name answering one public and one private address
        # could otherwise be steered to the private one.
        refused = [p for p in problems if p is not None]
        if refused or not addresses:
            raise DestinationRefused(refused[0] if refused else f"{host} has no address")
        return await self._inner.connect_tcp(
            addresses[0], port, timeout, local_address, socket_options
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore passes it by name
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise DestinationRefused("unix sockets are refused")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_client(
    timeout_s: float,
    *,
    allowed_hosts: Collection[str] = (),
    resolver: Resolver = system_resolver,
) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    # httpx has no public hook for the network backend: swap in a pool that uses ours,
    # with the SSL context httpx built (certificate verification on).
    ssl_context = transport._pool._ssl_context
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl_context,
        network_backend=GuardedBackend(allowed_hosts, resolver),
    )
    # No redirects: a webhook answering 3xx is misconfigured, and following would resend
    # the signed body to a host the owner never named (a private one, say).
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(timeout_s),
        follow_redirects=False,
        trust_env=False,
    )
