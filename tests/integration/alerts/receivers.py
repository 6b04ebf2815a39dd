"""Real receivers for the tests: an SMTP server (aiosmtpd) and a tiny HTTP server.

Both run on 127.0.0.1 on a free port and record what they received, so tests read the
actual email and the actual signed webhook request.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message as EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.processes import free_port


@dataclass
class ReceivedMail:
    recipients: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        # CPython folds a subject starting with "[" onto a continuation line; clients
        # strip that leading fold whitespace, and so do we.
        return str(self.message["Subject"]).strip()

    def part(self, content_type: str) -> str:
        for part in self.message.walk():
            if part.get_content_type() == content_type:
                payload = part.get_payload(decode=True)
                assert isinstance(payload, bytes)
                return payload.decode(part.get_content_charset() or "utf-8")
        raise AssertionError(f"no {content_type} part")


class _Collector:
    def __init__(self) -> None:
        self.mails: list[ReceivedMail] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        # The modern policy unfolds long headers (subjects) the way mail clients do.
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        with self.lock:
            self.mails.append(ReceivedMail(list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


class SmtpServer:
    """aiosmtpd in its own thread (how aiosmtpd's Controller runs it)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._collector = _Collector()
        self._controller = Controller(self._collector, hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def mails_to(self, recipient: str) -> list[ReceivedMail]:
        with self._collector.lock:
            return [m for m in self._collector.mails if recipient in m.recipients]

    async def wait_for(
        self, recipient: str, count: int, *, timeout: float = 20.0
    ) -> list[ReceivedMail]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            mails = self.mails_to(recipient)
            if len(mails) >= count:
                return mails
            await asyncio.sleep(0.05)
        found = self.mails_to(recipient)
        raise AssertionError(f"expected {count} mail(s) to {recipient}, got {len(found)}")


@dataclass
class HttpRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpReceiver:
    """Answers POSTs with the statuses queued in ``replies`` (then 200), recording each."""

    requests: list[HttpRequest] = field(default_factory=list)
    replies: list[int] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> HttpReceiver:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def on_path(self, path: str) -> list[HttpRequest]:
        return [r for r in self.requests if r.path == path]

    async def wait_for(self, path: str, count: int, timeout: float = 20.0) -> list[HttpRequest]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.on_path(path)) >= count:
                return self.on_path(path)
            await asyncio.sleep(0.05)
        raise AssertionError(f"expected {count} request(s) on {path}, got {self.on_path(path)}")

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            method, path, _ = request_line.split(" ", 2)
            headers = {}
            for line in header_lines:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append(HttpRequest(method, path, headers, body))
            status = self.replies.pop(0) if self.replies else 200
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".encode()
            )
            await writer.drain()
        writer.close()


async def eventually(check: Callable[[], Any], *, timeout: float = 20.0) -> Any:
    """Poll an async or sync check until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout} s (last: {last!r})")
