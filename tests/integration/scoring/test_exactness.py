"""Exactness under faults: kill -9 the scorer mid-stream, rebalance two scorers, and
take the database back to an earlier moment under a running scorer.

In each, the final bucket totals must equal a computation made independently from the
unique events sent (duplicates re-sent on purpose must count once).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.scoring.tables import kpi_buckets
from shared.bus.factory import create_publisher
from shared.bus.ports import OutgoingRecord
from shared.contracts.events import EventEnvelope
from shared.db.engine import create_engine, create_session_factory
from shared.db.metadata import consumer_offsets
from shared.settings import Settings
from tests.integration.scoring.conftest import eventually
from tests.support.processes import ServiceProcess, free_port, settings_env

EVENTS = 6000
DUPLICATE_SHARE = 0.1


class Stream:
    """Events with a known answer: complaint count and payment sum of the unique ones."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed)
        now = datetime.now(UTC)
        self.unique: list[EventEnvelope] = []
        for i in range(EVENTS):
            occurred = now - timedelta(seconds=rng.randint(60, 3 * 86400))
            if i % 3 == 0:
                value = round(rng.uniform(1, 500), 2)
                kind, source = "payment_received", "crm"
            else:
                value, kind, source = None, "complaint_received", "support"
            self.unique.append(
                EventEnvelope(
                    event_id=uuid.uuid4().hex,
                    source=source,
                    type=kind,
                    occurred_at=occurred,
                    received_at=now,
                    value=value,
                )
            )
        resent = rng.sample(self.unique, int(EVENTS * DUPLICATE_SHARE))
        self.sent = self.unique + resent
        rng.shuffle(self.sent)
        self.complaints = sum(1 for e in self.unique if e.type == "complaint_received")
        self.payment_micros = sum(
            int(Decimal(str(e.value)) * 1_000_000) for e in self.unique if e.value is not None
        )


async def produce(settings: Settings, stream: Stream, seconds: float) -> None:
    """Send the stream in small batches spread over ``seconds``."""
    publisher = create_publisher(settings.kafka, client_id="test-exactness")
    await publisher.start()
    batch = 100
    pause = seconds / (len(stream.sent) / batch)
    try:
        for start in range(0, len(stream.sent), batch):
            chunk = stream.sent[start : start + batch]
            await publisher.publish(
                settings.kafka.topics().events,
                [OutgoingRecord(key=e.event_id.encode(), value=e.to_bytes()) for e in chunk],
            )
            await asyncio.sleep(pause)
    finally:
        await publisher.stop()


async def totals(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int, int]:
    """(complaints counted, payment sum in micros, messages consumed per stored offsets)."""
    c = kpi_buckets.c
    async with sessions() as session:
        complaints = (
            await session.execute(
                select(func.coalesce(func.sum(c.count), 0)).where(c.kpi_key == "complaints")
            )
        ).scalar_one()
        micros = (
            await session.execute(
                select(func.coalesce(func.sum(c.sum_micros), 0)).where(c.kpi_key == "revenue")
            )
        ).scalar_one()
        consumed = (
            await session.execute(
                select(func.coalesce(func.sum(consumer_offsets.c.next_offset), 0))
            )
        ).scalar_one()
    return int(complaints), int(micros), int(consumed)


async def settle_and_check(settings: Settings, stream: Stream) -> None:
    engine = create_engine(settings.database)
    sessions = create_session_factory(engine)
    try:
        # Fresh topics start at offset 0: the stored offsets add up to what was read.
        await eventually(
            lambda: _consumed_all(sessions, len(stream.sent)), timeout=120, interval=0.5
        )
        complaints, micros, _ = await totals(sessions)
    finally:
        await engine.dispose()
    assert complaints == stream.complaints
    assert micros == stream.payment_micros


async def _consumed_all(sessions: async_sessionmaker[AsyncSession], sent: int) -> bool:
    return (await totals(sessions))[2] >= sent


def scorer(settings: Settings, log_dir: Path, name: str) -> ServiceProcess:
    port = free_port()
    env = settings_env(settings) | {"KPIPULSE_SCORING__HTTP__PORT": str(port)}
    return ServiceProcess(["scoring"], env, log_dir, name, port)


