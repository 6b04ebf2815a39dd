"""The transactional consumer contract, with a fake application on SQLite (seconds, no
server): applied once, poison dead-lettered with the partition moving on, transient
failures retried and never dead-lettered, gaps rewound."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.bus.consumer import (
    Applied,
    DeadLetterPolicy,
    InvalidMessage,
    Item,
    RetryPolicy,
    TransactionalConsumer,
)
from shared.bus.dlq import REASON, SOURCE_OFFSET, STAGE, DeadLetterQueue
from shared.bus.ports import Message, OutgoingRecord, PartitionId, PublishError, Rewind
from shared.db.engine import create_engine, create_session_factory
from shared.db.migrate import upgrade
from shared.db.offsets import OffsetRepository
from shared.metrics import ConsumerMetrics
from shared.settings import DatabaseSettings

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[Sessions]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'consumer.db'}"
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(DatabaseSettings(url=url))
    yield create_session_factory(engine)
    await engine.dispose()


class _Letters:
    """The dead-letter queue's publisher port, recording; it can fail a number of times."""

    def __init__(self, failures: int = 0) -> None:
        self.records: list[OutgoingRecord] = []
        self.failures = failures

    async def publish(self, topic: str, records: Sequence[OutgoingRecord]) -> None:
        if self.failures:
            self.failures -= 1
            raise PublishError("kafka away")
        self.records.extend(records)


class _Numbers:
    """Applies integers: refuses non-integers at decoding, and 13 fails when applied
    (a content error no retry can cure); ``flaky`` failures look like a database away."""

    stage = "test"

    def __init__(self, flaky: int = 0) -> None:
        self.applied: list[int] = []
        self.committed = 0
        self.flaky = flaky

    def decode(self, message: Message) -> int:
        try:
            return int(message.value)
        except ValueError as exc:
            raise InvalidMessage(f"not a number: {message.value!r}", kind="not_a_number") from exc

    async def apply(self, session: AsyncSession, items: Sequence[Item[int]]) -> Applied:
        if self.flaky:
            self.flaky -= 1
            raise OperationalError("SELECT 1", {}, OSError("connection refused"))
        values = [item.value for item in items]
        if 13 in values:
            raise OverflowError("13 does not fit")
        self.applied += values  # as if written in ``session``: rolled back with it

        def done() -> None:
            self.committed += len(values)

        return Applied(after_commit=done)


def _consumer(
    sessions: Sessions, app: _Numbers, letters: _Letters, registry: CollectorRegistry
) -> TransactionalConsumer[int]:
    return TransactionalConsumer(
        app,
        sessions=sessions,
        offsets=OffsetRepository(sessions, consumer="test"),
        dead_letters=DeadLetterPolicy(DeadLetterQueue(letters, "dlq"), stage=app.stage),  # type: ignore[arg-type]
        metrics=ConsumerMetrics(registry, "test"),
        retry=RetryPolicy(initial_s=0.01, max_s=0.02),
    )


def _batch(*values: bytes, partition: int = 0, first: int = 0) -> list[Message]:
    return [Message("t", partition, first + i, None, v, 0) for i, v in enumerate(values)]


def _dead(registry: CollectorRegistry, kind: str) -> float | None:
    return registry.get_sample_value(
        "kpipulse_dlq_messages_total", {"service": "test", "reason": kind}
    )


async def test_a_batch_is_applied_once_and_redelivery_skips_it(sessions: Sessions) -> None:
    app, letters, registry = _Numbers(), _Letters(), CollectorRegistry()
    consumer = _consumer(sessions, app, letters, registry)
    batch = _batch(b"1", b"2", b"3")
    await consumer(batch)
    await consumer(batch)  # re-delivered after a crash before the bus committed
    await consumer(batch[1:])
    assert app.applied == [1, 2, 3] and app.committed == 3
    offsets = await OffsetRepository(sessions, consumer="test").load([PartitionId("t", 0)])
    assert offsets == {PartitionId("t", 0): 3}


async def test_an_undecodable_message_is_dead_lettered_and_the_rest_applied(
    sessions: Sessions,
) -> None:
    app, letters, registry = _Numbers(), _Letters(), CollectorRegistry()
    await _consumer(sessions, app, letters, registry)(_batch(b"1", b"x", b"3"))
    assert app.applied == [1, 3]
    (letter,) = letters.records
    headers = dict(letter.headers)
    assert letter.value == b"x"
    assert headers[REASON] == b"not a number: b'x'"
    assert headers[STAGE] == b"test" and headers[SOURCE_OFFSET] == b"1"
    assert _dead(registry, "not_a_number") == 1


async def test_a_message_that_cannot_be_applied_is_isolated_and_dead_lettered(
    sessions: Sessions,
) -> None:
    """A poison message fails its whole batch every time: the batch is split until it
    stands alone; it goes to the DLQ with the reason and the partition moves on."""
    app, letters, registry = _Numbers(), _Letters(), CollectorRegistry()
    consumer = _consumer(sessions, app, letters, registry)
    values = [b"1", b"2", b"13", b"4", b"5"]
    await consumer(_batch(*values) + _batch(b"6", b"7", partition=1))
    assert sorted(app.applied) == [1, 2, 4, 5, 6, 7]
    (letter,) = letters.records
    assert letter.value == b"13"
    assert dict(letter.headers)[REASON] == b"cannot be applied: OverflowError: 13 does not fit"
    assert dict(letter.headers)[SOURCE_OFFSET] == b"2"
    assert _dead(registry, "unappliable") == 1
    # The partition moved past it: the next batch is applied as usual.
    await consumer(_batch(b"8", first=5))
    assert app.applied[-1] == 8 and len(letters.records) == 1


async def test_transient_failures_retry_and_never_dead_letter(sessions: Sessions) -> None:
    app, letters, registry = _Numbers(flaky=3), _Letters(failures=2), CollectorRegistry()
    consumer = _consumer(sessions, app, letters, registry)
    await consumer(_batch(b"1", b"x", b"3"))  # the database away 3 times, then Kafka twice
    assert app.applied[-2:] == [1, 3] and app.committed == 2
    assert len(letters.records) == 1  # the one undecodable message, sent once committed
    assert _dead(registry, "unappliable") is None


async def test_a_gap_above_the_stored_offset_rewinds(sessions: Sessions) -> None:
    app, letters, registry = _Numbers(), _Letters(), CollectorRegistry()
    consumer = _consumer(sessions, app, letters, registry)
    await consumer(_batch(b"1", b"2"))
    with pytest.raises(Rewind) as raised:
        await consumer(_batch(b"5", first=4))
    assert raised.value.offsets == {PartitionId("t", 0): 2}
    await consumer(_batch(b"3", b"4", b"5", first=2))
    assert app.applied == [1, 2, 3, 4, 5]
