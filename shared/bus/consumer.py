"""The transactional consumer: how every service applies what it consumes, written once.

A service supplies an ``Application`` — how to decode one message and how to apply a
batch of decoded ones inside a database session — and ``TransactionalConsumer`` does the
rest, in one transaction per batch:

    lock the stored offsets -> skip what is applied, ``Rewind`` on a gap -> decode each
    message -> ``apply(session, items)`` -> dead letters -> save the next offsets

Two named policies decide what happens when that fails (getsentry/arroyo is the model):
- ``DeadLetterPolicy``: a message that cannot be decoded, or whose content makes the
  batch fail, goes to the dead-letter topic with its stage, reason, origin and raw bytes,
  and its partition moves on. A failing batch is split in halves until the message at
  fault stands alone, so the rest of the batch is applied as usual.
- ``RetryPolicy``: any other failure (the database or the broker away, or a bug) rolls
  the batch back and retries it with backoff, for ever: nothing is skipped, lag shows
  the stall.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.bus.dlq import DeadLetter, DeadLetterQueue
from shared.bus.loop import next_offsets
from shared.bus.ports import Message, PartitionId, Rewind
from shared.db.engine import transaction
from shared.db.offsets import OffsetRepository
from shared.metrics import ConsumerMetrics

log = logging.getLogger(__name__)

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class InvalidMessage(Exception):
    """Raised by ``Application.decode`` (or ``apply``) for a message that can never be
    applied as it is; ``reason`` names what is wrong with it."""

    def __init__(self, reason: str, *, kind: str = "invalid") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Item(Generic[T_co]):
    """A decoded message, with the message it came from."""

    message: Message
    value: T_co


@dataclass(slots=True)
class Applied:
    """What ``apply`` leaves for the consumer: dead letters for items it refused on
    their content (sent before the commit), and what to do once the batch committed."""

    letters: list[DeadLetter] = field(default_factory=list)
    after_commit: Callable[[], None] | None = None


class Application(Protocol[T]):
    """What a consuming service supplies: pure decoding and a batch apply that never
    commits (the consumer's transaction does)."""

    #: The stage named in dead letters (``scoring``, ``alerts``).
    stage: str

    def decode(self, message: Message) -> T:
        """The message's content; raise ``InvalidMessage`` naming what is wrong."""

    async def apply(self, session: AsyncSession, items: Sequence[Item[T]]) -> Applied:
        """Apply the batch's new items within ``session``."""


class RetryPolicy:
    """Retries a failing batch with exponential backoff; nothing is ever skipped."""

    def __init__(self, *, initial_s: float = 0.2, max_s: float = 30.0) -> None:
        self.initial_s = initial_s
        self.max_s = max_s

    def delays(self) -> _Backoff:
        return _Backoff(self.initial_s, self.max_s)


class _Backoff:
    def __init__(self, initial_s: float, max_s: float) -> None:
        self._next = initial_s
        self._max = max_s

    def __next__(self) -> float:
        delay, self._next = self._next, min(self._max, self._next * 2)
        return delay


# SQLSTATE classes of errors caused by the values written, not by the database's state:
# 22 data exception (a string too long, a number out of range), 23 integrity violation.
_CONTENT_SQLSTATE_CLASSES = ("22", "23")


class DeadLetterPolicy:
    """Decides which failures are a message's own fault, and sends their letters."""

    def __init__(self, queue: DeadLetterQueue, *, stage: str) -> None:
        self.queue = queue
        self.stage = stage

    @staticmethod
    def is_poison(exc: BaseException) -> bool:
        """Whether ``exc`` comes from the content of what was applied: the same input
        fails the same way every time, so retrying it can never succeed."""
        if isinstance(exc, InvalidMessage | ValueError | ArithmeticError | RecursionError):
            return True
        if isinstance(exc, DataError | IntegrityError):
            return True
        if isinstance(exc, DBAPIError):
            state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
            return isinstance(state, str) and state[:2] in _CONTENT_SQLSTATE_CLASSES
        if isinstance(exc, StatementError):
            # A value the driver could not even send (e.g. a date out of its range).
            return exc.orig is not None and DeadLetterPolicy.is_poison(exc.orig)
        return False

    def letter(self, message: Message, exc: BaseException) -> DeadLetter:
        if isinstance(exc, InvalidMessage):
            return DeadLetter.of(message, reason=exc.reason, stage=self.stage, kind=exc.kind)
        reason = f"cannot be applied: {type(exc).__name__}: {exc}"
        return DeadLetter.of(message, reason=reason[:1000], stage=self.stage, kind="unappliable")


class TransactionalConsumer(Generic[T]):
    """A bus ``BatchHandler`` that applies batches exactly once (see the module doc)."""

    def __init__(
        self,
        application: Application[T],
        *,
        sessions: async_sessionmaker[AsyncSession],
        offsets: OffsetRepository,
        dead_letters: DeadLetterPolicy,
        metrics: ConsumerMetrics,
        retry: RetryPolicy | None = None,
        wait_for_flush: bool = True,
    ) -> None:
        self._application = application
        self._sessions = sessions
        self._offsets = offsets
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._retry = retry or RetryPolicy()
        self._wait_for_flush = wait_for_flush
        # Partitions sent back to their stored offset, and to which (see ``_unapplied``).
        self._rewound: dict[PartitionId, int] = {}

    async def __call__(self, messages: Sequence[Message]) -> None:
        delays = self._retry.delays()
        while True:
            try:
                await self._isolating_poison(messages)
                return
            except Rewind:
                raise
            except Exception:
                delay = next(delays)
                log.exception("applying a batch failed; retrying in %.1f s", delay)
                await asyncio.sleep(delay)

    async def _isolating_poison(self, messages: Sequence[Message]) -> None:
        """Apply ``messages``; if their content makes that fail, apply each half on its
        own, down to the one message at fault, which is dead-lettered instead."""
        try:
            await self._apply(messages)
        except Exception as exc:
            if not self._dead_letters.is_poison(exc):
                raise
            if len(messages) == 1:
                log.warning(
                    "dead-lettering a message that cannot be applied",
                    extra=_origin(messages[0], error=repr(exc)[:500]),
                )
                await self._apply(messages, poisoned=self._dead_letters.letter(messages[0], exc))
                return
            half = len(messages) // 2
            await self._isolating_poison(messages[:half])
            await self._isolating_poison(messages[half:])

    async def _apply(self, messages: Sequence[Message], poisoned: DeadLetter | None = None) -> None:
        letters: list[DeadLetter] = []
        applied = Applied()
        async with transaction(self._sessions, wait_for_flush=self._wait_for_flush) as session:
            batch = await self._unapplied(session, messages)
            if not batch:
                return  # another instance applied these while the partition moved
            if poisoned is not None:
                letters.append(poisoned)
            else:
                items = self._decode(batch, letters)
                if items:
                    applied = await self._application.apply(session, items)
                    letters += applied.letters
            if letters:
                # Before the commit: a crash after it would lose the letters; a crash
                # before it sends them again with the batch (the DLQ is at least once).
                await self._dead_letters.queue.send(letters)
            await self._offsets.save(session, next_offsets(batch))
        for kind, count in _count_kinds(letters).items():
            self._metrics.dead_lettered(kind, count)
        if applied.after_commit is not None:
            applied.after_commit()

    def _decode(self, batch: Sequence[Message], letters: list[DeadLetter]) -> list[Item[T]]:
        items: list[Item[T]] = []
        decode = self._application.decode
        for message in batch:
            try:
                items.append(Item(message, decode(message)))
            except Exception as exc:
                if not self._dead_letters.is_poison(exc):
                    raise
                letters.append(self._dead_letters.letter(message, exc))
        return items

    async def _unapplied(self, session: AsyncSession, messages: Sequence[Message]) -> list[Message]:
        """The messages not applied yet, each partition's in offset order (row-locks the
        partitions' stored offsets until the transaction ends, so two instances briefly
        holding a partition during a rebalance serialise here).

        Raises ``Rewind`` when a partition's batch starts above its stored offset: the
        database lost its latest transactions (with asynchronous commits, a crash may),
        so the messages in between are read again. If, read again from there, the
        partition still starts above it, the log holds nothing in between (deleted by
        retention, or transaction markers) and the batch is taken.
        """
        by_partition: dict[PartitionId, list[Message]] = defaultdict(list)
        for message in messages:
            by_partition[PartitionId(message.topic, message.partition)].append(message)
        stored = await self._offsets.locked(session, sorted(by_partition))
        behind: dict[PartitionId, int] = {}
        unapplied: list[Message] = []
        for pid, batch in by_partition.items():
            # Nothing stored: nothing applied, so the partition is read from offset 0 (or,
            # past a rewind, from the first offset its log still holds).
            floor = stored.get(pid, 0)
            # Each partition's messages come in offset order: the first tells it all.
            if batch[0].offset > floor and self._rewound.pop(pid, None) != floor:
                behind[pid] = floor
                continue
            self._rewound.pop(pid, None)
            unapplied += batch if batch[0].offset >= floor else [
                m for m in batch if m.offset >= floor
            ]
        if behind:
            self._rewound.update(behind)
            raise Rewind(behind)
        return unapplied


def _count_kinds(letters: Sequence[DeadLetter]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for letter in letters:
        counts[letter.kind] += 1
    return counts


def _origin(message: Message, **extra: str) -> dict[str, str | int]:
    return {"topic": message.topic, "partition": message.partition, "offset": message.offset,
            **extra}
