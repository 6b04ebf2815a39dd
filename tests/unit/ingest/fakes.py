"""Fakes for ingest's unit tests: a publisher that records, fails or holds on demand."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from shared.bus.ports import OutgoingRecord, PublishError


@dataclass
class FakePublisher:
    """Records what was acknowledged per topic; ``fail`` refuses, ``hold`` delays acks."""

    published: dict[str, list[OutgoingRecord]] = field(default_factory=dict)
    fail: bool = False
    hold: asyncio.Event | None = None

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def publish(self, topic: str, records: Sequence[OutgoingRecord]) -> None:
        if self.hold is not None:
            await self.hold.wait()
        if self.fail:
            raise PublishError("the fake broker did not acknowledge")
        self.published.setdefault(topic, []).extend(records)

    async def ping(self) -> bool:
        return not self.fail

    def is_healthy(self) -> bool:
        return not self.fail
