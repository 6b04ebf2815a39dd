"""The embedded bus: a durable, partitioned log in one SQLite file, for ``kpipulse dev``.

It keeps Kafka's contract where the services rely on it: records are partitioned by
key, each partition is an ordered log with offsets, a publish returns only after the
records are committed to disk (synchronous=FULL, so a ``kill -9`` loses nothing that
was acknowledged), and consumers commit offsets per group after their handler returned.
It serves a single process: one subscriber per group receives every partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

from shared.bus.loop import BatchLoop, next_offsets
from shared.bus.ports import (
    BatchHandler,
    Message,
    OffsetStore,
    OutgoingRecord,
    PartitionId,
    PublishError,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
    key BLOB, value BLOB NOT NULL, headers BLOB, timestamp_ms INTEGER NOT NULL,
    PRIMARY KEY (topic, partition, offset)
);
CREATE TABLE IF NOT EXISTS group_offsets (
    group_id TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL, PRIMARY KEY (group_id, topic, partition)
);
"""


def _encode_headers(headers: tuple[tuple[str, bytes], ...]) -> bytes:
    # Length-prefixed pairs: header values are arbitrary bytes.
    out = bytearray()
    for name, value in headers:
        raw = name.encode()
        out += len(raw).to_bytes(4, "big") + raw + len(value).to_bytes(4, "big") + value
    return bytes(out)


def _decode_headers(raw: bytes | None) -> tuple[tuple[str, bytes], ...]:
    pairs: list[tuple[str, bytes]] = []
    pos = 0
    data = raw or b""
    while pos < len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        name = data[pos + 4 : pos + 4 + size].decode()
        pos += 4 + size
        size = int.from_bytes(data[pos : pos + 4], "big")
        pairs.append((name, data[pos + 4 : pos + 4 + size]))
        pos += 4 + size
    return tuple(pairs)


