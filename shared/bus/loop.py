"""The consuming loop, written once for every bus adapter.

An adapter supplies a ``BatchSource`` (fetch a batch, move positions, commit); the loop
hands each batch to the handler and decides what happens to the positions:
- the handler returned: the batch is committed;
- it raised ``Rewind``: the batch's partitions are read again, the listed ones from the
  offsets it names (the handler applied nothing of the batch);
- it raised anything else: the batch's partitions go back to the batch's first records,
  so the restarted loop reads it again instead of skipping it (handlers drop what they
  already applied), and the error propagates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Protocol

from shared.bus.ports import BatchHandler, Message, PartitionId, Rewind

log = logging.getLogger(__name__)


class BatchSource(Protocol):
    async def fetch(self) -> Sequence[Message]:
        """The next batch (each partition's messages in offset order), or an empty one
        after waiting a poll interval."""

    def seek(self, offsets: Mapping[PartitionId, int]) -> None:
        """Read these partitions from these offsets next."""

    async def commit(self, batch: Sequence[Message]) -> None:
        """The handler applied ``batch``: move past it for good."""


class BatchLoop:
    """Runs batches from a source through a handler until stopped; stop waits for the
    batch in hand to finish (and be committed)."""

    def __init__(self) -> None:
        self._stopping = asyncio.Event()
        self._finished = asyncio.Event()
        self._running = False

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def run(self, source: BatchSource, handler: BatchHandler) -> None:
        self._running = True
        self._finished.clear()  # a restarted loop (after a failed batch) is running again
        try:
            while not self._stopping.is_set():
                batch = await source.fetch()
                if batch:
                    await self._deliver(source, handler, batch)
        finally:
            self._finished.set()

    async def _deliver(
        self, source: BatchSource, handler: BatchHandler, batch: Sequence[Message]
    ) -> None:
        try:
            await handler(batch)
        except Rewind as rewind:
            log.warning("consumer rewound", extra={"error": str(rewind)})
            source.seek({**first_offsets(batch), **rewind.offsets})
            return
        except BaseException:
            source.seek(first_offsets(batch))
            raise
        # Committed only after the handler made its effect durable: a crash in between
        # re-delivers, and handlers are idempotent by design.
        await source.commit(batch)

    def request_stop(self) -> None:
        self._stopping.set()

    async def wait_finished(self, timeout_s: float = 30.0) -> bool:
        """Whether the running loop finished its batch within ``timeout_s``."""
        if not self._running:
            return True
        try:
            await asyncio.wait_for(self._finished.wait(), timeout_s)
        except TimeoutError:
            return False
        return True


def first_offsets(batch: Sequence[Message]) -> dict[PartitionId, int]:
    """Per partition, the offset of the batch's first message."""
    firsts: dict[PartitionId, int] = {}
    for message in batch:
        firsts.setdefault(PartitionId(message.topic, message.partition), message.offset)
    return firsts


def next_offsets(batch: Sequence[Message]) -> dict[PartitionId, int]:
    """Per partition, the offset after the batch's last message."""
    nexts: dict[PartitionId, int] = {}
    for message in batch:
        pid = PartitionId(message.topic, message.partition)
        nexts[pid] = max(nexts.get(pid, 0), message.offset + 1)
    return nexts