async def test_kill_dash_9_mid_stream_neither_loses_nor_double_counts(
    scoring_settings: Settings, tmp_path: Path
) -> None:
    stream = Stream(seed=7)
    producing = asyncio.create_task(produce(scoring_settings, stream, seconds=12))
    process = scorer(scoring_settings, tmp_path, "scorer")
    rng = random.Random(11)
    for _ in range(4):
        process.start()
        await asyncio.to_thread(process.wait_healthy)
        await asyncio.sleep(rng.uniform(1.0, 3.0))
        process.kill9()
    await producing
    process.start()
    try:
        await settle_and_check(scoring_settings, stream)
    finally:
        process.terminate()


async def test_two_scorers_rebalancing_count_each_event_once(
    scoring_settings: Settings, tmp_path: Path
) -> None:
    stream = Stream(seed=13)
    first = scorer(scoring_settings, tmp_path, "first")
    second = scorer(scoring_settings, tmp_path, "second")
    first.start()
    await asyncio.to_thread(first.wait_healthy)
    producing = asyncio.create_task(produce(scoring_settings, stream, seconds=12))
    await asyncio.sleep(2)
    second.start()  # joins the group: partitions move while events flow
    await asyncio.to_thread(second.wait_healthy)
    await asyncio.sleep(3)
    first.terminate()  # leaves: its partitions move to the second
    await asyncio.sleep(2)
    first.start()  # and rejoins
    await producing
    try:
        await settle_and_check(scoring_settings, stream)
    finally:
        first.terminate()
        second.terminate()


# What the scorer's database is made of: folded state, dedupe ids and stored offsets.
_FOLD_TABLES = ("consumer_offsets", "kpi_buckets", "seen_events")


async def _take_snapshot(engine: AsyncEngine) -> None:
    """Copy the fold's tables as of one moment (one repeatable-read transaction)."""
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            for table in _FOLD_TABLES:
                await conn.execute(text(f"CREATE TABLE lost_{table} AS SELECT * FROM {table}"))


async def _go_back_to_snapshot(engine: AsyncEngine) -> None:
    """Put the tables back as the snapshot had them, at once for every reader: what a
    crash does to the folds committed without waiting for the disk."""
    async with engine.begin() as conn:
        await conn.execute(text(f"LOCK TABLE {', '.join(_FOLD_TABLES)} IN ACCESS EXCLUSIVE MODE"))
        for table in _FOLD_TABLES:
            await conn.execute(text(f"DELETE FROM {table}"))
            await conn.execute(text(f"INSERT INTO {table} SELECT * FROM lost_{table}"))


async def test_folds_the_database_lost_are_read_again_from_kafka(
    scoring_settings: Settings, tmp_path: Path
) -> None:
    """The scorer's database goes back to an earlier moment while the scorer runs (a
    Postgres crash may do that to folds committed without waiting for the disk): the
    consumer is past the stored offsets, and must read the lost events again."""
    stream = Stream(seed=17)
    process = scorer(scoring_settings, tmp_path, "scorer")
    process.start()
    engine = create_engine(scoring_settings.database)
    sessions = create_session_factory(engine)
    try:
        await asyncio.to_thread(process.wait_healthy)
        producing = asyncio.create_task(produce(scoring_settings, stream, seconds=12))
        await eventually(lambda: _consumed_all(sessions, 1000), timeout=60, interval=0.2)
        await _take_snapshot(engine)
        at_snapshot = (await totals(sessions))[2]
        await eventually(
            lambda: _consumed_all(sessions, at_snapshot + 1500), timeout=60, interval=0.2
        )
        folded_by_now = (await totals(sessions))[2]
        await _go_back_to_snapshot(engine)
        # The folds since the snapshot are gone (the scorer may already be reading them
        # again, but not 1,500 events' worth within this one query).
        assert (await totals(sessions))[2] < folded_by_now
        await producing
        await settle_and_check(scoring_settings, stream)
    finally:
        process.terminate()
        await engine.dispose()
