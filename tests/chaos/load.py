"""A client that keeps posting batches to ingest and never gives up on one.

Every batch carries fresh, unique event ids. A 2xx must list every one of them as
accepted; a 503/429 or a connection error means "not taken": the client waits
(Retry-After when given) and re-sends the SAME batch, ids unchanged, until accepted.
What was acknowledged is recorded per event, so the test can compute the expected KPI
values independently of the platform.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx

# How a KPI of the chaos catalog sees an event: (source, type).
PAGE_VIEW = ("web", "page_view")
PAYMENT = ("crm", "payment_received")
SIGNUP = ("web", "signup")
COMPLAINT = ("support", "complaint_received")


@dataclass(frozen=True, slots=True)
class Event:
    event_id: str
    source: str
    type: str
    value: Decimal | None

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event_id": self.event_id, "type": self.type}
        if self.value is not None:
            out["value"] = float(self.value)
        return out


@dataclass
class LoadStats:
    batches: int = 0
    events_sent: int = 0
    events_acked: int = 0
    status_503: int = 0
    status_429: int = 0
    connection_errors: int = 0
    retries: int = 0
    batches_retried: int = 0
    events_retried: int = 0
    abandoned_batches: int = 0
    unexpected: list[str] = field(default_factory=list)
    last_ack_at: float = 0.0

    def summary(self) -> dict[str, int]:
        return {
            "batches": self.batches,
            "events_sent": self.events_sent,
            "events_acked": self.events_acked,
            "http_503": self.status_503,
            "http_429": self.status_429,
            "connection_errors": self.connection_errors,
            "retries": self.retries,
            "batches_retried": self.batches_retried,
            "events_in_retried_batches": self.events_retried,
        }


class Loader:
    def __init__(
        self,
        ingest_url: str,
        keys: dict[str, str],
        *,
        seed: int,
        batch_size: int,
        pause_s: float,
        workers: int,
    ) -> None:
        self._url = f"{ingest_url}/v1/events"
        self._keys = keys
        self._rng = random.Random(seed)
        self._batch_size = batch_size
        self._pause_s = pause_s
        self._workers = workers
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=2.0))
        self.stats = LoadStats()
        self.acked: dict[str, Event] = {}
        self.generated: dict[str, Event] = {}
        self.retried_ids: set[str] = set()
        self.statuses: dict[int, int] = {}

    # -- the events -----------------------------------------------------------------
    def make(self, kind: tuple[str, str], count: int) -> list[Event]:
        events = []
        for _ in range(count):
            value = None
            if kind == PAYMENT:
                value = Decimal(self._rng.randint(100, 50_000)) / 100  # 1.00 … 500.00
            event = Event(uuid.uuid4().hex, kind[0], kind[1], value)
            self.generated[event.event_id] = event
            events.append(event)
        return events

    # -- sending ----------------------------------------------------------------------
    async def deliver(self, events: list[Event]) -> None:
        """POST one batch (all of one source) until ingest acknowledges all of it."""
        source = events[0].source
        headers = {"Authorization": f"Bearer {self._keys[source]}"}
        body = {"batch": [e.body() for e in events]}
        ids = [e.event_id for e in events]
        self.stats.batches += 1
        self.stats.events_sent += len(events)
        attempt = 0
        while True:
            attempt += 1
            wait = await self._attempt(headers, body, ids)
            if wait is None:
                break
            self.stats.retries += 1
            if attempt == 1:
                self.stats.batches_retried += 1
                self.stats.events_retried += len(events)
                self.retried_ids.update(ids)
            await asyncio.sleep(wait)
        for event in events:
            self.acked[event.event_id] = event
        self.stats.events_acked += len(events)
        self.stats.last_ack_at = time.monotonic()

    async def _attempt(
        self, headers: dict[str, str], body: dict[str, Any], ids: list[str]
    ) -> float | None:
        """None when acknowledged; otherwise how long to wait before the retry."""
        try:
            response = await self._client.post(self._url, json=body, headers=headers)
        except httpx.TransportError:
            # Refused (ingest restarting) or no answer: re-send, the ids make it safe.
            self.stats.connection_errors += 1
            return 0.5
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        if response.status_code in (503, 429):
            if response.status_code == 503:
                self.stats.status_503 += 1
            else:
                self.stats.status_429 += 1
            retry_after = response.headers.get("Retry-After")
            if retry_after is None or not retry_after.isdigit():
                self.stats.unexpected.append(f"{response.status_code} without Retry-After")
                return 1.0
            return float(retry_after)
        if response.status_code != 200:
            self.stats.unexpected.append(f"{response.status_code}: {response.text[:300]}")
            return 1.0
        answer = response.json()
        if answer.get("rejected") or sorted(answer.get("accepted", [])) != sorted(ids):
            self.stats.unexpected.append(f"200 not accepting the whole batch: {answer}")
        return None

    # -- the background load ---------------------------------------------------------
    def start(self) -> None:
        kinds = itertools.cycle([PAGE_VIEW, PAGE_VIEW, PAYMENT])
        for index in range(self._workers):
            self._tasks.append(
                asyncio.create_task(self._work(lambda: next(kinds), index), name=f"load-{index}")
            )

    async def _work(self, next_kind: Callable[[], tuple[str, str]], index: int) -> None:
        await asyncio.sleep(index * self._pause_s / max(1, self._workers))
        while not self._stop.is_set():
            await self.deliver(self.make(next_kind(), self._batch_size))
            await asyncio.sleep(self._pause_s)

    async def stop(self, timeout: float) -> None:
        """Stop generating; batches in flight get ``timeout`` seconds to be acknowledged.

        A batch still not taken by then is abandoned (its events stay unacknowledged,
        which the test reports as lost).
        """
        self._stop.set()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self.stats.abandoned_batches = len(pending)
        await self._client.aclose()

    async def acked_progress(self, timeout: float) -> bool:
        """Whether new acknowledgements arrive within ``timeout`` seconds from now."""
        before = self.stats.events_acked
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.stats.events_acked > before:
                return True
            await asyncio.sleep(0.2)
        return False