class EmbeddedLog:
    """One SQLite file shared by every publisher and subscriber of the process."""

    _open: ClassVar[dict[Path, EmbeddedLog]] = {}
    _open_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, path: Path, partitions: int) -> None:
        self.path = path
        self.partitions = partitions
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._waiters: set[asyncio.Event] = set()

    @classmethod
    def open(cls, path: Path, partitions: int) -> EmbeddedLog:
        """The process's log for ``path`` (publishers and subscribers must share it)."""
        with cls._open_lock:
            resolved = path.resolve()
            if resolved not in cls._open:
                cls._open[resolved] = cls(resolved, partitions)
            return cls._open[resolved]

    def partition_for(self, key: bytes | None) -> int:
        return zlib.crc32(key or b"") % self.partitions

    def append(self, topic: str, records: Sequence[OutgoingRecord]) -> None:
        now_ms = int(time.time() * 1000)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                next_offsets: dict[int, int] = {}
                rows = []
                for record in records:
                    part = self.partition_for(record.key)
                    if part not in next_offsets:
                        (last,) = self._db.execute(
                            "SELECT COALESCE(MAX(offset), -1) FROM log"
                            " WHERE topic = ? AND partition = ?",
                            (topic, part),
                        ).fetchone()
                        next_offsets[part] = last + 1
                    rows.append(
                        (
                            topic,
                            part,
                            next_offsets[part],
                            record.key,
                            record.value,
                            _encode_headers(record.headers),
                            record.timestamp_ms or now_ms,
                        )
                    )
                    next_offsets[part] += 1
                self._db.executemany("INSERT INTO log VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def read(self, topic: str, positions: dict[int, int], limit: int) -> list[Message]:
        messages: list[Message] = []
        with self._lock:
            for part, offset in sorted(positions.items()):
                rows = self._db.execute(
                    "SELECT offset, key, value, headers, timestamp_ms FROM log"
                    " WHERE topic = ? AND partition = ? AND offset >= ?"
                    " ORDER BY offset LIMIT ?",
                    (topic, part, offset, limit - len(messages)),
                ).fetchall()
                messages += [
                    Message(topic, part, o, k, v, ts, _decode_headers(h))
                    for o, k, v, h, ts in rows
                ]
                if len(messages) >= limit:
                    break
        return messages

    def end_offsets(self, topic: str) -> dict[int, int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT partition, MAX(offset) + 1 FROM log WHERE topic = ? GROUP BY partition",
                (topic,),
            ).fetchall()
        return {p: o for p, o in rows}

    def committed(self, group: str, topic: str) -> dict[int, int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT partition, next_offset FROM group_offsets"
                " WHERE group_id = ? AND topic = ?",
                (group, topic),
            ).fetchall()
        return {p: o for p, o in rows}

    def commit(self, group: str, topic: str, offsets: dict[int, int]) -> None:
        with self._lock:
            self._db.executemany(
                "INSERT INTO group_offsets VALUES (?, ?, ?, ?) ON CONFLICT"
                " (group_id, topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
                [(group, topic, p, o) for p, o in offsets.items()],
            )

    def notify(self) -> None:
        for waiter in list(self._waiters):
            waiter.set()

    def watch(self, waiter: asyncio.Event) -> None:
        self._waiters.add(waiter)

    def unwatch(self, waiter: asyncio.Event) -> None:
        self._waiters.discard(waiter)


class EmbeddedPublisher:
    def __init__(self, log: EmbeddedLog) -> None:
        self._log = log

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def publish(self, topic: str, records: Sequence[OutgoingRecord]) -> None:
        if not records:
            return
        try:
            await asyncio.to_thread(self._log.append, topic, records)
        except sqlite3.Error as exc:
            raise PublishError(f"embedded log write failed: {exc}") from exc
        self._log.notify()

    def is_healthy(self) -> bool:
        return True

    async def ping(self) -> bool:
        return True


class EmbeddedSubscriber:
    """Delivers every partition of its topics to one consumer of the group."""

    def __init__(
        self,
        log: EmbeddedLog,
        *,
        topics: Sequence[str],
        group_id: str,
        offset_store: OffsetStore | None = None,
        max_batch: int = 5000,
        poll_interval_s: float = 0.2,
    ) -> None:
        self._log = log
        self._topics = list(topics)
        self._group = group_id
        self._offset_store = offset_store
        self._max_batch = max_batch
        self._poll_interval_s = poll_interval_s
        self._positions: dict[str, dict[int, int]] = {}
        self._next_topic = 0
        self._wakeup = asyncio.Event()
        self._loop = BatchLoop()

    async def start(self) -> None:
        parts = range(self._log.partitions)
        stored: dict[PartitionId, int] = {}
        if self._offset_store is not None:
            stored = await self._offset_store.load(
                [PartitionId(t, p) for t in self._topics for p in parts]
            )
        for topic in self._topics:
            committed = self._log.committed(self._group, topic)
            self._positions[topic] = {
                p: stored.get(PartitionId(topic, p), committed.get(p, 0)) for p in parts
            }
        self._log.watch(self._wakeup)

    async def run(self, handler: BatchHandler) -> None:
        await self._loop.run(self, handler)

    # The ``BatchSource`` of the loop: one topic's batch at a time, topics in turn.
    async def fetch(self) -> Sequence[Message]:
        for _ in self._topics:
            topic = self._topics[self._next_topic]
            self._next_topic = (self._next_topic + 1) % len(self._topics)
            batch = await asyncio.to_thread(
                self._log.read, topic, dict(self._positions[topic]), self._max_batch
            )
            if batch:
                return batch
        self._wakeup.clear()
        if not self._loop.stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._poll_interval_s)
        return []

    def seek(self, offsets: Mapping[PartitionId, int]) -> None:
        for pid, offset in offsets.items():
            if pid.topic in self._positions:
                self._positions[pid.topic][pid.partition] = offset

    async def commit(self, batch: Sequence[Message]) -> None:
        self.seek(next_offsets(batch))
        for topic in {message.topic for message in batch}:
            self._log.commit(self._group, topic, self._positions[topic])

    async def stop(self) -> None:
        self._loop.request_stop()
        self._wakeup.set()
        await self._loop.wait_finished(30)
        self._log.unwatch(self._wakeup)

    async def lag(self) -> dict[PartitionId, int]:
        result: dict[PartitionId, int] = {}
        for topic in self._topics:
            ends = self._log.end_offsets(topic)
            for part, position in self._positions.get(topic, {}).items():
                result[PartitionId(topic, part)] = max(0, ends.get(part, 0) - position)
        return result

    async def ping(self) -> bool:
        return True
