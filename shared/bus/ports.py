"""The bus port: what services need from a log of messages, whichever adapter serves it.

Producing returns only after the bus acknowledged every record (for Kafka: acks=all).
Consuming hands batches to a handler and commits after the handler returns, so a crash
re-delivers rather than loses. Services that keep their own offsets (scoring stores
them in the same database transaction as its state) pass an ``OffsetStore`` and the
consumer seeks to those offsets whenever partitions are assigned.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol


class PublishError(Exception):
    """The bus did not acknowledge a record; nothing may be reported as accepted."""


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int | None = None


class Message(NamedTuple):
    """One consumed record. A named tuple rather than a frozen dataclass: one is built
    per consumed record, and this is several times cheaper to build."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int
    headers: tuple[tuple[str, bytes], ...] = ()

    def header(self, name: str) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


@dataclass(frozen=True, slots=True, order=True)
class PartitionId:
    topic: str
    partition: int


class Publisher(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, topic: str, records: Sequence[OutgoingRecord]) -> None:
        """Return once every record is durably acknowledged, else raise PublishError."""

    def is_healthy(self) -> bool: ...

    async def ping(self) -> bool:
        """Whether the bus answers right now (used by /readyz)."""


class Rewind(Exception):
    """A handler's answer when the offsets it stored lie below the batch it was handed.

    The state lost its latest transactions (a database crash with asynchronous commits,
    a restored backup) while the consumer's position went on. Nothing of the batch may
    have been applied. The subscriber moves each listed partition back to its offset,
    delivers the batch's other partitions again, and goes on.
    """

    def __init__(self, offsets: Mapping[PartitionId, int]) -> None:
        self.offsets = dict(offsets)
        listed = ", ".join(f"{p.topic}[{p.partition}]@{o}" for p, o in sorted(self.offsets.items()))
        super().__init__(f"read again from the stored offsets: {listed}")


#: Receives a batch; within it, each partition's messages come in offset order.
BatchHandler = Callable[[Sequence[Message]], Awaitable[None]]


class OffsetStore(Protocol):
    """Offsets a service keeps beside its own state (next offset to read)."""

    async def load(self, partitions: Sequence[PartitionId]) -> dict[PartitionId, int]: ...


class Subscriber(Protocol):
    async def start(self) -> None: ...

    async def run(self, handler: BatchHandler) -> None:
        """Deliver batches to ``handler`` until ``stop`` is called; commit after each."""

    async def stop(self) -> None:
        """Finish the batch in hand, commit it, and leave the group."""

    async def lag(self) -> dict[PartitionId, int]: ...

    async def ping(self) -> bool: ...
