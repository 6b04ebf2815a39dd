"""When did the scorer commit an offset? Polls ``consumer_offsets`` every ~10 ms.

The scorer writes a partition's next offset in the same transaction as the buckets, so
an event at (partition, offset) is "folded and committed" at the first poll that sees
``next_offset > offset``. The poll interval bounds the error (≤ 10 ms, ~5 ms mean).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from collections import defaultdict

import asyncpg


class CommitTracker:
    def __init__(self, dsn: str, *, consumer: str, topic: str, interval_s: float = 0.01):
        self._dsn = dsn
        self._consumer = consumer
        self._topic = topic
        self._interval = interval_s
        # Per partition: times (wall clock) and the next_offset first seen at that time.
        self._times: dict[int, list[float]] = defaultdict(list)
        self._offsets: dict[int, list[int]] = defaultdict(list)
        self.current: dict[int, int] = {}
        self.polls = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._conn = await asyncpg.connect(self._dsn)
        self._query = await self._conn.prepare(
            "SELECT partition, next_offset FROM consumer_offsets "
            "WHERE consumer = $1 AND topic = $2"
        )
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
        await self._conn.close()

    async def _run(self) -> None:
        while not self._stop.is_set():
            rows = await self._query.fetch(self._consumer, self._topic)
            now = time.time()
            self.polls += 1
            for partition, next_offset in rows:
                if self.current.get(partition) != next_offset:
                    self.current[partition] = next_offset
                    self._times[partition].append(now)
                    self._offsets[partition].append(next_offset)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._interval)

    def committed(self) -> int:
        return sum(self.current.values())

    def commit_time(self, partition: int, offset: int) -> float | None:
        """Wall-clock time of the first poll showing ``offset`` committed."""
        offsets = self._offsets.get(partition, [])
        index = bisect.bisect_right(offsets, offset)
        return self._times[partition][index] if index < len(offsets) else None

    async def wait_for(self, targets: dict[int, int], within_s: float) -> bool:
        """Until every partition's next_offset reaches ``targets`` (or the timeout)."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if all(self.current.get(p, 0) >= o for p, o in targets.items()):
                return True
            await asyncio.sleep(0.05)
        return False
